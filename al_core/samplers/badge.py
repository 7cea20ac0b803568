"""BADGE (Ash et al. 2020): k-means++ seeding on gradient embeddings of the last linear layer.

The gradient of the cross-entropy loss with respect to the head's weight, taking the predicted
label as the target, is g_i = (p_i - e_{y_i}) outer x_i, a C*d vector. It is never formed: with
u_i = p_i - e_{y_i},

    <g_i, g_j> = <u_i, u_j> * <x_i, x_j>,    ||g_i - g_j||^2 = ||g_i||^2 + ||g_j||^2 - 2 <g_i, g_j>,

so one distance costs O(C + d) instead of O(C*d). ``partitioned_badge`` reduces g to 512
dimensions with a seeded random projection whose rows are rank one, s_k = (a_k . u)(b_k . x) /
sqrt(512) with Gaussian a_k, b_k: an unbiased sketch of <g_i, g_j> computed in O(512 (C + d)) per
item, again without forming g.
"""

from __future__ import annotations

import numpy as np

from al_core.samplers.partitions import PARTITIONS, select_in_parts, split_pool
from al_core.samplers.pool import MEMORY_LIMIT, Pool, progress
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import softmax

SKETCH_DIM = 512


def gradient_residuals(logits: np.ndarray) -> np.ndarray:
    """``(B, C) float32`` u = softmax(z) - onehot(argmax z)."""
    residuals = softmax(logits)
    residuals[np.arange(residuals.shape[0]), residuals.argmax(axis=1)] -= 1.0
    return residuals.astype(np.float32)


def sketch_gradients(residuals: np.ndarray, features: np.ndarray, class_projection: np.ndarray,
                     feature_projection: np.ndarray) -> np.ndarray:
    """``(B, k) float32`` sketch of the gradient embeddings u_i outer x_i:
    s_ik = (a_k . u_i)(b_k . x_i) / sqrt(k), so E<s_i, s_j> = <u_i, u_j><x_i, x_j> for Gaussian
    a_k (rows of ``class_projection`` (k, C)) and b_k (rows of ``feature_projection`` (k, d)).
    Cost O(B * k * (C + d))."""
    sketch = (residuals @ class_projection.T) * (features @ feature_projection.T)
    sketch /= np.sqrt(class_projection.shape[0])
    return sketch


def kmeans_plus_plus(u: np.ndarray, x: np.ndarray, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding over the embeddings u_i outer x_i (pass x = ones((n, 1)) for plain u_i).

    The first center is the largest embedding (as in BADGE's code); each next one is drawn with
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
    steps = progress(range(budget), total=budget, work=budget * n * (u.shape[1] + x.shape[1]), desc="badge: k-means++ seeding", unit="pick")
    for step in steps:
        if step == 0:
            position = int(np.argmax(norms))
            scores[step] = float(np.sqrt(norms[position]))
        else:
            cumulative = np.cumsum(nearest)
            total = cumulative[-1]
            if total > 0:
                position = min(int(np.searchsorted(cumulative, rng.random() * total, side="right")), n - 1)
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


@register_sampler("badge", needs=("logits", "features"), options={"memory_limit_bytes": MEMORY_LIMIT},
                  summary="k-means++ seeding on last-layer gradient embeddings (factorised, never formed)")
def badge_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """BADGE over the whole unlabeled pool.

    Cost O(U*d*C) logits + O(b * U * (C + d)) seeding; memory O(U * (C + d)). Refuses pools whose
    factors exceed option memory_limit_bytes.
    """
    unlabeled = pool.unlabeled_indices
    pool.check_memory(unlabeled.shape[0] * (pool.num_classes + pool.features.shape[1]) * 4,
                      f"badge's gradient factors for {unlabeled.shape[0]} items",
                      "use 'partitioned_badge' or raise option memory_limit_bytes")
    residuals, features = [], []
    for _, block_features, logits in pool.iter_unlabeled_blocks(with_features=True):
        residuals.append(gradient_residuals(logits))
        features.append(block_features)
    positions, scores = kmeans_plus_plus(np.concatenate(residuals), np.concatenate(features), budget, np.random.default_rng(seed))
    return Selection(indices=unlabeled[positions], scores=scores)


@register_sampler("partitioned_badge", needs=("logits", "features"),
                  options={"partitions": PARTITIONS, "memory_limit_bytes": MEMORY_LIMIT},
                  summary="BADGE in p random partitions on 512-d sketches of the gradient embeddings")
def partitioned_badge_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Sketch every unlabeled gradient embedding to 512 dimensions (one streaming pass), split
    the unlabeled items into p random parts and run k-means++ seeding in each with b/p.

    Cost O(U*d*C) logits + O(U * 512 * (C + d)) sketch + O(b * U * 512 / p) seeding;
    memory O(U * 512) + O(chunk * (C + d)).
    """
    unlabeled = pool.unlabeled_indices
    pool.check_memory(unlabeled.shape[0] * SKETCH_DIM * 4,
                      f"partitioned_badge's {SKETCH_DIM}-d sketch of {unlabeled.shape[0]} items",
                      "raise option memory_limit_bytes")
    rng = np.random.default_rng(seed)
    class_projection = rng.standard_normal((SKETCH_DIM, pool.num_classes)).astype(np.float32)
    feature_projection = rng.standard_normal((SKETCH_DIM, pool.features.shape[1])).astype(np.float32)
    sketch = np.empty((unlabeled.shape[0], SKETCH_DIM), dtype=np.float32)
    cursor = 0
    for rows, block_features, logits in pool.iter_unlabeled_blocks(with_features=True):
        sketch[cursor:cursor + rows.shape[0]] = sketch_gradients(
            gradient_residuals(logits), block_features, class_projection, feature_projection)
        cursor += rows.shape[0]
    parts = split_pool(pool, pool.option("partitions"), rng)
    ones = np.ones((unlabeled.shape[0], 1), dtype=np.float32)

    def pick(part, quota: int, part_seed: int):
        positions = np.searchsorted(unlabeled, part[0])
        return kmeans_plus_plus(sketch[positions], ones[positions], quota, np.random.default_rng(part_seed))

    return select_in_parts(parts, budget, rng, pick)
