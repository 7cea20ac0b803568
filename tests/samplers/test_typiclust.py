"""TypiClust against a loop-by-loop reference written from the paper's text (Hacohen et al. 2022, Sec. 3)."""

import math

import numpy as np
import pytest

from al_core.clustering import kmeans_codebook
from al_core.errors import InputError
from al_core.samplers import select, select_with_scores
from tests.samplers.conftest import make_problem


def reference_typiclust(features, labeled_mask, budget, cluster_ids, neighbours=20, min_cluster_size=5, squared=False):
    """TPC_RP one pick at a time: clusters ranked uncovered (fewest labeled) first, largest first,
    lowest id on ties, clusters of at most ``min_cluster_size`` items last; visited in turn, cycling;
    from each the unlabeled, not yet picked item of highest Typicality(x) = (1/K sum_{K-NN} ||x - x_i||)^-1,
    K = max(1, min(neighbours, m // 2)) among the cluster's m such items; ties: lowest index."""
    n = len(features)
    clusters = sorted(set(int(c) for c in cluster_ids))
    size = {c: sum(1 for i in range(n) if cluster_ids[i] == c) for c in clusters}
    labeled = {c: sum(1 for i in range(n) if cluster_ids[i] == c and labeled_mask[i]) for c in clusters}
    order = sorted(clusters, key=lambda c: (size[c] <= min_cluster_size, labeled[c], -size[c], c))
    taken, picks, visit = set(), [], 0
    while len(picks) < budget:
        cluster = order[visit % len(order)]
        visit += 1
        members = [i for i in range(n) if cluster_ids[i] == cluster and not labeled_mask[i] and i not in taken]
        if not members:
            continue
        best, best_typicality = members[0], -math.inf
        k = max(1, min(neighbours, len(members) // 2))
        for x in members if len(members) > 1 else []:
            distances = sorted(math.dist(features[x], features[y]) for y in members if y != x)
            if squared:
                distances = sorted(distance * distance for distance in distances)
            mean = sum(distances[:k]) / k
            value = math.inf if mean == 0 else 1.0 / mean
            if value > best_typicality:
                best, best_typicality = x, value
        picks.append(best)
        taken.add(best)
    return picks


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [5, 17, 40])
@pytest.mark.parametrize("distance", ["euclidean", "squared"])
def test_typiclust_matches_the_reference(seed, budget, distance):
    features, _, _, mask, _ = make_problem(seed=seed, n=240, d=6, labeled=30)
    rng = np.random.default_rng(seed)
    cluster_ids = rng.integers(0, 14, size=240)
    cluster_ids[:4] = 14  # a cluster too small to be visited before the others
    got = select("typiclust", budget, features=features, labeled_mask=mask, seed=seed, chunk_size=50,
                 options={"cluster_ids": cluster_ids, "distance": distance})
    expected = reference_typiclust(features.astype(np.float64), mask, budget, cluster_ids, squared=distance == "squared")
    assert got.tolist() == expected


def test_typiclust_clusters_the_pool_into_labeled_plus_budget_clusters():
    features, _, _, mask, _ = make_problem(seed=3, n=300, d=8, labeled=20)
    selection = select_with_scores("typiclust", 10, features=features, labeled_mask=mask, seed=4)
    # The same k-means (|L| + B = 30 clusters, the sampler's seed), given as cluster_ids, gives the same picks.
    _, assignments = kmeans_codebook(features, 30, seed=4, iterations=10)
    again = select("typiclust", 10, features=features, labeled_mask=mask, seed=4, options={"cluster_ids": assignments})
    assert selection.indices.tolist() == again.tolist()
    assert len(set(assignments[selection.indices].tolist())) == 10  # budget <= clusters: one pick per cluster
    assert np.all(selection.scores > 0)
    capped = select("typiclust", 10, features=features, labeled_mask=mask, seed=4, options={"max_clusters": 5})
    assert len(set(kmeans_codebook(features, 5, seed=4)[1][capped].tolist())) == 5  # cycles over 5 clusters


def test_typiclust_picks_the_dense_core_not_the_outlier():
    rng = np.random.default_rng(0)
    core = rng.normal(scale=0.1, size=(30, 2))
    outliers = rng.normal(scale=5.0, size=(10, 2)) + 20.0
    features = np.concatenate([outliers, core]).astype(np.float32)
    picked = select("typiclust", 1, features=features, labeled_mask=np.zeros(40, bool), seed=0,
                    options={"cluster_ids": np.zeros(40, dtype=np.int64)})
    assert picked[0] >= 10


def test_typiclust_rejects_bad_cluster_ids():
    features, _, _, mask, _ = make_problem()
    with pytest.raises(InputError, match="cluster_ids must be a non-negative integer array of pool size 300"):
        select("typiclust", 5, features=features, labeled_mask=mask, seed=0, options={"cluster_ids": np.zeros(3, dtype=int)})
    with pytest.raises(InputError, match="option 'distance' of sampler 'typiclust' must be one of euclidean, squared"):
        select("typiclust", 5, features=features, labeled_mask=mask, seed=0, options={"distance": "cosine"})
