import numpy as np
import pytest


def make_problem(seed=0, n=300, d=12, c=5, labeled=40, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(c, d))
    y = rng.integers(0, c, size=n)
    features = (centers[y] + rng.normal(size=(n, d))).astype(dtype)
    weight = rng.normal(size=(c, d)).astype(np.float32)
    bias = rng.normal(size=c).astype(np.float32)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=labeled, replace=False)] = True
    return features, weight, bias, mask, y


@pytest.fixture
def problem():
    return make_problem()
