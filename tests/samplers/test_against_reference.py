"""Every deterministic sampler equals its slow reference, whatever the chunk size."""

import numpy as np
import pytest

from al_core.samplers import select, select_with_scores
from tests.samplers import reference
from tests.samplers.conftest import make_problem


def reference_selection(name, features, weight, bias, mask, budget, order="round_robin"):
    logits = reference.logits_of(features, weight.astype(np.float64), bias.astype(np.float64))
    if name in ("confidence", "margin", "entropy"):
        return reference.uncertainty(name, logits, mask, budget)
    if name == "mase":
        return reference.mase(logits, weight.astype(np.float64), mask, budget)
    return reference.base(logits, weight.astype(np.float64), mask, budget, order)


@pytest.mark.parametrize("name", ["confidence", "margin", "entropy", "mase"])
@pytest.mark.parametrize("budget", [1, 7, 23, 60])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(name, budget, seed):
    features, weight, bias, mask, _ = make_problem(seed=seed)
    expected = reference_selection(name, features, weight, bias, mask, budget)
    for chunk_size in (17, 64, 10_000):
        got = select(name, budget, features=features, head_weight=weight, head_bias=bias,
                     labeled_mask=mask, seed=0, chunk_size=chunk_size)
        assert got.tolist() == expected, (name, chunk_size)


@pytest.mark.parametrize("name", ["confidence", "margin", "entropy", "mase", "base"])
def test_logits_instead_of_features_give_the_same_selection(name):
    features, weight, bias, mask, _ = make_problem(seed=3)
    logits = features.astype(np.float32) @ weight.T + bias
    from_features = select(name, 30, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
    from_logits = select(name, 30, logits=logits, head_weight=weight, labeled_mask=mask, seed=0)
    assert from_features.tolist() == from_logits.tolist()


def test_base_classes_compete_for_the_same_items():
    # Every item lies near the boundary between classes 0 and 1, so both classes want the same
    # items: class 0 picks first, class 1 must skip them.
    rng = np.random.default_rng(0)
    features = np.column_stack([rng.normal(scale=0.1, size=200), rng.normal(size=200)]).astype(np.float32)
    weight = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 5.0]], dtype=np.float32)
    bias = np.array([0.0, 0.0, -50.0], dtype=np.float32)
    mask = np.zeros(200, dtype=bool)
    got = select("base", 9, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0, chunk_size=13)
    logits = reference.logits_of(features, weight.astype(np.float64), bias.astype(np.float64))
    assert got.tolist() == reference.base(logits, weight.astype(np.float64), mask, 9)
    assert len(set(got.tolist())) == 9


def test_tied_scores_are_broken_by_pool_order():
    features = np.zeros((50, 4), dtype=np.float32)  # every item has the same logits
    weight = np.eye(3, 4, dtype=np.float32)
    mask = np.zeros(50, dtype=bool)
    mask[[0, 3]] = True
    for name in ("confidence", "margin", "entropy", "mase"):
        got = select(name, 5, features=features, head_weight=weight, labeled_mask=mask, seed=0, chunk_size=7)
        assert got.tolist() == [1, 2, 4, 5, 6], name


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [23, 60])
def test_base_streams_again_when_a_class_runs_out_of_candidates(monkeypatch, seed, budget, order):
    # With no slack each class keeps only its quota of candidates, so every class whose items
    # were taken by an earlier class runs out and the pool is streamed again without them.
    from al_core.samplers import boundary

    monkeypatch.setattr(boundary, "BASE_SLACK_FACTOR", 0)
    monkeypatch.setattr(boundary, "BASE_SLACK_EXTRA", 0)
    passes = []
    original = boundary._boundary_candidates
    monkeypatch.setattr(boundary, "_boundary_candidates", lambda *args: passes.append(1) or original(*args))
    features, weight, bias, mask, _ = make_problem(seed=seed)
    expected = reference_selection("base", features, weight, bias, mask, budget, order)
    for chunk_size in (17, 10_000):
        passes.clear()
        got = select("base", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0,
                     chunk_size=chunk_size, options={"order": order})
        assert got.tolist() == expected, chunk_size
        assert len(passes) > 1  # the case under test happened


def test_longer_lists_follow_the_fastest_walk_within_two_and_eight_times():
    from al_core.samplers.boundary import longer_lists

    keep = np.array([10, 10, 10, 10])
    # the fastest list walked 4 items in 20 turns, 0.2 a turn: 3 x 0.2 x needed (60, 120, 3, 0), within
    # 2 and 8 times the length (60, 80, 20, 20), never more than needed
    got = longer_lists(keep, np.array([4, 3, 0, 1]), 20, np.array([100, 200, 5, 0]))
    assert got.tolist() == [60, 80, 5, 0]
    # a list that ran out late, at a slow pace: twice its length, as doubling gave
    assert longer_lists(keep, np.array([10, 9, 2, 4]), 600, np.array([300, 300, 300, 300])).tolist() == [20, 20, 20, 20]
    # a list that ran out before its class's first turn of the pass (no turn run): the lengths that always suffice
    assert longer_lists(keep, np.array([10, 0, 0, 0]), 0, np.array([30, 50, 90, 100])).tolist() == [30, 50, 80, 80]


