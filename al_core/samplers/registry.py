"""The sampler registry (timm style): every sampler is one name away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from al_core.samplers.pool import Pool


@dataclass(frozen=True)
class Selection:
    """What a sampler picked, in selection order.

    indices: ``(b,) int64`` distinct pool indices of unlabeled items.
    scores: ``(b,) float64`` the score each was picked by (NaN where the sampler has none).
    classes: ``(b,) int64`` the class whose turn picked each item (BASE: the boundary it was
        picked for), or None for samplers without per-class turns.
    """

    indices: np.ndarray
    scores: np.ndarray
    classes: np.ndarray | None = None


SamplerFn = Callable[[Pool, int, int], Selection]


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: its function ``(pool, budget, seed) -> Selection`` and its inputs.

    needs: subset of {"logits", "head_weight", "features", "labels"}; "logits" is satisfied by
    logits or by features together with head_weight. options: the option names it accepts.
    """

    name: str
    fn: SamplerFn
    needs: frozenset[str]
    summary: str
    options: frozenset[str] = frozenset()


SAMPLERS: dict[str, SamplerSpec] = {}


def register_sampler(
    name: str, *, needs: tuple[str, ...] = (), summary: str, options: tuple[str, ...] = ()
) -> Callable[[SamplerFn], SamplerFn]:
    def decorator(fn: SamplerFn) -> SamplerFn:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is registered twice")
        SAMPLERS[name] = SamplerSpec(name=name, fn=fn, needs=frozenset(needs), summary=summary, options=frozenset(options))
        return fn

    return decorator
