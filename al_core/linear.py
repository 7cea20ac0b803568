"""The linear head's arithmetic, in one place: logits = features @ weight.T + bias.

Every consumer (the samplers' streaming, test metrics, the full-data probe's predictions, the
export's predicted classes) calls :func:`linear_logits` on a block of rows, so a change to how
the product is computed (precision, threads) changes all of them together.
"""

from __future__ import annotations

import numpy as np

DEFAULT_CHUNK_ROWS = 65536


def linear_logits(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``(B, C) float32`` logits of a block of rows.

    features: ``(B, d)`` any float dtype (converted to float32); weight: ``(C, d) float32``;
    bias: ``(C,) float32``. Cost O(B * d * C) time, O(B * C) memory (plus a float32 copy of the
    block when it is not float32 already).
    """
    logits = np.asarray(features, dtype=np.float32) @ weight.T
    logits += bias
    return logits


def chunked_logits(features: np.ndarray, weight: np.ndarray, bias: np.ndarray, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """``(N, C) float32`` logits of every row, read ``chunk_rows`` at a time (features may be
    memory-mapped). Cost O(N * d * C) time, O(N * C + chunk_rows * d) memory."""
    out = np.empty((features.shape[0], weight.shape[0]), dtype=np.float32)
    for start in range(0, features.shape[0], chunk_rows):
        out[start:start + chunk_rows] = linear_logits(features[start:start + chunk_rows], weight, bias)
    return out
