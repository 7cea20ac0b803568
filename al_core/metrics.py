"""Evaluation metrics and statistics of the labeled set's class distribution."""

from __future__ import annotations

import numpy as np

from al_core.errors import InputError


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """Number of rows whose label is among the ``k`` largest logits. O(N*C)."""
    if logits.shape[0] != labels.shape[0]:
        raise InputError(f"logits has {logits.shape[0]} rows but labels has {labels.shape[0]}")
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` largest logits. O(N*C)."""
    return topk_correct(logits, labels, k) / max(labels.shape[0], 1)


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C,) int64`` number of items of each class."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def imbalance_ratio(counts: np.ndarray) -> float:
    """Most-labeled class count / least-labeled class count (paper Sec. 5).

    A class with no labels at all is counted as having one, so the ratio stays finite and still
    grows as classes are neglected; ``missing_classes`` reports such classes separately.
    An empty labeled set has ratio 1.
    """
    counts = np.asarray(counts)
    if counts.sum() == 0:
        return 1.0
    return float(counts.max() / max(int(counts.min()), 1))


def normalized_entropy(counts: np.ndarray) -> float:
    """Shannon entropy of the class distribution divided by log(C): 1 = balanced, 0 = one class."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0 or counts.shape[0] < 2:
        return 1.0
    probabilities = counts[counts > 0] / total
    return float(-(probabilities * np.log(probabilities)).sum() / np.log(counts.shape[0]))


def label_statistics(labels: np.ndarray, num_classes: int) -> dict:
    """Counts, imbalance ratio, normalised entropy and missing classes of a labeled set."""
    counts = class_counts(labels, num_classes)
    return {
        "labels": int(counts.sum()),
        "class_counts": counts.tolist(),
        "imbalance_ratio": imbalance_ratio(counts),
        "entropy": normalized_entropy(counts),
        "missing_classes": int((counts == 0).sum()),
    }
