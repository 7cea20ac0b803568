"""BADGE (Ash et al. 2020): k-means++ seeding on gradient embeddings of the last linear layer.

The gradient of the cross-entropy loss with respect to the head's weight, taking the predicted
label as the target, is g_i = (p_i - e_{y_i}) outer x_i, a C*d vector. It is never formed: with
u_i = p_i - e_{y_i},

    <g_i, g_j> = <u_i, u_j> * <x_i, x_j>,    ||g_i - g_j||^2 = ||g_i||^2 + ||g_j||^2 - 2 <g_i, g_j>,

so one distance costs O(C + d) instead of O(C*d).
"""

from __future__ import annotations

import numpy as np

from al_core.errors import InputError
from al_core.samplers.pool import Pool
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import softmax

DEFAULT_MEMORY_LIMIT_BYTES = 4 * 2**30


def gradient_factors(pool: Pool, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(u (n, C) float32, x (n, d) float32)`` for the given unlabeled rows (ascending)."""
    x = pool.gather_features(rows)
    u = np.empty((rows.shape[0], pool.num_classes), dtype=np.float32)
    wanted = np.zeros(pool.size, dtype=bool)
    wanted[rows] = True
    cursor = 0
    for block_rows, logits in pool.iter_unlabeled_logits():
        keep = wanted[block_rows]
        if not keep.any():
            continue
        probabilities = softmax(logits[keep])
        probabilities[np.arange(probabilities.shape[0]), probabilities.argmax(axis=1)] -= 1.0
        u[cursor:cursor + probabilities.shape[0]] = probabilities
        cursor += probabilities.shape[0]
    return u, x


def kmeans_plus_plus(u: np.ndarray, x: np.ndarray, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding over the gradient embeddings u_i outer x_i.

    The first center is the largest gradient (as in BADGE's code); each next one is drawn with
    probability proportional to its squared distance to the nearest center so far. Returns
    (positions, distance of each pick to its nearest earlier center; its norm for the first).
    Cost O(budget * n * (C + d)) time, O(n) extra memory.
    """
    n = u.shape[0]
    norms = np.einsum("ij,ij->i", u, u).astype(np.float64) * np.einsum("ij,ij->i", x, x).astype(np.float64)
    nearest = np.full(n, np.inf)
    taken = np.zeros(n, dtype=bool)
    picked = np.empty(budget, dtype=np.int64)
    scores = np.empty(budget, dtype=np.float64)
    for step in range(budget):
        if step == 0:
            position = int(np.argmax(norms))
            scores[step] = float(np.sqrt(norms[position]))
        else:
            cumulative = np.cumsum(nearest)
            total = cumulative[-1]
            if total > 0:
                position = int(np.searchsorted(cumulative, rng.random() * total, side="right"))
                position = min(position, n - 1)
            else:  # every item left coincides with a center: take them in pool order
                position = int(np.flatnonzero(~taken)[0])
            scores[step] = float(np.sqrt(max(nearest[position], 0.0)))
        picked[step] = position
        inner = (u @ u[position]).astype(np.float64) * (x @ x[position]).astype(np.float64)
        distances = np.maximum(norms + norms[position] - 2.0 * inner, 0.0)
        np.minimum(nearest, distances, out=nearest)
        nearest[position] = 0.0  # zero weight: never drawn again
        taken[position] = True
    return picked, scores


@register_sampler("badge", needs=("logits", "features"), options=("memory_limit_bytes",),
                  summary="k-means++ seeding on last-layer gradient embeddings (factorised, never formed)")
def badge_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """BADGE over the whole unlabeled pool.

    Cost O(U*d*C) logits + O(b * U * (C + d)) seeding; memory O(U * (C + d)). Refuses pools whose
    factors exceed the memory limit (option memory_limit_bytes, default 4 GiB).
    """
    unlabeled = pool.unlabeled_indices
    limit = pool.option("memory_limit_bytes", DEFAULT_MEMORY_LIMIT_BYTES, int)
    needed = unlabeled.shape[0] * (pool.num_classes + pool.features.shape[1]) * 4
    if needed > limit:
        raise InputError(
            f"badge would hold {needed / 2**30:.1f} GiB of gradient factors for {unlabeled.shape[0]} items, above "
            f"the limit of {limit / 2**30:.1f} GiB; raise option memory_limit_bytes or select from a subset"
        )
    u, x = gradient_factors(pool, unlabeled)
    positions, scores = kmeans_plus_plus(u, x, budget, np.random.default_rng(seed))
    return Selection(indices=unlabeled[positions], scores=scores)
