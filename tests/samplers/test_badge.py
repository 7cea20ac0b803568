import numpy as np
import pytest

from al_core.errors import InputError
from al_core.samplers import select
from tests.samplers import reference
from tests.samplers.conftest import make_problem


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_badge_matches_explicit_gradient_embeddings(seed):
    features, weight, bias, mask, _ = make_problem(seed=seed, n=120, d=6, c=4)
    expected = reference.badge(features, weight.astype(np.float64), bias.astype(np.float64), mask, 15, np.random.default_rng(seed))
    for chunk_size in (11, 1000):
        got = select("badge", 15, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=seed, chunk_size=chunk_size)
        assert got.tolist() == expected


def test_badge_refuses_pools_too_large_for_memory():
    features, weight, bias, mask, _ = make_problem()
    with pytest.raises(InputError, match=r"badge's gradient factors for \d+ items would take .* above the limit .* use 'partitioned_badge'"):
        select("badge", 5, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0,
               options={"memory_limit_bytes": 100})


def test_sketch_preserves_gradient_inner_products():
    from al_core.samplers.badge import SKETCH_DIM, gradient_residuals, sketch_gradients

    features, weight, bias, _, _ = make_problem(seed=0, n=60, d=8, c=5)
    residuals = gradient_residuals(features @ weight.T + bias)
    explicit = np.stack([np.outer(u, x).ravel() for u, x in zip(residuals, features)]).astype(np.float64)
    rng = np.random.default_rng(0)
    sketch = sketch_gradients(residuals, features, rng.standard_normal((SKETCH_DIM, 5)).astype(np.float32),
                              rng.standard_normal((SKETCH_DIM, 8)).astype(np.float32)).astype(np.float64)
    exact, approx = explicit @ explicit.T, sketch @ sketch.T
    assert np.linalg.norm(approx - exact) / np.linalg.norm(exact) < 0.25
    assert np.corrcoef(exact.ravel(), approx.ravel())[0, 1] > 0.95


def test_partitioned_badge_spreads_the_budget_over_partitions():
    features, weight, bias, mask, _ = make_problem(seed=1, n=400, d=6, c=4)
    got = select("partitioned_badge", 30, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                 seed=0, options={"partitions": 3})
    assert len(set(got.tolist())) == 30 and not mask[got].any()
    again = select("partitioned_badge", 30, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                   seed=0, options={"partitions": 3}, chunk_size=13)
    assert got.tolist() == again.tolist()


@pytest.mark.parametrize("seed, partitions, budget", [(0, 3, 30), (1, 4, 13), (2, 5, 7)])
def test_partitioned_badge_matches_its_reference(seed, partitions, budget):
    features, weight, bias, mask, _ = make_problem(seed=seed, n=160, d=6, c=4)
    expected = reference.partitioned_badge(features, weight.astype(np.float64), bias.astype(np.float64), mask, budget,
                                           partitions, seed)
    for chunk_size in (11, 1000):
        got = select("partitioned_badge", budget, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                     seed=seed, chunk_size=chunk_size, options={"partitions": partitions})
        assert got.tolist() == expected
