import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from al_core.samplers.ranking import RunningSmallest, RunningSmallestPerClass, smallest_k, smallest_k_unordered


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


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=0, max_size=40),
    k=st.lists(st.integers(0, 12), min_size=3, max_size=3),
    chunk=st.integers(1, 15),
    buffer_limit=st.integers(0, 10),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_running_smallest_per_class_equals_per_column_sorts(values, k, chunk, buffer_limit, dtype):
    scores = (np.asarray(values, dtype=np.float64).reshape(-1, 3) / 3).astype(dtype)  # ties on purpose
    indices = np.arange(scores.shape[0], dtype=np.int64) * 3 + 1
    running = RunningSmallestPerClass(np.asarray(k), buffer_limit=buffer_limit)
    for start in range(0, scores.shape[0], chunk):
        running.push(scores[start:start + chunk], indices[start:start + chunk])
    thresholds = running.finish_thresholds()
    finished = running.finish()
    assert len(finished) == 3
    for cls, (got_indices, got_scores) in enumerate(finished):
        expected = sorted(zip(scores[:, cls].tolist(), indices.tolist()))[: k[cls]]
        assert list(zip(got_scores.tolist(), got_indices.tolist())) == expected
        # the k[c]-th smallest score (+inf with fewer, -inf for k[c] = 0)
        assert thresholds[cls] == (-np.inf if k[cls] == 0 else expected[-1][0] if len(expected) == k[cls] else np.inf)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.integers(0, 3), min_size=0, max_size=40), k=st.integers(0, 45))
def test_smallest_k_unordered_is_the_same_set(values, k):
    scores = np.asarray(values, dtype=np.float64)
    indices = (np.arange(len(values), dtype=np.int64) * 7) % 41
    want_indices, want_scores = smallest_k(scores, indices, k)
    got_indices, got_scores, largest = smallest_k_unordered(scores, indices, k)
    assert sorted(zip(got_scores.tolist(), got_indices.tolist())) == list(zip(want_scores.tolist(), want_indices.tolist()))
    if k and len(values):
        assert largest == want_scores.max()
