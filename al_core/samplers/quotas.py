"""Per-class quotas of a budget and the order in which classes take their turns.

Shared by BASE and the balanced-random oracle. Cost of everything here: O(C log C + b).
"""

from __future__ import annotations

import numpy as np

from al_core.errors import InputError

TURN_ORDERS = ("round_robin", "sequential")
REMAINDER_RULES = ("fewest_labels", "class_order")


def class_priority(num_classes: int, labeled_counts: np.ndarray | None, seed: int) -> np.ndarray:
    """``(C,) int64`` class indices, those with the fewest labels first (``labeled_counts``,
    ``(C,) int``; all equal when None), ties in a random order drawn from ``seed``.

    Why seeded ties and not class index: at C = 1000, b = 100 most classes have no label for
    many rounds, and BASE's pick for class c's boundary is often labeled as a neighbour, so c
    stays at zero labels; with ties by index, classes 0-99 would keep every turn. On the 1000-class
    pool of tests/samplers/test_quotas.py, 20 rounds give a boundary turn to 100 classes with the
    fixed rule, 241 with ties by index, over 800 with seeded ties.
    """
    if labeled_counts is None:
        labeled_counts = np.zeros(num_classes, dtype=np.int64)
    counts = np.asarray(labeled_counts)
    if counts.shape != (num_classes,):
        raise InputError(f"labeled_class_counts must have one entry per class ({num_classes}), got shape {counts.shape}")
    tie_break = np.random.default_rng(seed).permutation(num_classes)
    return np.lexsort((tie_break, counts)).astype(np.int64)


def class_quotas(budget: int, num_classes: int, labeled_counts: np.ndarray | None = None, seed: int = 0,
                 remainder: str = "fewest_labels") -> np.ndarray:
    """``(C,) int64``: floor(b/C) per class, and one more for b mod C classes: ``remainder``
    ``fewest_labels`` (default) the first of `class_priority` (fewest labels so far, seeded
    ties); ``class_order`` classes 0, 1, ..., b mod C - 1 (Alg. 2 read literally: its loop over the
    classes in index order stops when the budget is spent).

    The paper's settings have C dividing b, where every class gets exactly b/C and none of this
    matters. Otherwise the literal reading queries the same b mod C classes every round (with
    C = 1000 and b = 100, 100 classes and never the other 900), hence the default.
    """
    if remainder not in REMAINDER_RULES:
        raise InputError(f"remainder must be one of {REMAINDER_RULES}, got {remainder!r}")
    quotas = np.full(num_classes, budget // num_classes, dtype=np.int64)
    extra = budget % num_classes
    if extra:
        chosen = np.arange(extra) if remainder == "class_order" else class_priority(num_classes, labeled_counts, seed)[:extra]
        quotas[chosen] += 1
    return quotas


def turn_order(quotas: np.ndarray, order: str) -> np.ndarray:
    """``(sum(quotas),) int64``: the class that takes each turn, in turn order.

    ``round_robin`` (the paper's Alg. 2): passes over the classes in index order, each class with
    quota left taking one item per pass. ``sequential`` (the authors' released code): class 0
    takes its whole quota, then class 1, and so on.
    """
    if order not in TURN_ORDERS:
        raise InputError(f"base_order must be one of {TURN_ORDERS}, got {order!r}")
    quotas = np.asarray(quotas, dtype=np.int64)
    classes = np.repeat(np.arange(quotas.shape[0], dtype=np.int64), quotas)
    if order == "sequential":
        return classes
    pass_index = positions_in_runs(quotas)  # position of each turn within its class's run = the pass it belongs to
    return classes[np.lexsort((classes, pass_index))]


def positions_in_runs(counts: np.ndarray) -> np.ndarray:
    """``(sum(counts),) int64``: for runs of ``counts[i]`` elements laid end to end, each element's
    position within its run (0, 1, ..., counts[i] - 1). O(sum(counts))."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def turns_needed(turns: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C,) int64``: for each class, 1 + the position of its last turn (0 if it has none).

    Before its last turn a class can lose at most that many items to the others, so a list of
    this many candidates nearest its boundary always holds every item it will take.
    """
    needed = np.zeros(num_classes, dtype=np.int64)
    np.maximum.at(needed, turns, np.arange(1, turns.shape[0] + 1, dtype=np.int64))
    return needed
