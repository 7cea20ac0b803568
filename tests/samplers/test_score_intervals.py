"""The filter's score intervals hold the score of every logits within the bound (checked by
properties: logits moved to random points and to the corners of the box the bound allows)."""

import numpy as np
import pytest

from al_core.samplers.scores import CONFIDENCE, ENTROPY, MARGIN, boundary_distance_bounds, boundary_distances, inverse_weight_distances, nearest_boundary_bounds


def logits_and_bounds(seed: int, rows: int, classes: int, scale: float):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((rows, classes)) * scale).astype(np.float32)
    logits[: rows // 4, 1] = logits[: rows // 4, 0] + rng.uniform(-1e-3, 1e-3, rows // 4).astype(np.float32)  # near-ties on top
    logits[rows // 4: rows // 2, 0] += np.float32(8 * scale)  # one class far ahead (saturated rows)
    bound = rng.choice([0.0, 1e-6, 1e-3, 3e-2], size=rows) * rng.uniform(0.5, 1.0, rows)
    return logits, bound


def moved(logits: np.ndarray, bound: np.ndarray, rng, corners: bool) -> np.ndarray:
    if corners:
        step = rng.choice([-1.0, 1.0], size=logits.shape)
    else:
        step = rng.uniform(-1.0, 1.0, size=logits.shape)
    out = (logits.astype(np.float64) + step * bound[:, None] * (1.0 - 1e-6)).astype(np.float32)
    # float32 rounding may step past the bound: pull those back to the given logits
    beyond = np.abs(out.astype(np.float64) - logits) > bound[:, None]
    out[beyond] = logits[beyond]
    return out


@pytest.mark.parametrize("score", [CONFIDENCE, MARGIN, ENTROPY], ids=["confidence", "margin", "entropy"])
@pytest.mark.parametrize("classes, scale", [(2, 1.0), (10, 3.0), (1000, 1.5), (1000, 12.0)])
def test_softmax_score_intervals_hold_every_moved_logits(score, classes, scale):
    logits, bound = logits_and_bounds(classes, 400, classes, scale)
    lower, upper, unsettled, *top_two = score.bounds(logits, bound)
    assert unsettled is None and (lower <= upper).all()
    rng = np.random.default_rng(7)
    for trial in range(6):
        other = logits if trial == 0 else moved(logits, bound, rng, corners=trial % 2 == 1)
        value = score.exact(other)
        assert (lower <= value).all() and (value <= upper).all(), trial
        if top_two:  # rows whose score two classes' logits decide: that score, whatever the others
            classes, denominator = top_two
            pairs = np.flatnonzero(classes[:, 0] >= 0)
            second = (other[pairs, classes[pairs, 1]] - other[pairs, classes[pairs, 0]]).astype(np.float64)
            assert score.from_top_two(second, denominator[pairs]).tobytes() == value[pairs].tobytes()
    tight = bound == 0.0
    assert np.median((upper - lower)[tight] / np.maximum(np.abs(upper[tight]), 1e-12)) < 1e-3  # the intervals do work


@pytest.mark.parametrize("classes", [3, 40])
def test_boundary_distance_intervals_hold_every_moved_logits(classes):
    rng = np.random.default_rng(classes)
    weight = rng.standard_normal((classes, 16)).astype(np.float32)
    geometry = inverse_weight_distances(weight)
    logits, bound = logits_and_bounds(classes + 1, 400, classes, 2.0)
    lower, upper, unsettled = boundary_distance_bounds(logits, bound, geometry)
    mase_lower, mase_upper, mase_unsettled = nearest_boundary_bounds(logits, bound, geometry)
    settled, mase_settled = ~unsettled, ~mase_unsettled
    assert settled.sum() > 200 and mase_settled.sum() > 200
    for trial in range(6):
        other = logits if trial == 0 else moved(logits, bound, rng, corners=trial % 2 == 1)
        distances, predicted = boundary_distances(other, geometry)
        assert (lower[settled] <= distances[settled]).all() and (distances[settled] <= upper[settled]).all(), trial
        nearest = distances[np.arange(len(predicted)), predicted]
        assert (mase_lower[mase_settled] <= nearest[mase_settled]).all() and (nearest[mase_settled] <= mase_upper[mase_settled]).all()


@pytest.mark.parametrize("twins", [False, True])
def test_sparse_boundary_entries_are_the_dense_intervals_that_pass(twins):
    """boundary_entry_bounds: exactly the settled entries of boundary_distance_bounds whose lower end
    passes the thresholds, with both ends bit for bit (own columns and identical weight rows too)."""
    from al_core.samplers.scores import boundary_entry_bounds

    rng = np.random.default_rng(3)
    weight = rng.standard_normal((40, 16)).astype(np.float32)
    if twins:
        weight[7] = weight[6]
    geometry = inverse_weight_distances(weight)
    logits, bound = logits_and_bounds(5, 300, 40, 2.0)
    lower, upper, unsettled = boundary_distance_bounds(logits, bound, geometry)
    mixed = np.sort(lower[~unsettled], axis=0)[9].astype(np.float32)
    mixed[::5], mixed[1::7], mixed[2::9] = np.inf, -np.inf, 0.0  # classes without a threshold, not wanted, at 0
    for thresholds in (np.full(40, np.inf, dtype=np.float32), rng.uniform(0, 0.5, 40).astype(np.float32),
                       np.sort(lower[~unsettled], axis=0)[5].astype(np.float32), mixed, np.zeros(40, dtype=np.float32)):
        positions, classes, entry_lower, entry_upper, entry_unsettled = boundary_entry_bounds(logits, bound, geometry, thresholds)
        assert np.array_equal(entry_unsettled, unsettled) and unsettled.any() and not unsettled.all()
        wanted = (lower <= thresholds[None, :]) & ~unsettled[:, None]
        expected = np.flatnonzero(wanted)
        assert (expected.shape[0] > 0 or not (thresholds > 0).any()) and np.array_equal(positions * 40 + classes, expected)
        assert entry_lower.tobytes() == lower.reshape(-1)[expected].tobytes()
        assert entry_upper.tobytes() == upper.reshape(-1)[expected].tobytes()


def test_numpy_expm1_is_non_decreasing_where_saturated_margins_are_settled():
    """Saturated margins are settled from -expm1 at the two ends of z_2 - z_1's interval, which
    holds only if numpy's expm1 never decreases: checked on a dense sweep of the region used (and
    across float64 neighbours) on this platform."""
    x = np.linspace(-60.0, 0.0, 2_000_001)
    assert (np.diff(np.expm1(x)) >= 0).all()
    neighbours = np.nextafter(x[:-1], np.inf)
    assert (np.expm1(neighbours) >= np.expm1(x[:-1])).all()


def test_saturated_margins_are_points_that_the_exact_logits_give():
    """Where the top two classes decide the margin and z_2 - z_1 is far below -38, the interval is
    the score itself (no exact logit needed), and any logits within the bound give that score."""
    rng = np.random.default_rng(11)
    logits = (rng.standard_normal((300, 1000)) * 3.0).astype(np.float32)
    logits[:, 0] += np.float32(60.0)  # far ahead: saturated rows
    logits[:100, 0] -= np.float32(rng.uniform(15.0, 25.0, 100))  # gaps near the edge of saturation
    bound = rng.choice([1e-6, 1e-3, 3e-2, 0.5], size=300)
    lower, upper, _, classes, denominator = MARGIN.bounds(logits, bound)
    points = lower == upper
    assert points[100:].mean() > 0.9 and not points[:100].all()
    for trial in range(6):
        other = moved(logits, bound, rng, corners=trial % 2 == 1)
        assert (MARGIN.exact(other)[points] == lower[points]).all(), trial


@pytest.mark.parametrize("classes, scale", [(10, 3.0), (1000, 1.5), (1000, 12.0)])
def test_entropy_intervals_under_a_threshold_are_the_full_ones_where_they_reach_it(classes, scale):
    """Given a threshold, rows whose interval may reach down to it get the interval they get without
    one (bit for bit); the others a wider one that still holds every moved logits' score and lies
    above the threshold (the stream drops them either way)."""
    logits, bound = logits_and_bounds(classes + 5, 400, classes, scale)
    full_lower, full_upper, _ = ENTROPY.bounds(logits, bound)
    threshold = float(np.quantile(full_lower, 0.3))
    lower, upper, unsettled = ENTROPY.bounds(logits, bound, threshold=threshold)
    assert unsettled is None and ENTROPY.takes_threshold
    near = lower <= threshold
    assert (full_lower <= threshold)[~near].sum() == 0  # every row that reaches the threshold is in ``near``
    assert lower[near].tobytes() == full_lower[near].tobytes() and upper[near].tobytes() == full_upper[near].tobytes()
    assert (lower[~near] <= full_lower[~near]).all() and (upper[~near] >= full_upper[~near]).all()
    assert ((upper - lower)[~near] > (full_upper - full_lower)[~near]).any()  # the wider bound is used
    rng = np.random.default_rng(3)
    for trial in range(4):
        other = moved(logits, bound, rng, corners=trial % 2 == 1)
        value = ENTROPY.exact(other)
        assert (lower <= value).all() and (value <= upper).all(), trial


@pytest.mark.parametrize("seed", range(4))
def test_sparse_boundary_entries_at_thresholds_equal_to_lower_ends(seed):
    """Entries whose lower end equals their class's threshold are kept, bit for bit, with each
    class's threshold set to one of its own entries' lower ends, on a 300-class head (random, and
    with every pair of classes equally far apart): what any cheaper screen ahead of the lower ends
    must keep too."""
    from al_core.samplers.scores import boundary_entry_bounds

    rng = np.random.default_rng(100 + seed)
    if seed % 2:
        weight = (rng.standard_normal((300, 24)) * rng.uniform(0.5, 3.0, (300, 1))).astype(np.float32)
    else:  # every pair of classes equally far apart: the screen's reach is each entry's own, no room to spare
        weight = (np.eye(300, 320) * rng.uniform(0.5, 3.0)).astype(np.float32)
    geometry = inverse_weight_distances(weight)
    logits, bound = logits_and_bounds(200 + seed, 500, 300, 4.0)
    lower, upper, unsettled = boundary_distance_bounds(logits, bound, geometry)
    settled_lower = np.where(unsettled[:, None], np.inf, lower)
    for rank in (0, 3, 40):
        thresholds = np.sort(settled_lower, axis=0)[rank].astype(np.float32)
        positions, classes, entry_lower, entry_upper, _ = boundary_entry_bounds(logits, bound, geometry, thresholds)
        expected = np.flatnonzero((lower <= thresholds[None, :]) & ~unsettled[:, None])
        assert np.array_equal(positions * 300 + classes, expected)
        assert entry_lower.tobytes() == lower.reshape(-1)[expected].tobytes()
        assert entry_upper.tobytes() == upper.reshape(-1)[expected].tobytes()


def test_sparse_boundary_entries_keep_the_largest_gap_that_rounds_to_the_threshold():
    """Entries at the float32 edge of a threshold: for each class c of an equidistant head and each
    threshold T_c, the row whose s = z_p - z_c - 2 bound is the largest float32 with
    fl(s * inverse_low[p, c]) <= T_c (found by stepping up one float32 at a time), and its neighbour
    one step above: the first is kept with the dense lower end, the second left out."""
    from al_core.samplers.scores import boundary_entry_bounds

    classes = 12
    geometry = inverse_weight_distances((np.eye(classes, 16) * 1.7).astype(np.float32))
    rng = np.random.default_rng(5)
    thresholds = rng.uniform(0.01, 5.0, classes).astype(np.float32)
    logits = np.full((2 * classes * (classes - 1), classes), -1e4, dtype=np.float32)
    row = 0
    for c in range(classes):
        for p in range(classes):
            if p == c:
                continue
            inverse = geometry.inverse_low[p, c]
            s = np.float32(float(thresholds[c]) / float(inverse))
            while np.float32(s * inverse) <= thresholds[c]:
                s = np.nextafter(s, np.float32(np.inf))
            s = np.nextafter(s, np.float32(-np.inf))  # the largest s that still rounds to <= T_c
            for gap in (s, np.nextafter(s, np.float32(np.inf))):
                logits[row, p], logits[row, c] = 0.0, -gap
                row += 1
    bound = np.zeros(logits.shape[0])  # 2 bound rounds up to the smallest float32: s is the gap itself
    lower, upper, unsettled = boundary_distance_bounds(logits, bound, geometry)
    assert not unsettled.any()
    positions, entry_classes, entry_lower, entry_upper, _ = boundary_entry_bounds(logits, bound, geometry, thresholds)
    expected = np.flatnonzero(lower <= thresholds[None, :])
    assert np.array_equal(positions * classes + entry_classes, expected)
    assert entry_lower.tobytes() == lower.reshape(-1)[expected].tobytes()
    kept = set(zip(positions.tolist(), entry_classes.tolist()))
    row = 0
    for c in range(classes):
        for p in range(classes):
            if p != c:
                assert (row, c) in kept and (row + 1, c) not in kept
                row += 2
