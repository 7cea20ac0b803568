"""Score functions: one number per pool item, smaller = more worth labeling.

Every function takes a chunk of logits ``(B, C) float32`` (bias included) and returns ``(B,)
float64`` scores; the selection rule (``ranking.smallest_k``) then takes the smallest. Each costs
O(B*C) time and memory per chunk unless stated.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, ``(B, C)``."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def confidence_score(logits: np.ndarray) -> np.ndarray:
    """Largest softmax probability (least-confidence sampling takes the smallest)."""
    return softmax(logits).max(axis=1)


def margin_score(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 softmax probability (margin sampling takes the smallest)."""
    probabilities = softmax(logits)
    top_two = np.partition(probabilities, probabilities.shape[1] - 2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def entropy_score(logits: np.ndarray) -> np.ndarray:
    """Negative softmax entropy (entropy sampling takes the largest entropy = smallest score)."""
    probabilities = softmax(logits)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    return terms.sum(axis=1)


def inverse_weight_distances(head_weight: np.ndarray) -> np.ndarray:
    """``(C, C) float64`` matrix of 1 / ||w_p - w_c|| (+inf where two rows are identical).

    Cost O(C^2 * d) time, O(C^2) memory; done once per selection, not per chunk.
    """
    weight = head_weight.astype(np.float64)
    gram = weight @ weight.T
    squared_norms = np.diag(gram)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * gram
    np.maximum(squared, 0.0, out=squared)
    np.fill_diagonal(squared, 0.0)
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(squared)


def boundary_distances(logits: np.ndarray, inverse_pair_distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feature-space distances to the linear head's decision boundaries (paper Eq. 2 and 3).

    For item i with predicted class p and any class c != p, the distance to the boundary between
    p and c is ``(z_p - z_c) / ||w_p - w_c||`` (z = logits including bias; z_p is the largest,
    so no absolute value is needed). In column p the matrix holds the item's smallest such
    distance, its MASE margin (Eq. 2), which is also its BASE distance to its own class's
    boundary (Eq. 3). Two classes with identical weights have no boundary: that distance is +inf.

    inverse_pair_distances: from :func:`inverse_weight_distances`.
    Returns ``(distances (B, C) float64, predicted (B,) int64)``. Cost O(B*C), three passes.
    """
    predicted = logits.argmax(axis=1)
    rows = np.arange(logits.shape[0])
    distances = logits.astype(np.float64)
    np.subtract(distances[rows, predicted][:, None], distances, out=distances)
    with np.errstate(invalid="ignore"):
        distances *= inverse_pair_distances[predicted]
    # 0 * inf: an item exactly on the "boundary" of two identical classes; there is none.
    np.nan_to_num(distances, copy=False, nan=np.inf)
    distances[rows, predicted] = np.inf
    distances[rows, predicted] = distances.min(axis=1)
    return distances, predicted
