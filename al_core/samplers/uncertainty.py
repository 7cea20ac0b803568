"""Random sampling and the softmax-uncertainty baselines (least confidence, margin, entropy).

Each streams the pool once: O(N*d*C) for the logits (O(N*C) when logits are given), plus
O(N*C) for the scores; memory O(chunk*(d + C) + budget).
"""

from __future__ import annotations

import numpy as np

from al_core.samplers.pool import Pool
from al_core.samplers.ranking import select_smallest_scores
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import CONFIDENCE, ENTROPY, MARGIN


@register_sampler("random", summary="uniformly random unlabeled items (seeded)")
def random_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Uniform draw without replacement from the unlabeled items. O(N) time and memory."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(pool.unlabeled_indices, size=budget, replace=False).astype(np.int64)
    return Selection(indices=picked, scores=np.full(budget, np.nan))


@register_sampler("confidence", shardable=True, needs=("logits",), summary="smallest top softmax probability")
def confidence_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    return select_smallest_scores(pool, budget, CONFIDENCE)


@register_sampler("margin", shardable=True, needs=("logits",), summary="smallest gap between the two largest softmax probabilities")
def margin_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    return select_smallest_scores(pool, budget, MARGIN)


@register_sampler("entropy", shardable=True, needs=("logits",), summary="largest softmax entropy")
def entropy_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    return select_smallest_scores(pool, budget, ENTROPY)
