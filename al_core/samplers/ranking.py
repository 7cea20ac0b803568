"""Selection rules: exact top-k under the order (score, pool index).

Scoring is kept separate from ranking (baal style): samplers compute a score per item, and
these helpers pick the smallest ones. Ties are broken by pool order, so results never depend on
how the pool was chunked or on an unstable sort.
"""

from __future__ import annotations

import numpy as np


def smallest_k(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(indices, scores)`` of the ``k`` smallest scores, sorted by (score, index).

    scores: ``(n,) float``; indices: ``(n,) int64`` pool indices, distinct.
    Cost: O(n) partition plus O(k log k) sort of the survivors; memory O(n).
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=scores.dtype)
    if k < n:
        # Everything strictly below the k-th value is in; among values equal to it, the lowest
        # indices are, which the lexsort below settles.
        kth_value = np.partition(scores, k - 1)[k - 1]
        keep = scores <= kth_value
        scores, indices = scores[keep], indices[keep]
    order = np.lexsort((indices, scores))[:k]
    return indices[order], scores[order]


class RunningSmallest:
    """Keep the ``k`` smallest (score, index) pairs seen over a stream of chunks.

    Memory O(k + chunk); each ``push`` costs O(k + chunk). Equal to ``smallest_k`` over the
    concatenation of every chunk, whatever the chunking.
    """

    def __init__(self, k: int):
        self.k = k
        self.indices = np.empty(0, dtype=np.int64)
        self.scores = np.empty(0, dtype=np.float64)

    def push(self, scores: np.ndarray, indices: np.ndarray) -> None:
        if self.k <= 0 or scores.shape[0] == 0:
            return
        if self.indices.shape[0] >= self.k:
            # Only scores that can beat the current worst kept one matter.
            worst = self.scores[-1]
            candidate = scores <= worst
            scores, indices = scores[candidate], indices[candidate]
            if scores.shape[0] == 0:
                return
        merged_scores = np.concatenate([self.scores, scores.astype(np.float64, copy=False)])
        merged_indices = np.concatenate([self.indices, indices])
        self.indices, self.scores = smallest_k(merged_scores, merged_indices, self.k)
