"""Oracle baselines that read the true labels of the pool: cheating, by design.

The paper uses them to show what a perfectly balanced labeled set would buy. They are never a
fair competitor to a real sampler, which cannot see the labels of unlabeled items.
"""

from __future__ import annotations

import numpy as np

from al_core.errors import InputError
from al_core.samplers.pool import Pool
from al_core.samplers.quotas import class_priority
from al_core.samplers.registry import Selection, register_sampler


@register_sampler("balanced_random", needs=("labels",), summary="ORACLE: equal numbers per class, at random, using the true labels")
def balanced_random_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Round-robin over the classes, each pass taking one random unlabeled item per class.

    Each pass visits the classes in `class_priority` order
    (fewest labels so far first, seeded ties), so the last, partial pass gives the budget's
    remainder to the rarest classes, as BASE's quotas do.
    A class that runs out of unlabeled items drops out, so the result always has ``budget``
    items and per-class counts differ by at most one among classes with items left.
    Cost O(N log N) time, O(N) memory.
    """
    rng = np.random.default_rng(seed)
    unlabeled = pool.unlabeled_indices
    shuffled = unlabeled[rng.permutation(unlabeled.shape[0])]
    labels = pool.labels[shuffled]
    # Stable sort by label keeps the random order within each class; rank = position in class.
    by_class = np.argsort(labels, kind="stable")
    sorted_labels = labels[by_class]
    class_starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.arange(by_class.shape[0]) - class_starts
    num_classes = int(pool.labels.max()) + 1
    counts = pool.labeled_class_counts
    if counts is not None and counts.shape[0] < num_classes:
        raise InputError(f"labeled_class_counts has {counts.shape[0]} classes but labels go up to {num_classes - 1}")
    num_classes = num_classes if counts is None else counts.shape[0]
    priority = np.empty(num_classes, dtype=np.int64)
    priority[class_priority(num_classes, counts, seed)] = np.arange(num_classes)
    order = np.lexsort((priority[sorted_labels], rank_in_class))[:budget]
    picked = shuffled[by_class[order]].astype(np.int64)
    return Selection(indices=picked, scores=np.full(picked.shape[0], np.nan))
