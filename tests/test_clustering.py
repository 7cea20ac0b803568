"""The pool clustering behind Cluster-Margin: HAC against brute force, the codebook, the whole."""

import numpy as np
import pytest

from al_core.clustering import average_linkage, cluster_pool, group_sums, kmeans_codebook
from al_core.errors import InputError
from tests.samplers import reference


def partition(labels):
    groups = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("clusters", [1, 3, 7])
def test_average_linkage_matches_brute_force(seed, clusters):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(14, 3))
    weights = rng.integers(1, 6, size=14).astype(float)
    labels = average_linkage(points, weights, clusters)
    assert partition(labels) == reference.average_linkage(points.tolist(), weights.tolist(), clusters)
    assert labels[0] == 0 and set(labels.tolist()) == set(range(clusters))  # numbered by first appearance


def test_average_linkage_rejects_bad_cluster_counts():
    with pytest.raises(InputError, match="clusters must lie in 1..3"):
        average_linkage(np.zeros((3, 2)), np.ones(3), 4)


def test_group_sums():
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    sums = group_sums(values, np.array([2, 0, 2, 2, 0, 3]), 5)
    assert sums.tolist() == [[10, 12], [0, 0], [10, 13], [10, 11], [0, 0]]


def test_codebook_recovers_separated_groups_and_is_deterministic():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=20, size=(4, 6))
    truth = np.repeat(np.arange(4), 50)
    features = (centres[truth] + rng.normal(size=(200, 6))).astype(np.float16)
    first = cluster_pool(features, 4, codebook_size=24, seed=3, chunk_size=17)
    again = cluster_pool(features, 4, codebook_size=24, seed=3, chunk_size=64)
    assert first.tolist() == again.tolist()
    assert partition(first) == partition(truth)
    centroids, assignments = kmeans_codebook(features, 24, seed=3)
    assert centroids.shape == (24, 6) and assignments.shape == (200,)


def test_codebook_names_a_bad_row():
    features = np.ones((10, 2), dtype=np.float32)
    features[7, 1] = np.nan
    with pytest.raises(InputError, match="row 7"):
        kmeans_codebook(features, 3, seed=0)