def test_base_lists_grow_with_the_pace_of_the_walk_where_every_class_wants_the_same_items(monkeypatch):
    # Four in five items lie near the origin, close to every boundary: all classes want them, each
    # class's short list runs out, and the lists the turns left need grow as the taken items pile up.
    from al_core.samplers import boundary

    monkeypatch.setattr(boundary, "BASE_SLACK_FACTOR", 0)
    monkeypatch.setattr(boundary, "BASE_SLACK_EXTRA", 2)
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(40, 16)).astype(np.float32)
    features = (rng.normal(size=(4000, 16)) * rng.choice([0.05, 1.0], size=(4000, 1), p=[0.8, 0.2])).astype(np.float32)
    bias, mask = np.zeros(40, dtype=np.float32), np.zeros(4000, dtype=bool)
    logits = reference.logits_of(features, weight.astype(np.float64), bias.astype(np.float64))
    expected = reference.base(logits, weight.astype(np.float64), mask, 400)
    passes = []
    original = boundary._boundary_candidates
    monkeypatch.setattr(boundary, "_boundary_candidates", lambda *args: passes.append(1) or original(*args))
    counts = {}
    for rule, (safety, most) in {"doubling": (0, 2), "pace": (boundary.LIST_GROWTH_SAFETY, boundary.LIST_GROWTH_MAX)}.items():
        monkeypatch.setattr(boundary, "LIST_GROWTH_SAFETY", safety)
        monkeypatch.setattr(boundary, "LIST_GROWTH_MAX", most)
        passes.clear()
        got = select_with_scores("base", 400, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0,
                                 chunk_size=97)
        assert got.indices.tolist() == expected, rule
        assert got.notes["passes"] == len(passes) and "few_class_passes" not in got.notes  # what the select stage reports
        counts[rule] = len(passes)
    assert counts == {"doubling": 3, "pace": 2}


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
@pytest.mark.parametrize("budget", [1, 7, 23, 60])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_base_orders_match_the_reference(order, budget, seed):
    features, weight, bias, mask, _ = make_problem(seed=seed)
    expected = reference_selection("base", features, weight, bias, mask, budget, order)
    for chunk_size in (17, 10_000):
        got = select("base", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                     seed=0, chunk_size=chunk_size, options={"order": order})
        assert got.tolist() == expected, (order, chunk_size)


def competing_pool():
    """Items whose nearest boundaries are shared by classes 0, 1 and 2, so that the order in
    which classes take their turns changes which items each class gets."""
    features, weight, bias, mask, _ = make_problem(seed=5, n=400, d=6, c=3, labeled=0)
    return features, weight, bias, mask


def test_round_robin_and_sequential_pick_different_sets_on_competing_classes():
    features, weight, bias, mask = competing_pool()
    picks = {}
    for order in ("round_robin", "sequential"):
        got = select("base", 30, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                     seed=0, chunk_size=64, options={"order": order})
        assert got.tolist() == reference_selection("base", features, weight, bias, mask, 30, order)
        picks[order] = got
    assert set(picks["round_robin"].tolist()) != set(picks["sequential"].tolist())


def test_round_robin_is_the_default():
    features, weight, bias, mask, _ = make_problem(seed=1)
    default = select("base", 23, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
    assert default.tolist() == reference_selection("base", features, weight, bias, mask, 23, "round_robin")


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
def test_base_gives_the_remainder_to_the_classes_with_fewest_labels(order):
    features, weight, bias, mask, labels = make_problem(seed=2)
    counts = np.bincount(labels[mask], minlength=5)
    logits = reference.logits_of(features, weight.astype(np.float64), bias.astype(np.float64))
    for budget in (3, 13):
        got = select("base", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                     seed=0, labeled_class_counts=counts, options={"order": order})
        assert got.tolist() == reference.base(logits, weight.astype(np.float64), mask, budget, order, counts.tolist())


def test_unknown_base_order_is_refused():
    from al_core.errors import InputError

    features, weight, bias, mask, _ = make_problem(seed=0)
    with pytest.raises(InputError, match="order.* must be one of"):
        select("base", 5, features=features, head_weight=weight, labeled_mask=mask, seed=0, options={"order": "zigzag"})


@pytest.mark.parametrize("budget", [4, 13, 23, 31])
@pytest.mark.parametrize("seed", [0, 1])
def test_base_remainder_class_order_is_algorithm_2_read_literally(budget, seed):
    """With ``remainder: class_order`` BASE equals the paper's loop (tests/samplers/reference.py,
    base_algorithm2), the last partial pass included; the default gives those turns elsewhere."""
    features, weight, bias, mask, _ = make_problem(seed=seed)
    num_classes = weight.shape[0]
    assert budget % num_classes  # a partial last pass: the case the option decides
    logits = reference.logits_of(features, weight.astype(np.float64), bias.astype(np.float64))
    expected = reference.base_algorithm2(logits, weight.astype(np.float64), mask, budget)
    for chunk_size in (17, 10_000):
        got = select("base", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=seed,
                     chunk_size=chunk_size, options={"remainder": "class_order"})
        assert got.tolist() == expected, chunk_size
    counts = np.arange(num_classes)[::-1].copy()  # class 0 has the most labels: the default skips it
    default = select("base", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=seed,
                     labeled_class_counts=counts)
    literal = select("base", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=seed,
                     labeled_class_counts=counts, options={"remainder": "class_order"})
    assert literal.tolist() == expected and default.tolist() != literal.tolist()
