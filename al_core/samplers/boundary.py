"""Margin Selection (MASE, paper Eq. 2 / Alg. 1) and Balanced Selection (BASE, Eq. 3 / Alg. 2).

Both measure, in feature space, how far an item lies from the linear head's decision boundaries:
the boundary between classes p and c is the hyperplane (w_p - w_c).x + (b_p - b_c) = 0, so an
item's distance to it is |z_p - z_c| / ||w_p - w_c||. Neither ever forms an (N, C, d) tensor:
the distances come from the logits and the (C, C) matrix of weight distances.
"""

from __future__ import annotations

import numpy as np

from al_core.samplers.pool import Pool
from al_core.samplers.ranking import RunningSmallestPerClass
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import boundary_distances, inverse_weight_distances
from al_core.samplers.uncertainty import select_smallest_scores


def class_quotas(budget: int, num_classes: int) -> np.ndarray:
    """``(C,) int64``: floor(b/C) per class, +1 for the first b mod C classes (Alg. 2)."""
    quotas = np.full(num_classes, budget // num_classes, dtype=np.int64)
    quotas[: budget % num_classes] += 1
    return quotas


@register_sampler("mase", needs=("logits", "head_weight"), summary="smallest feature-space distance to the nearest decision boundary (Eq. 2)")
def mase_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """MASE: score_i = min_{c != p} |z_p - z_c| / ||w_p - w_c||, take the ``budget`` smallest.

    Cost: O(N*d*C) logits (O(N*C) when given) + O(C^2*d) weight distances + O(N*C) scores;
    memory O(chunk*C + C^2 + budget).
    """
    inverse_pair_distances = inverse_weight_distances(pool.head_weight)

    def score(logits: np.ndarray) -> np.ndarray:
        distances, predicted = boundary_distances(logits, inverse_pair_distances)
        return distances[np.arange(len(predicted)), predicted]

    return select_smallest_scores(pool, budget, score)


@register_sampler("base", needs=("logits", "head_weight"), summary="per-class quotas of items closest to each class's boundary (Eq. 3)")
def base_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """BASE: classes 0..C-1 in turn take their quota of the items nearest their boundary.

    An item's distance to class c's boundary is its MASE margin when it is predicted as c, and
    |z_p - z_c| / ||w_p - w_c|| otherwise. Class c skips items taken by classes before it, so
    it can need up to (its quota + all earlier quotas) candidates: one streaming pass keeps that
    many per class, then the greedy pass of Alg. 2 runs on the candidates alone.

    Cost: O(N*d*C) logits + O(N*C) distances and candidate updates; memory
    O(chunk*C + C^2 + sum_c cumulative_quota_c) <= O(chunk*C + C^2 + C*budget).
    """
    num_classes = pool.num_classes
    quotas = class_quotas(budget, num_classes)
    inverse_pair_distances = inverse_weight_distances(pool.head_weight)
    running = RunningSmallestPerClass(np.where(quotas > 0, np.cumsum(quotas), 0))
    for rows, distances in pool.map_unlabeled_logits(lambda rows, logits: (rows, boundary_distances(logits, inverse_pair_distances)[0])):
        running.push(distances, rows)
    candidates = running.finish()

    taken: set[int] = set()
    picked, picked_scores = [], []
    for cls in np.flatnonzero(quotas):
        still_needed = int(quotas[cls])
        for index, distance in zip(candidates[cls][0].tolist(), candidates[cls][1].tolist()):
            if index in taken:
                continue
            taken.add(index)
            picked.append(index)
            picked_scores.append(distance)
            still_needed -= 1
            if still_needed == 0:
                break
    return Selection(indices=np.asarray(picked, dtype=np.int64), scores=np.asarray(picked_scores, dtype=np.float64))
