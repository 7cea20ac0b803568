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
    geometry = inverse_weight_distances(pool.head_weight)

    def score(logits: np.ndarray) -> np.ndarray:
        distances, predicted = boundary_distances(logits, geometry)
        return distances[np.arange(len(predicted)), predicted]

    return select_smallest_scores(pool, budget, score)


BASE_SLACK_FACTOR = 32  # candidates kept per class in the first pass: (1 + this) * quota + BASE_SLACK_EXTRA
BASE_SLACK_EXTRA = 64


@register_sampler("base", needs=("logits", "head_weight"), summary="per-class quotas of items closest to each class's boundary (Eq. 3)")
def base_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """BASE: classes 0..C-1 in turn take their quota of the items nearest their boundary.

    An item's distance to class c's boundary is its MASE margin when it is predicted as c, and
    |z_p - z_c| / ||w_p - w_c|| otherwise. Class c skips items taken by classes before it, so
    in the worst case it needs its quota plus all earlier quotas as candidates. One streaming
    pass keeps a few times its quota per class (at most that worst case), then the greedy pass
    of Alg. 2 runs on the candidates alone. If a class's candidates run out (earlier classes
    took more of them than the slack allows), the pool is streamed again with every item taken
    so far excluded: that class then needs exactly its quota, and later classes keep twice as
    many candidates as before. Exact in every case: the greedy only ever reads complete lists.

    Cost: O(N*d*C) logits + O(N*C) distances and candidate updates per pass (one pass unless
    classes compete heavily for the same items); memory O(chunk*C + C^2 + budget * slack).
    """
    num_classes = pool.num_classes
    quotas = class_quotas(budget, num_classes)
    geometry = inverse_weight_distances(pool.head_weight)
    keep = np.minimum(np.cumsum(quotas), (1 + BASE_SLACK_FACTOR) * quotas + BASE_SLACK_EXTRA)
    keep[quotas == 0] = 0
    taken = np.zeros(pool.size, dtype=bool)
    picked: list[int] = []
    picked_scores: list[float] = []
    first_class = 0
    while first_class < num_classes:
        candidates = _boundary_candidates(pool, geometry, keep, taken if picked else None)
        first_class = _greedy_quotas(candidates, quotas, keep, first_class, taken, picked, picked_scores)
        if first_class < num_classes:  # ran out: stream again for this class and the later ones
            classes = np.arange(num_classes)
            later = classes > first_class
            # With every earlier pick excluded, class c can lose at most the quotas of classes
            # first_class..c-1 to others: its list never needs to be longer than their sum + its own.
            keep[later] = np.minimum(np.cumsum(np.where(classes >= first_class, quotas, 0))[later], 2 * keep[later])
            keep[first_class] = quotas[first_class]
            keep[:first_class] = 0
            keep[quotas == 0] = 0
    return Selection(indices=np.asarray(picked, dtype=np.int64), scores=np.asarray(picked_scores, dtype=np.float64))


def _boundary_candidates(pool: Pool, geometry, keep: np.ndarray, excluded: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class c, the ``keep[c]`` unlabeled items (not ``excluded``) nearest its boundary, as
    ``(indices, distances)`` sorted by (distance, index). One pass over the pool."""
    running = RunningSmallestPerClass(keep)

    def score(rows: np.ndarray, logits: np.ndarray):
        if excluded is not None:
            kept = ~excluded[rows]
            rows, logits = rows[kept], logits[kept]
        # Workers score a block and keep what passes the thresholds; this thread merges and compacts.
        return running.candidates(boundary_distances(logits, geometry)[0], rows)

    for found in pool.map_unlabeled_logits(score):
        running.push_candidates(*found)
    return running.finish()


def _greedy_quotas(candidates, quotas, keep, first_class, taken, picked, picked_scores) -> int:
    """Alg. 2's greedy from ``first_class`` on: each class takes its quota of its candidates not
    taken before. Appends to ``picked``/``picked_scores``, marks ``taken``; returns the first class
    whose truncated list ran out before its quota was met (its picks undone), or C when done."""
    for cls in range(first_class, quotas.shape[0]):
        still_needed = int(quotas[cls])
        if still_needed == 0:
            continue
        indices, distances = candidates[cls]
        mark = len(picked)
        for index, distance in zip(indices.tolist(), distances.tolist()):
            if taken[index]:
                continue
            taken[index] = True
            picked.append(index)
            picked_scores.append(distance)
            still_needed -= 1
            if still_needed == 0:
                break
        if still_needed > 0 and indices.shape[0] == keep[cls]:
            # More items exist beyond this class's list; the next ones are unknown.
            taken[np.asarray(picked[mark:], dtype=np.int64)] = False
            del picked[mark:], picked_scores[mark:]
            return cls
    return quotas.shape[0]
