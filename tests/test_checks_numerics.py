"""checks.numerics: its independent float64 BASE/MASE agrees with al_core where float32 is
not in question, so a difference it reports on a real run is about numerics, not about the check."""

import numpy as np
import pytest

from al_core.samplers import select
from checks.numerics import boundary_distances_float64, reference_selection


@pytest.mark.parametrize("sampler, order", [("base", "round_robin"), ("base", "sequential"), ("mase", None)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_selection_matches_al_core(sampler, order, seed):
    rng = np.random.default_rng(seed)
    # Well-separated scores (features on a coarse grid) so that float32 cannot reorder them.
    features = rng.integers(-8, 9, size=(300, 6)).astype(np.float64) / 4
    weight = rng.normal(size=(5, 6))
    bias = rng.normal(size=5)
    labeled_mask = rng.random(300) < 0.2
    budget = 37  # 5 classes: unequal quotas, and classes compete for the same items
    logits = features @ weight.T + bias
    counts = rng.integers(0, 9, size=5)
    expected, gap = reference_selection(sampler, boundary_distances_float64(logits, weight), labeled_mask, budget,
                                        order or "round_robin", counts, seed=11)
    got = select(sampler, budget, features=features.astype(np.float32), head_weight=weight.astype(np.float32),
                 head_bias=bias.astype(np.float32), labeled_mask=labeled_mask, seed=11, labeled_class_counts=counts,
                 options={"order": order} if order else None)
    assert gap > 1e-4  # no near-tie at any cutoff on this data, so float32 cannot change the picks
    assert np.array_equal(got, expected)
    assert len(set(expected.tolist())) == budget and not labeled_mask[expected].any()


def test_mase_margin_is_the_nearest_boundary():
    logits = np.array([[3.0, 1.0, 2.5]])
    weight = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    distances = boundary_distances_float64(logits, weight)
    # Predicted class 0: distances |3-1|/sqrt(2) to class 1, |3-2.5|/1 to class 2.
    assert distances[0, 1] == pytest.approx(2 / np.sqrt(2)) and distances[0, 2] == pytest.approx(0.5)
    assert distances[0, 0] == pytest.approx(0.5)
