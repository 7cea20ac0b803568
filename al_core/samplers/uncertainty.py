"""Random sampling and the softmax-uncertainty baselines (least confidence, margin, entropy).

Each streams the pool once: O(N*d*C) for the logits (O(N*C) when logits are given), plus
O(N*C) for the scores; memory O(chunk*(d + C) + budget).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from al_core.samplers.pool import Pool
from al_core.samplers.ranking import RunningSmallest
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import confidence_score, entropy_score, margin_score


def select_smallest_scores(pool: Pool, budget: int, score_fn: Callable[[np.ndarray], np.ndarray]) -> Selection:
    """Stream the unlabeled pool's logits and keep the ``budget`` smallest scores."""
    running = RunningSmallest(budget)
    for rows, scores in pool.map_unlabeled_logits(lambda rows, logits: (rows, score_fn(logits))):
        running.push(scores, rows)
    return Selection(indices=running.indices, scores=running.scores)


@register_sampler("random", summary="uniformly random unlabeled items (seeded)")
def random_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Uniform draw without replacement from the unlabeled items. O(N) time and memory."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(pool.unlabeled_indices, size=budget, replace=False).astype(np.int64)
    return Selection(indices=picked, scores=np.full(budget, np.nan))


@register_sampler("confidence", needs=("logits",), summary="smallest top softmax probability")
def confidence_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    return select_smallest_scores(pool, budget, confidence_score)


@register_sampler("margin", needs=("logits",), summary="smallest gap between the two largest softmax probabilities")
def margin_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    return select_smallest_scores(pool, budget, margin_score)


@register_sampler("entropy", needs=("logits",), summary="largest softmax entropy")
def entropy_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    return select_smallest_scores(pool, budget, entropy_score)
