"""Cluster-Margin and Aggarwal's balancing against loop-by-loop references."""

import numpy as np
import pytest

from al_core.errors import InputError
from al_core.samplers import select, select_with_scores
from al_core.samplers.balancing import needs_balancing
from al_core.samplers.cluster_margin import round_robin
from tests.samplers import reference
from tests.samplers.conftest import make_problem


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("budget, factor", [(7, 3), (20, 2), (1, 10), (40, 1)])
def test_margin_clustering_matches_reference(seed, budget, factor):
    features, weight, bias, mask, _ = make_problem(seed=seed, n=150, d=6, c=4, labeled=20)
    cluster_ids = np.random.default_rng(seed).integers(0, 9, size=150)
    picked = select("margin_clustering", budget, features=features, head_weight=weight, head_bias=bias,
                    labeled_mask=mask, seed=0, chunk_size=31,
                    options={"cluster_ids": cluster_ids, "candidates_factor": factor})
    logits = reference.logits_of(features, weight.astype(np.float64), bias.astype(np.float64))
    assert picked.tolist() == reference.margin_clustering(logits, mask, budget, cluster_ids, factor)


def test_round_robin_visits_smallest_clusters_first():
    candidates = np.array([10, 11, 12, 13, 14, 15])
    clusters = np.array([5, 5, 5, 2, 2, 9])
    # cluster 9 has 1 candidate, 2 has 2, 5 has 3: passes take 15, 13, 10, then 14, 11, then 12.
    assert candidates[round_robin(candidates, clusters, 6)].tolist() == [15, 13, 10, 14, 11, 12]


def test_margin_clustering_clusters_the_pool_itself_when_not_given():
    features, weight, bias, mask, _ = make_problem(n=200, d=5, c=3, labeled=10)
    inputs = dict(features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=1)
    selection = select_with_scores("margin_clustering", 30, options={"clusters": 6, "codebook_size": 40}, **inputs)
    assert len(set(selection.indices.tolist())) == 30 and not mask[selection.indices].any()
    with pytest.raises(InputError, match="cluster_ids must be a non-negative integer array of pool size 200"):
        select("margin_clustering", 5, options={"cluster_ids": np.zeros(3, dtype=int)}, **inputs)
    with pytest.raises(InputError, match="needs features"):
        select("margin_clustering", 5, logits=features @ weight.T, labeled_mask=mask, seed=0)


def test_needs_balancing_follows_the_remaining_budget():
    counts = np.array([10, 10, 2, 2])  # mean 6: majority {0, 1}, minority {2, 3}; gap 8
    assert needs_balancing(counts, remaining=16)  # 16 <= 2 * 8: the gap can just be closed
    assert not needs_balancing(counts, remaining=17)
    assert not needs_balancing(np.array([3, 3, 3]), remaining=1)  # balanced: no majority


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("budget, labeled", [(12, 30), (30, 8), (25, 0)])
def test_balancing_matches_reference(seed, budget, labeled):
    features, weight, bias, mask, labels = make_problem(seed=seed, n=90, d=5, c=4, labeled=labeled)
    # Skew the labeled set so that balancing starts partway through the budget.
    mask[np.flatnonzero(labels == 0)[:12]] = True
    picked = select("balancing", budget, features=features, labels=labels, labeled_mask=mask, seed=seed, chunk_size=13)
    permutation = np.random.default_rng(seed).permutation(int((~mask).sum()))
    assert picked.tolist() == reference.balancing(features, labels, mask, budget, permutation)


def test_balancing_moves_toward_balance():
    features, weight, bias, mask, labels = make_problem(seed=2, n=600, d=8, c=4, labeled=0)
    mask[np.flatnonzero(labels == 0)[:60]] = True  # 60 labels, all of class 0
    picked = select("balancing", 60, features=features, labels=labels, labeled_mask=mask, seed=0)
    counts = np.bincount(labels[picked], minlength=4)
    random = np.bincount(labels[select("random", 60, labeled_mask=mask, seed=0)], minlength=4)
    assert counts[0] < random[0]  # it avoids the over-represented class


def test_balancing_refuses_pools_above_the_memory_limit():
    features, _, _, mask, labels = make_problem(n=100)
    with pytest.raises(InputError, match="balancing over 60 unlabeled items"):
        select("balancing", 5, features=features, labels=labels, labeled_mask=mask, seed=0, options={"memory_limit_bytes": 100})
