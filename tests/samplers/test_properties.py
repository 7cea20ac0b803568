"""Properties every sampler keeps, on random pools (hypothesis)."""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from al_core.linear import linear_logits
from al_core.samplers import SAMPLERS, select
from tests.samplers.conftest import make_problem

problems = st.builds(
    make_problem,
    seed=st.integers(0, 10_000),
    n=st.integers(5, 120),
    d=st.integers(1, 6),
    c=st.integers(2, 6),
    labeled=st.integers(0, 5),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems, budget=st.integers(0, 130), chunk_size=st.integers(1, 50), seed=st.integers(0, 2**31))
def test_every_sampler_keeps_its_contract(problem, budget, chunk_size, seed):
    features, weight, bias, mask, labels = problem
    unlabeled = int((~mask).sum())
    for name in SAMPLERS:
        if "images" in SAMPLERS[name].needs:
            continue  # pixel samplers train networks: tests/samplers/test_vaal.py checks the same contract
        # Logits given: the streaming and ranking must not depend on chunk_size; the float32 product
        # itself may change in its last bit with a block's row count (BLAS), which is not theirs.
        inputs = dict(features=features, head_weight=weight, head_bias=bias, logits=linear_logits(features, weight, bias),
                      labeled_mask=mask, seed=seed, labels=labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            picked = select(name, budget, **inputs)
            again = select(name, budget, **inputs)
            chunked = select(name, budget, chunk_size=chunk_size, **inputs)
        assert picked.dtype == np.int64
        assert len(picked) == min(budget, unlabeled), name
        assert len(set(picked.tolist())) == len(picked), name
        assert not mask[picked].any(), name
        assert picked.tolist() == again.tolist(), name
        assert picked.tolist() == chunked.tolist(), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems, budget=st.integers(1, 60), chunk_size=st.integers(1, 50), seed=st.integers(0, 2**31))
def test_streaming_samplers_from_features_do_not_depend_on_the_chunking(problem, budget, chunk_size, seed):
    """From features they select on the exact logits (filter and refine), a function of each row alone."""
    features, weight, bias, mask, _ = problem
    inputs = dict(features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=seed)
    for name in sorted(name for name, spec in SAMPLERS.items() if spec.shardable):
        options = {"cluster_ids": np.arange(features.shape[0]) % 3} if name == "margin_clustering" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = select(name, budget, chunk_size=10_000, options=options, **inputs)
            chunked = select(name, budget, chunk_size=chunk_size, options=options, **inputs)
        assert whole.tolist() == chunked.tolist(), name
