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
    with pytest.raises(InputError, match="badge would hold"):
        select("badge", 5, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0,
               options={"memory_limit_bytes": 100})
