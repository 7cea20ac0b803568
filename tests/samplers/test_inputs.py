"""Bad input gets a clear error; the inputs are never modified."""

import numpy as np
import pytest

from al_core.errors import InputError
from al_core.samplers import BudgetWarning, select


def test_unknown_sampler_lists_the_known_ones(problem):
    features, weight, bias, mask, _ = problem
    with pytest.raises(InputError, match=r"unknown sampler 'bse'.*base.*margin.*random"):
        select("bse", 5, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)


def test_feature_and_head_width_mismatch(problem):
    features, weight, bias, mask, _ = problem
    with pytest.raises(InputError, match="features has 12 columns but head_weight expects 11"):
        select("mase", 5, features=features, head_weight=weight[:, :11], head_bias=bias, labeled_mask=mask, seed=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_name_the_row(problem, bad):
    features, weight, bias, mask, _ = problem
    features = features.copy()
    mask = mask.copy()
    mask[57] = False
    features[57, 3] = bad
    with pytest.raises(InputError, match="features row 57 holds NaN or inf"):
        select("base", 5, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0, chunk_size=10)


def test_budget_larger_than_pool_takes_what_is_left_and_warns(problem):
    features, weight, bias, mask, _ = problem
    left = int((~mask).sum())
    for name in ("random", "base", "margin"):
        with pytest.warns(BudgetWarning, match=f"exceeds the {left} unlabeled items left"):
            picked = select(name, left + 50, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
        assert sorted(picked.tolist()) == np.flatnonzero(~mask).tolist()


def test_missing_inputs_are_named(problem):
    _, _, _, mask, _ = problem
    with pytest.raises(InputError, match="needs logits"):
        select("margin", 5, labeled_mask=mask, seed=0)
    logits = np.zeros((mask.size, 3), dtype=np.float32)
    with pytest.raises(InputError, match="needs head_weight"):
        select("mase", 5, logits=logits, labeled_mask=mask, seed=0)


@pytest.mark.parametrize("budget", [-1, 2.5, "10", True])
def test_bad_budget(problem, budget):
    features, weight, bias, mask, _ = problem
    with pytest.raises(InputError, match="budget must be a non-negative integer"):
        select("random", budget, labeled_mask=mask, seed=0)


def test_labeled_mask_must_be_boolean(problem):
    features, weight, bias, mask, _ = problem
    with pytest.raises(InputError, match="labeled_mask must be a 1-d bool array"):
        select("random", 5, labeled_mask=mask.astype(int), seed=0)


def test_inputs_are_not_modified(problem):
    features, weight, bias, mask, _ = problem
    copies = [a.copy() for a in (features, weight, bias, mask)]
    select("base", 20, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
    for original, copy in zip((features, weight, bias, mask), copies):
        assert np.array_equal(original, copy)


def test_memory_mapped_features(tmp_path, problem):
    features, weight, bias, mask, _ = problem
    np.save(tmp_path / "f.npy", features.astype(np.float16))
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    got = select("base", 20, features=mapped, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0, chunk_size=33)
    want = select("base", 20, features=features.astype(np.float16), head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
    assert got.tolist() == want.tolist()


def test_random_depends_on_seed(problem):
    _, _, _, mask, _ = problem
    a = select("random", 30, labeled_mask=mask, seed=1)
    b = select("random", 30, labeled_mask=mask, seed=2)
    assert a.tolist() != b.tolist()
