"""Statistics of learning curves across seeds: means, confidence bands, labels-to-reach.

Pure numpy and math; the report stage draws what these compute.
"""

from __future__ import annotations

import math

import numpy as np

from al_core.errors import InputError


def _student_t_density(t: np.ndarray, dof: int) -> np.ndarray:
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return np.exp(log_norm - (dof + 1) / 2 * np.log1p(t * t / dof))


def _student_t_upper_mass(t: float, dof: int, intervals: int = 20_000) -> float:
    """P(0 <= T <= t) by Simpson's rule on an even grid; error far below 1e-8 for t <= 1000."""
    grid = np.linspace(0.0, t, intervals + 1)
    values = _student_t_density(grid, dof)
    step = t / intervals
    return float(step / 3 * (values[0] + values[-1] + 4 * values[1:-1:2].sum() + 2 * values[2:-1:2].sum()))


def student_t_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile (0.5 < p < 1) of Student's t with ``dof`` degrees of freedom.

    Bisection on the integrated density (no SciPy needed): about 60 evaluations of a 20k-point
    Simpson sum, a few milliseconds. ``student_t_quantile(0.975, 1) == 12.706...``.
    """
    if not 0.5 < probability < 1:
        raise InputError(f"probability must lie in (0.5, 1), got {probability}")
    if dof < 1:
        raise InputError(f"degrees of freedom must be >= 1, got {dof}")
    target = probability - 0.5
    low, high = 0.0, 1.0
    while _student_t_upper_mass(high, dof) < target:
        high *= 2
        if high > 1e6:
            raise InputError(f"quantile {probability} of t({dof}) is beyond 1e6")
    for _ in range(60):
        middle = (low + high) / 2
        if _student_t_upper_mass(middle, dof) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def mean_confidence_band(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided ``level`` t-interval of the mean of ``values`` (one per seed).

    With one value the band collapses to the value itself (there is no spread to estimate).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"expected a non-empty 1-d array of per-seed values, got shape {values.shape}")
    mean = float(values.mean())
    if values.size == 1:
        return mean, mean, mean
    half_width = student_t_quantile(0.5 + level / 2, values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, mean - half_width, mean + half_width


def labels_to_reach(labels: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    """The fewest labels at which ``accuracy`` first reaches ``target`` (paper Table 3), else None.

    ``labels`` and ``accuracy`` are one learning curve, in any order; sorted by labels here.
    """
    labels = np.asarray(labels)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if labels.shape != accuracy.shape:
        raise InputError(f"labels {labels.shape} and accuracy {accuracy.shape} differ in shape")
    order = np.argsort(labels, kind="stable")
    reached = np.flatnonzero(accuracy[order] >= target)
    return int(labels[order][reached[0]]) if reached.size else None


def sorted_class_counts(counts_per_seed: np.ndarray) -> np.ndarray:
    """``(S, C)`` per-seed class counts -> ``(C,)`` mean of each seed's counts sorted ascending.

    Sorting before averaging keeps the shape the paper plots (least- to most-queried class)
    instead of washing it out over seeds whose rare classes differ.
    """
    counts = np.asarray(counts_per_seed, dtype=np.float64)
    if counts.ndim == 1:
        counts = counts[None, :]
    return np.sort(counts, axis=1).mean(axis=0)
