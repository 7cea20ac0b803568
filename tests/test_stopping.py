"""Stopping signals: Cohen's kappa, the stabilizing-predictions rule, Wilson intervals, the stop set."""

import math

import numpy as np
import pytest

from al_core.stopping import cohen_kappa, stabilized_at, stop_set, wilson_interval


def test_kappa_of_the_textbook_example():
    # Two raters, 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5, kappa 0.4.
    first = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15)
    second = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(first, second, 2) == pytest.approx(0.4)
    assert cohen_kappa(first, first, 2) == 1.0
    assert cohen_kappa(np.zeros(5, int), np.zeros(5, int), 3) == 1.0  # one class everywhere: full agreement
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0]), 2) == pytest.approx(-1.0)


def test_stabilized_at_needs_a_full_window_of_high_agreement():
    kappas = [None, 0.90, 0.995, 0.999, 0.95, 0.999, 0.999, 1.0]
    assert stabilized_at(kappas, 0.99, 3) == 7  # 0.95 at index 4 keeps the means of the windows ending at 4, 5, 6 below 0.99
    assert stabilized_at(kappas, 0.99, 1) == 2
    assert stabilized_at([None, 0.5, 0.6], 0.99, 3) is None


def test_wilson_interval_known_values():
    low, high = wilson_interval(0.5, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = wilson_interval(1.0, 10)  # never outside [0, 1], and not of width zero at the edge
    assert high == pytest.approx(1.0) and round(low, 4) == 0.7225
    assert all(math.isnan(x) for x in wilson_interval(0.5, 0))


def test_the_stop_set_is_fixed_and_bounded():
    assert np.array_equal(stop_set(100, 10, seed=3), stop_set(100, 10, seed=3))
    assert stop_set(100, 10, seed=3).tolist() == sorted(set(stop_set(100, 10, seed=3).tolist()))
    assert stop_set(5, 10).tolist() == [0, 1, 2, 3, 4]
    chosen = stop_set(1000, 200, seed=3)
    assert chosen.shape == (200,) and chosen.dtype == np.int64 and len(set(chosen.tolist())) == 200
    assert chosen.min() >= 0 and chosen.max() < 1000 and chosen.max() > 500  # spread over the pool, not its head
    assert not np.array_equal(chosen, stop_set(1000, 200, seed=4))
