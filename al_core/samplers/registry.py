"""The sampler registry (timm style): every sampler is one name away, with its options' schema.

A sampler is one module in this package (imported automatically) holding a function
``(pool, budget, seed) -> Selection`` decorated with `register_sampler`, which names what
it reads and declares each option as an `Setting` (type, default, valid
range, help). ``select`` validates options against that schema and fills in the defaults, so a
sampler reads ``pool.option(name)`` and never checks or defaults a value itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from al_core.samplers.pool import Pool
from al_core.schema import Setting


@dataclass(frozen=True)
class Selection:
    """What a sampler picked, in selection order.

    indices: ``(b,) int64`` distinct pool indices of unlabeled items.
    scores: ``(b,) float64`` the score each was picked by (NaN where the sampler has none).
    classes: ``(b,) int64`` the class whose turn picked each item (BASE: the boundary it was
        picked for), or None for samplers without per-class turns.
    notes: how the pool was scored, for the caller to report: from features, the fast product
        (``filter``: float32 or bfloat16; ``device``, when torch ran it on one), ``passes`` (streams
        of the pool: more than one when BASE's lists ran out; ``few_class_passes``, BASE's passes
        for a few classes' weights only), ``streamed_rows``, ``refined_rows`` (scored on their exact
        logits) and ``partial_rows`` (scored from the exact logits of a few classes, when any: two
        for margin on a saturated head, those that decide a distance for BASE and MASE).
    """

    indices: np.ndarray
    scores: np.ndarray
    classes: np.ndarray | None = None
    notes: Mapping = field(default_factory=dict)


SamplerFn = Callable[[Pool, int, int], Selection]


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: its function ``(pool, budget, seed) -> Selection`` and its inputs.

    needs: subset of {"logits", "head_weight", "features", "labels", "images"}; "logits" is
    satisfied by logits or by features together with head_weight. options: name -> Setting.
    shardable: the sampler gives the same selection on a pool sharded over processes (it reads
    the pool only through ``Pool``'s streamed blocks and merges what the shards keep).
    """

    name: str
    fn: SamplerFn
    needs: frozenset[str]
    summary: str
    options: Mapping[str, Setting] = field(default_factory=dict)
    shardable: bool = False  # streams the pool through Pool's blocks and merges shards exactly


SAMPLERS: dict[str, SamplerSpec] = {}


NEEDS = frozenset({"logits", "head_weight", "features", "labels", "images"})


def register_sampler(
    name: str, *, needs: tuple[str, ...] = (), summary: str, options: Mapping[str, Setting] | None = None,
    shardable: bool = False,
) -> Callable[[SamplerFn], SamplerFn]:
    """Register ``fn`` as sampler ``name``; ``options`` maps each option name to its Setting."""
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"sampler {name!r} needs unknown inputs {sorted(unknown)}; known: {sorted(NEEDS)}")

    def decorator(fn: SamplerFn) -> SamplerFn:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is registered twice")
        SAMPLERS[name] = SamplerSpec(name=name, fn=fn, needs=frozenset(needs), summary=summary,
                                     options=MappingProxyType(dict(options or {})), shardable=shardable)
        return fn

    return decorator
