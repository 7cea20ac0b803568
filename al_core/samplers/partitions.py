"""The paper's scalable variants: split the pool into p random parts and run a sampler in each.

Shared by ``partitioned_coreset`` and ``partitioned_badge``: the ``partitions`` option, the
seeded split of the pool, the split of the budget, and the loop over the parts.
Cost of the helpers here: O(N) time and memory for the split, O(p) for the budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from al_core.samplers.pool import Pool
from al_core.samplers.registry import Selection
from al_core.schema import positive

PARTITIONS = positive(default=10, help="p: random parts of the pool, each selecting about b/p items")

Part = tuple[np.ndarray, np.ndarray]  # (unlabeled pool indices, labeled pool indices), each sorted
PickInPart = Callable[[Part, int, int], tuple[np.ndarray, np.ndarray]]


def split_evenly(budget: int, parts: int) -> np.ndarray:
    """``(parts,) int64``: floor(b/p) each, one more for the first b mod p (the larger parts,
    which ``split_pool`` puts first)."""
    quotas = np.full(parts, budget // parts, dtype=np.int64)
    quotas[: budget % parts] += 1
    return quotas


def split_pool(pool: Pool, partitions: int, rng: np.random.Generator) -> list[Part]:
    """Random, paired partitions ``[(unlabeled_part, labeled_part)]`` of the pool, sorted by
    pool index within each part; unlabeled parts differ in size by at most one, largest first.
    At most as many parts as unlabeled items."""
    unlabeled = pool.unlabeled_indices
    labeled = np.flatnonzero(pool.labeled_mask).astype(np.int64)
    partitions = min(partitions, unlabeled.shape[0])
    unlabeled_parts = np.array_split(unlabeled[rng.permutation(unlabeled.shape[0])], partitions)
    labeled_parts = np.array_split(labeled[rng.permutation(labeled.shape[0])], partitions)
    return [(np.sort(u), np.sort(lab)) for u, lab in zip(unlabeled_parts, labeled_parts)]


def select_in_parts(parts: list[Part], budget: int, rng: np.random.Generator, pick: PickInPart) -> Selection:
    """Give part i its share of ``budget`` (`split_evenly`) and a seed drawn from ``rng``,
    and concatenate what ``pick(part, quota, seed) -> (positions into the part's unlabeled
    indices, scores)`` returns, part after part."""
    picked, scores = [], []
    seeds = rng.integers(0, 2**63, size=len(parts))
    for part, quota, part_seed in zip(parts, split_evenly(budget, len(parts)), seeds):
        if quota == 0:
            continue
        positions, part_scores = pick(part, int(quota), int(part_seed))
        picked.append(part[0][positions])
        scores.append(part_scores)
    return Selection(indices=np.concatenate(picked), scores=np.concatenate(scores))
