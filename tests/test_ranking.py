import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from al_core.samplers.ranking import RunningSmallest, smallest_k


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 5), min_size=0, max_size=60), k=st.integers(0, 70), chunk=st.integers(1, 20))
def test_smallest_k_and_running_equal_a_full_sort(values, k, chunk):
    scores = np.asarray(values, dtype=np.float64)  # many ties on purpose
    indices = np.arange(len(values), dtype=np.int64)[::-1].copy()  # arbitrary index order
    expected = sorted(zip(scores.tolist(), indices.tolist()))[:k]
    got_indices, got_scores = smallest_k(scores, indices, k)
    assert list(zip(got_scores.tolist(), got_indices.tolist())) == expected
    running = RunningSmallest(k)
    for start in range(0, len(values), chunk):
        running.push(scores[start:start + chunk], indices[start:start + chunk])
    assert list(zip(running.scores.tolist(), running.indices.tolist())) == expected
