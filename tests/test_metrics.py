import numpy as np
import pytest

from al_core.errors import InputError
from al_core.metrics import imbalance_ratio, label_statistics, normalized_entropy, topk_accuracy


def test_topk_accuracy():
    logits = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])
    labels = np.array([0, 1, 2])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(1.0)
    assert topk_accuracy(logits, labels, 5) == pytest.approx(1.0)  # k capped at C


def test_imbalance_ratio_counts_an_empty_class_as_one():
    assert imbalance_ratio(np.array([10, 5, 2])) == 5.0
    assert imbalance_ratio(np.array([10, 0, 2])) == 10.0
    assert imbalance_ratio(np.array([4, 4])) == 1.0


def test_normalized_entropy():
    assert normalized_entropy(np.array([5, 5, 5, 5])) == pytest.approx(1.0)
    assert normalized_entropy(np.array([7, 0, 0])) == pytest.approx(0.0)
    value = normalized_entropy(np.array([3, 1]))
    expected = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)) / np.log(2)
    assert value == pytest.approx(expected)


def test_label_statistics_and_bad_labels():
    stats = label_statistics(np.array([0, 0, 2]), 4)
    assert stats["class_counts"] == [2, 0, 1, 0]
    assert stats["missing_classes"] == 2
    assert stats["labels"] == 3
    with pytest.raises(InputError, match="labels must lie in 0..3"):
        label_statistics(np.array([0, 4]), 4)
