import numpy as np
import pytest

from al_core.errors import InputError
from al_core.samplers import select
from al_core.samplers.coreset import split_pool
from al_core.samplers.pool import make_pool
from tests.samplers import reference
from tests.samplers.conftest import make_problem


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [1, 9, 25])
def test_coreset_matches_reference(seed, budget):
    features, _, _, mask, _ = make_problem(seed=seed, n=150)
    expected = reference.k_center(features, mask, budget)
    for chunk_size in (7, 1000):
        got = select("coreset", budget, features=features, labeled_mask=mask, seed=0, chunk_size=chunk_size)
        assert got.tolist() == expected


def test_coreset_without_labels_starts_from_a_seeded_random_item():
    features, _, _, _, _ = make_problem(seed=4, n=80)
    mask = np.zeros(80, dtype=bool)
    a = select("coreset", 5, features=features, labeled_mask=mask, seed=1)
    b = select("coreset", 5, features=features, labeled_mask=mask, seed=1)
    assert a.tolist() == b.tolist()
    assert a[1:].tolist() == reference.k_center(features, mask, 4, centers=[int(a[0])])


def test_partitioned_coreset_runs_k_center_inside_each_partition():
    features, _, _, mask, _ = make_problem(seed=5, n=200, labeled=30)
    budget, partitions = 23, 4
    got = select("partitioned_coreset", budget, features=features, labeled_mask=mask, seed=7, options={"partitions": partitions})
    assert len(set(got.tolist())) == budget and not mask[got].any()
    pool = make_pool(labeled_mask=mask, features=features)
    parts = split_pool(pool, partitions, np.random.default_rng(7))
    expected, quotas = [], [6, 6, 6, 5]
    for (unlabeled, labeled), quota in zip(parts, quotas):
        expected += reference.k_center(features, mask, quota, candidates=unlabeled.tolist(), centers=labeled.tolist())
    assert got.tolist() == expected


def test_coreset_refuses_pools_too_large_for_memory():
    features, _, _, mask, _ = make_problem(seed=0, n=300)
    with pytest.raises(InputError, match="use 'partitioned_coreset'"):
        select("coreset", 5, features=features, labeled_mask=mask, seed=0, options={"memory_limit_bytes": 1000})
    with pytest.raises(InputError, match="takes no option"):
        select("coreset", 5, features=features, labeled_mask=mask, seed=0, options={"partitions": 3})


def test_balanced_random_is_balanced_and_uses_true_labels():
    features, _, _, mask, labels = make_problem(seed=1, n=400, c=5, labeled=50)
    picked = select("balanced_random", 53, labeled_mask=mask, labels=labels, seed=3)
    counts = np.bincount(labels[picked], minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 53
    with pytest.raises(InputError, match="needs labels"):
        select("balanced_random", 5, labeled_mask=mask, seed=0)


def test_balanced_random_when_a_class_runs_out():
    labels = np.array([0] * 3 + [1] * 50)
    mask = np.zeros(53, dtype=bool)
    picked = select("balanced_random", 20, labeled_mask=mask, labels=labels, seed=0)
    assert np.bincount(labels[picked]).tolist() == [3, 17]
