"""When to stop labeling, without a test set: signals computed from the model's own predictions.

- **Stabilizing predictions** (Bloodgood and Vijay-Shanker 2009, "A method for stopping active
  learning based on stabilizing predictions and the need for user-adjustable stopping"): the
  model of each round predicts a fixed *stop set* of unlabeled items; Cohen's kappa measures the
  agreement of two consecutive rounds' predictions; stop once the mean kappa of the last
  ``window`` round pairs reaches ``threshold`` (the paper: window 3, threshold 0.99). small-text
  offers the same rule as ``KappaAverage``.
- **Changed share**: the fraction of the stop set whose predicted class changed since the previous
  round (small-text's ``ClassificationChange`` stops when it is 0).
- **Validation top-1 with its 95% Wilson interval**, when a labeled validation set exists.

All O(S) in the stop set's size S (and O(C^2) for the kappa's confusion matrix).
"""

from __future__ import annotations

import math

import numpy as np

WILSON_Z = 1.959963984540054  # the 97.5% normal quantile: a 95% interval


def cohen_kappa(first: np.ndarray, second: np.ndarray, num_classes: int) -> float:
    """Cohen's kappa of two labelings of the same items, ``(po - pe) / (1 - pe)``: po the observed
    agreement, pe the agreement expected from the two labelings' class frequencies alone. 1.0
    when both give one and the same class to every item (pe = 1: no disagreement is possible)."""
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    if first.shape != second.shape or first.size == 0:
        raise ValueError(f"kappa needs two labelings of the same items, got {first.shape} and {second.shape}")
    observed = float(np.mean(first == second))
    expected = float(np.dot(np.bincount(first, minlength=num_classes), np.bincount(second, minlength=num_classes))) / first.size ** 2
    return 1.0 if expected == 1.0 else (observed - expected) / (1.0 - expected)


def stabilized_at(kappas: list[float | None], threshold: float = 0.99, window: int = 3) -> int | None:
    """Index of the first round at which the mean of the last ``window`` kappas (each between a
    round and the one before it; None for the first round) reaches ``threshold``; None if never."""
    for index in range(len(kappas)):
        recent = kappas[max(0, index - window + 1):index + 1]
        if len(recent) == window and all(k is not None for k in recent) and np.mean(recent) >= threshold:
            return index
    return None


def stopping_point(rounds: list[str], labels: list[int], kappas: list[float | None], threshold: float,
                   window: int) -> dict:
    """Where the stabilizing-predictions rule says stop: ``stop_round`` and ``stop_labels`` (None
    when it has not yet), and ``rule``, the rule in words."""
    index = stabilized_at(kappas, threshold, window)
    rule = f"mean kappa of the last {window} round pairs >= {threshold}"
    if index is None:
        return {"stop_round": None, "stop_labels": None, "rule": rule}
    return {"stop_round": rounds[index], "stop_labels": int(labels[index]), "rule": rule}


def wilson_interval(accuracy: float, count: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion measured on ``count`` items."""
    if count <= 0 or not math.isfinite(accuracy):
        return (math.nan, math.nan)
    z2 = WILSON_Z ** 2
    centre = (accuracy + z2 / (2 * count)) / (1 + z2 / count)
    half = WILSON_Z * math.sqrt(accuracy * (1 - accuracy) / count + z2 / (4 * count ** 2)) / (1 + z2 / count)
    return (max(0.0, centre - half), min(1.0, centre + half))


def stop_set(pool_size: int, size: int, seed: int = 0) -> np.ndarray:
    """``(min(size, pool_size),) int64`` sorted pool positions: the fixed stop set (the same every
    round, labeled or not, as in the paper; seeded apart from the experiment's seed so that every
    sampler and seed of one dataset is judged on the same items)."""
    if size >= pool_size:
        return np.arange(pool_size, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(pool_size, size=size, replace=False)).astype(np.int64)
