"""Samplers: ``select(name, budget, ...)`` is the one public entry point.

>>> from al_core.samplers import select
>>> idx = select("base", 100, features=X, head_weight=W, head_bias=b,
...              labeled_mask=mask, seed=0)  # doctest: +SKIP

Every sampler returns exactly ``min(budget, #unlabeled)`` distinct unlabeled pool indices, in
selection order, deterministically for a seed; ``select_with_scores`` also returns the score
each item was picked by.

Adding a sampler is adding one module to this package: every public module here is imported below,
and a module registers its samplers (with their options' schema) by decorating them with
``register_sampler``. Importing this package does not import torch (``vaal`` loads it when run).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import warnings

import numpy as np

from al_core.errors import InputError
from al_core.samplers.pool import DEFAULT_CHUNK_SIZE, Pool, make_pool
from al_core.samplers.registry import SAMPLERS, SamplerSpec, Selection
from al_core.schema import resolve

for _module in sorted(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")  # registers the module's samplers


class BudgetWarning(UserWarning):
    """The budget exceeds what is left to label; the sampler takes everything left."""


def _check_available(spec: SamplerSpec, pool: Pool) -> None:
    missing = []
    if "logits" in spec.needs and not pool.has_logits:
        missing.append("logits (or features with head_weight)")
    if "features" in spec.needs and pool.features is None:
        missing.append("features")
    if "head_weight" in spec.needs and pool.head_weight is None:
        missing.append("head_weight")
    if "labels" in spec.needs and pool.labels is None:
        missing.append("labels")
    if "images" in spec.needs and pool.images is None:
        missing.append("images")
    if missing:
        raise InputError(f"sampler {spec.name!r} needs {', '.join(missing)}")


def select_with_scores(
    name: str,
    budget: int,
    *,
    labeled_mask: np.ndarray,
    seed: int,
    features: np.ndarray | None = None,
    head_weight: np.ndarray | None = None,
    head_bias: np.ndarray | None = None,
    logits: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    options: dict | None = None,
    images=None,
    labeled_class_counts: np.ndarray | None = None,
    shard: tuple[int, int] = (0, 1),
    gather=None,
    precision: str = "float32",
    device: str | None = None,
) -> Selection:
    """Run sampler ``name`` and return its `Selection` (indices and scores).

    Args:
        name: a key of ``SAMPLERS``.
        budget: number of items to pick; more than the unlabeled items left takes them all and
            warns (BudgetWarning).
        labeled_mask: ``(N,) bool``, True for items already labeled.
        seed: seeds every random choice.
        features: ``(N, d)`` float, may be memory-mapped.
        head_weight, head_bias: ``(C, d)`` and ``(C,)`` linear head on ``features``.
        logits: ``(N, C)`` instead of (or beside) features: used for the scores when given.
        labels: ``(N,) int`` true labels, read only by the oracle ``balanced_random`` and by
            ``balancing`` (labeled items' labels, and each pick's as if annotated at once).
        chunk_size: rows per streamed block. The picks of the samplers that stream the pool
            (``SAMPLERS[name].shardable``) do not depend on it: from features they are those of the
            exact logits (see ``precision``). Others that multiply features by the head (badge)
            use the BLAS product, whose last bit may change with a block's row count.
        precision: the fast product the streaming samplers score features with before refining
            (``"float32"``: BLAS; ``"bfloat16"``: torch, fast only on CPUs with AMX or AVX512-BF16,
            emulated and slow elsewhere, its rows left open narrowed by a float32 product before
            any exact logits; kept only while the rows a sampler keeps are a small share of the
            pool (``Pool.stream_keeping``), never for entropy; ``"auto"``: bfloat16 on such CPUs
            for pools of at least ``AUTO_BFLOAT16_WORK`` multiply-adds, float32 otherwise).
            Filter and refine: every row gets
            a rigorous bound on its logits' error, and the rows the bounds cannot rule out are
            rescored with the exact logits (each the float32 nearest to x.w + b), so the picks,
            order and scores are the same for either precision, any ``chunk_size`` and one or
            several processes (tested with two). ``Selection.notes`` says which product ran and how many rows were refined.
        device: where that fast product runs: None (default) on the CPU (numpy's BLAS for float32),
            or a torch device name ("cuda", "cuda:1"; "cpu" for torch's product on the CPU). The
            bounds, the refinement and the picks stay on the CPU and are the same on any device.
        images: ``(N, H, W[, 3]) uint8`` array-like (may decode files lazily), for ``vaal``.
        labeled_class_counts: ``(C,) int`` labels per class in the labeled set; ``base`` and
            ``balanced_random`` give the budget's remainder (b mod C) to the classes with the
            fewest (ties in an order drawn from ``seed``; all classes tie when not given).
            BASE's option ``remainder: class_order`` gives it to classes 0, 1, ... instead.
        options: the sampler's options, e.g. ``{"partitions": 10}`` for the partitioned samplers,
            ``{"cluster_ids": ids}`` for ``margin_clustering``; each is checked against the
            sampler's schema (``SAMPLERS[name].options``, listed by ``al samplers``), absent ones
            take their default, and a key the sampler does not declare is an error.
        shard, gather: ``(rank, processes)`` and an all-gather function (``gather(obj)`` -> the list
            of every process's ``obj``): each process streams every ``processes``-th block of
            ``chunk_size`` rows and the shards are merged exactly, so every process returns the
            selection one process would (samplers with ``SAMPLERS[name].shardable``; others refuse).
    """
    if name not in SAMPLERS:
        raise InputError(f"unknown sampler {name!r}; known samplers: {', '.join(sorted(SAMPLERS))}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise InputError(f"budget must be a non-negative integer, got {budget!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    spec = SAMPLERS[name]
    if shard[1] > 1 and not spec.shardable:
        shardable = sorted(n for n, s in SAMPLERS.items() if s.shardable)
        raise InputError(f"sampler {name!r} does not run sharded over processes; run it in one process "
                         f"(samplers that do: {', '.join(shardable)})")
    pool = make_pool(
        labeled_mask=labeled_mask, features=features, head_weight=head_weight, head_bias=head_bias,
        logits=logits, labels=labels, chunk_size=chunk_size, options=resolve(spec.options, options, f"sampler {name!r}"),
        images=images, labeled_class_counts=labeled_class_counts, shard=shard, gather=gather,
        precision=precision, device=device,
    )
    _check_available(spec, pool)
    available = int((~pool.labeled_mask).sum())
    if budget > available:
        warnings.warn(
            f"budget {budget} exceeds the {available} unlabeled items left; selecting all {available}",
            BudgetWarning,
            stacklevel=2,
        )
        budget = available
    if budget == 0:
        return Selection(indices=np.empty(0, dtype=np.int64), scores=np.empty(0, dtype=np.float64))
    selection = spec.fn(pool, int(budget), int(seed))
    if selection.indices.shape != (budget,):
        raise AssertionError(f"sampler {name!r} returned {selection.indices.shape[0]} items, expected {budget}")
    return dataclasses.replace(selection, notes=dict(pool.stats)) if pool.stats else selection


def select(name: str, budget: int, **inputs) -> np.ndarray:
    """Pool indices ``(min(budget, #unlabeled),) int64`` picked by sampler ``name``.

    Same keyword arguments as `select_with_scores`.
    """
    return select_with_scores(name, budget, **inputs).indices


__all__ = ["SAMPLERS", "BudgetWarning", "Selection", "SamplerSpec", "select", "select_with_scores"]
