"""Balancing (Aggarwal et al., WACV 2020), the imbalance-aware baseline of the paper.

One item at a time, with the label of each pick counted at once (sequential annotation, as
Aggarwal et al. and the paper's code simulate it; so it needs the pool's labels, and reads only
those of labeled and picked items):

- Let mu be the mean class count of the labeled set, majority classes those above mu and
  minority classes the rest. The set is *balanced relative to the remaining budget* while
  remaining > |minority| * (mean majority count - mean minority count), i.e. while the budget
  left could not close the gap anyway: then the pick is random (the next unpicked item of a
  seeded permutation of the unlabeled pool).
- Otherwise the pick minimises ||x - c_rare||^2 / min_{m majority} ||x - c_m||^2: close to the
  labeled centre c_rare of the rarest class (lowest class id on ties; numerator 1 when that
  class has no labels yet), far from the nearest majority centre. Ties go to pool order.

Reading of the paper's code: its denominator takes the *farthest* majority centre (a ``max``
stored in a variable named ``min_dist``); this follows the description, the nearest one.
"""

from __future__ import annotations

import numpy as np

from al_core.clustering import group_sums
from al_core.samplers.pool import MEMORY_LIMIT, Pool, progress
from al_core.samplers.registry import Selection, register_sampler


class _Centres:
    """Labeled class centres and the (U, C) products of unlabeled features with them, refreshed lazily."""

    def __init__(self, features: np.ndarray, sums: np.ndarray, counts: np.ndarray):
        self.features = features
        self.sums = sums
        self.counts = counts
        self.products = np.zeros((features.shape[0], counts.shape[0]), dtype=np.float32)
        self.stale = np.ones(counts.shape[0], dtype=bool)

    def add(self, label: int, row: np.ndarray) -> None:
        self.sums[label] += row
        self.counts[label] += 1
        self.stale[label] = True

    def squared_distances(self, classes: np.ndarray, rows: slice, feature_norms: np.ndarray) -> np.ndarray:
        """``(rows, len(classes))`` squared distances of unlabeled rows to those classes' centres."""
        centres = self.sums[classes] / self.counts[classes, None]
        for column, label in enumerate(classes):
            if self.stale[label]:
                self.products[:, label] = self.features @ centres[column].astype(np.float32)
                self.stale[label] = False
        centre_norms = np.einsum("ij,ij->i", centres, centres).astype(np.float32)
        block = feature_norms[rows, None] - 2.0 * self.products[rows][:, classes] + centre_norms[None, :]
        return np.maximum(block, 0.0, out=block)


def needs_balancing(counts: np.ndarray, remaining: int) -> bool:
    """True when the remaining budget could just close the gap between majority and minority classes."""
    majority = counts > counts.mean()
    if not majority.any():
        return False
    gap = counts[majority].mean() - counts[~majority].mean()
    return remaining <= int((~majority).sum()) * gap


@register_sampler(
    "balancing",
    needs=("features", "labels"),
    summary="Aggarwal et al.: random while balanced w.r.t. the budget left, else near the rarest class's centre",
    options={"memory_limit_bytes": MEMORY_LIMIT},
)
def balancing_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Scores: NaN for random picks, the distance ratio for balancing picks.

    Cost: gathers the U unlabeled features, O(U d) memory plus O(U C) for their products with the
    class centres (refuses above option ``memory_limit_bytes``); each balancing pick
    O(U (d + C)) (one centre moves per pick), each random pick O(1); labeled centres O(L d).
    """
    labels = pool.labels
    unlabeled = pool.unlabeled_indices
    labeled = np.flatnonzero(pool.labeled_mask)
    num_classes = pool.num_classes or int(labels.max()) + 1
    dim = pool.features.shape[1]
    pool.check_memory(
        unlabeled.size * (dim + num_classes + 1) * 4,
        f"balancing over {unlabeled.size} unlabeled items",
        "it keeps their features and class-centre products in memory; raise option memory_limit_bytes "
        "or select from a random part of the pool",
    )
    features = pool.gather_features(unlabeled)
    feature_norms = np.einsum("ij,ij->i", features, features)
    sums = np.zeros((num_classes, dim), dtype=np.float64)
    for start in range(0, labeled.size, pool.chunk_size):
        rows = labeled[start:start + pool.chunk_size]
        sums += group_sums(pool.gather_features(rows), labels[rows], num_classes)
    centres = _Centres(features, sums, np.bincount(labels[labeled], minlength=num_classes).astype(np.int64))

    order = np.random.default_rng(seed).permutation(unlabeled.size)
    cursor = 0
    available = np.ones(unlabeled.size, dtype=bool)
    picked = np.empty(budget, dtype=np.int64)
    scores = np.full(budget, np.nan)
    for step in progress(range(budget), total=budget, work=budget * features.size, desc="balancing: one pick at a time", unit="pick"):
        if needs_balancing(centres.counts, budget - step):
            position, scores[step] = _balancing_pick(centres, feature_norms, available, pool.chunk_size)
        else:
            while not available[order[cursor]]:
                cursor += 1
            position = int(order[cursor])
        picked[step] = position
        available[position] = False
        centres.add(int(labels[unlabeled[position]]), features[position])
    return Selection(indices=unlabeled[picked], scores=scores)


def _balancing_pick(centres: _Centres, feature_norms: np.ndarray, available: np.ndarray, chunk_size: int) -> tuple[int, float]:
    counts = centres.counts
    rarest = int(np.argmin(counts))
    majority = np.flatnonzero(counts > counts.mean())
    best_position, best_ratio = -1, np.inf
    for start in range(0, available.size, chunk_size):
        rows = slice(start, min(start + chunk_size, available.size))
        if counts[rarest] > 0:
            numerator = centres.squared_distances(np.array([rarest]), rows, feature_norms)[:, 0]
        else:
            numerator = np.ones(rows.stop - rows.start, dtype=np.float32)
        denominator = centres.squared_distances(majority, rows, feature_norms).min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((denominator > 0) & available[rows], numerator / denominator, np.inf)
        local = int(np.argmin(ratio))
        if ratio[local] < best_ratio:
            best_position, best_ratio = start + local, float(ratio[local])
    if best_position < 0:  # every candidate sits on a majority centre: take the first available
        best_position = int(np.flatnonzero(available)[0])
    return best_position, best_ratio
