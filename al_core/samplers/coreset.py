"""Core-set (Sener & Savarese 2018): greedy k-center in feature space, and its partitioned form.

Greedy k-center is the classical 2-approximation: the labeled items are the initial centers,
and each step takes the unlabeled item farthest from its nearest center. It needs the unlabeled
features in memory and O(N*d) work per pick, so ``coreset`` refuses pools above a memory limit;
``partitioned_coreset`` (the paper's scalable variant) splits the pool into p random parts.
"""

from __future__ import annotations

import numpy as np

from al_core.samplers.partitions import PARTITIONS, select_in_parts, split_pool
from al_core.samplers.pool import MEMORY_LIMIT, Pool, progress
from al_core.samplers.registry import Selection, register_sampler

MAX_DISTANCE_BLOCK_ELEMENTS = 2**26


def _squared_distances(points: np.ndarray, point_norms: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``(n, m)`` squared Euclidean distances, clamped at 0 (float32 expansion)."""
    center_norms = np.einsum("ij,ij->i", centers, centers)
    distances = point_norms[:, None] + center_norms[None, :] - 2.0 * (points @ centers.T)
    return np.maximum(distances, 0.0, out=distances)


def greedy_k_center(points: np.ndarray, centers: np.ndarray, budget: int, seed: int, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``budget`` rows of ``points`` ``(n, d) float32`` by greedy k-center.

    centers: ``(m, d) float32`` initial centers (may be empty: then the first pick is a seeded
    random row). Returns (positions into ``points``, distance of each to its nearest center at
    the time it was picked; NaN for a random first pick). Ties go to the lowest position.
    Cost O((m + budget) * n * d) time, O(n * d) for the points plus at most 256 MiB of distances.
    """
    point_norms = np.einsum("ij,ij->i", points, points)
    nearest = np.full(points.shape[0], np.inf, dtype=np.float32)
    # Bound the (n, block) distance matrix to ~256 MiB of float32, whatever n is.
    block_size = max(1, min(chunk_size, MAX_DISTANCE_BLOCK_ELEMENTS // max(points.shape[0], 1)))
    for start in range(0, centers.shape[0], block_size):
        block = _squared_distances(points, point_norms, centers[start:start + block_size])
        np.minimum(nearest, block.min(axis=1), out=nearest)
    picked = np.empty(budget, dtype=np.int64)
    scores = np.empty(budget, dtype=np.float64)
    steps = progress(range(budget), total=budget, work=budget * points.size, desc="coreset: greedy k-center", unit="pick")
    for step in steps:
        if step == 0 and centers.shape[0] == 0:
            position = int(np.random.default_rng(seed).integers(points.shape[0]))
            scores[step] = np.nan
        else:
            position = int(np.argmax(nearest))
            scores[step] = float(np.sqrt(nearest[position]))
        picked[step] = position
        update = _squared_distances(points, point_norms, points[position:position + 1])[:, 0]
        np.minimum(nearest, update, out=nearest)
        nearest[position] = -1.0  # a picked item is never picked again (minimum keeps it at -1)
    return picked, scores


def _check_memory(pool: Pool, rows: int, name: str) -> None:
    pool.check_memory(
        rows * pool.features.shape[1] * 4,
        f"{name} holding {rows} x {pool.features.shape[1]} float32 features",
        "use 'partitioned_coreset' (option partitions=p) or raise option memory_limit_bytes",
    )


@register_sampler("coreset", needs=("features",), options={"memory_limit_bytes": MEMORY_LIMIT},
                  summary="greedy k-center in feature space, labeled items as initial centers")
def coreset_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Greedy k-center over the whole unlabeled pool. O((L + b) * U * d) time, O(U * d) memory."""
    unlabeled = pool.unlabeled_indices
    labeled = np.flatnonzero(pool.labeled_mask)
    _check_memory(pool, unlabeled.shape[0] + min(labeled.shape[0], pool.chunk_size), "coreset")
    positions, scores = greedy_k_center(
        pool.gather_features(unlabeled), pool.gather_features(labeled), budget, seed, pool.chunk_size
    )
    return Selection(indices=unlabeled[positions], scores=scores)


@register_sampler("partitioned_coreset", needs=("features",),
                  options={"partitions": PARTITIONS, "memory_limit_bytes": MEMORY_LIMIT},
                  summary="coreset in p random partitions of the pool, b/p each (paper's scalable variant)")
def partitioned_coreset_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Split unlabeled and labeled items into p random parts, pair them, run greedy k-center in
    each with floor(b/p) (+1 for the largest parts) of the budget.

    Cost O((L + b) * U * d / p) time, O(U * d / p) memory.
    """
    rng = np.random.default_rng(seed)
    parts = split_pool(pool, pool.option("partitions"), rng)
    _check_memory(pool, parts[0][0].shape[0] + min(parts[0][1].shape[0], pool.chunk_size), "partitioned_coreset")

    def pick(part, quota: int, part_seed: int):
        unlabeled, labeled = part
        return greedy_k_center(pool.gather_features(unlabeled), pool.gather_features(labeled), quota, part_seed, pool.chunk_size)

    return select_in_parts(parts, budget, rng, pick)
