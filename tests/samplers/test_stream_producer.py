"""The stream's producer thread (`al_core.samplers.pool._produced`): items in order, errors where
the consumer reads, a bounded lookahead, and no thread left behind when the consumer stops."""

import threading
import time

import numpy as np
import pytest

from al_core.errors import InputError
from al_core.samplers.pool import _produced, make_pool


def test_items_arrive_in_order_and_the_producer_waits_for_the_consumer():
    produced_count = []

    def produce(put):
        for item in range(20):
            produced_count.append(item)
            if not put(item):
                return

    seen = []
    for item in _produced(produce, ahead=2):
        time.sleep(0.01)  # a slow consumer: the producer may run at most a few items ahead
        assert len(produced_count) - len(seen) <= 4
        seen.append(item)
    assert seen == list(range(20))


def test_an_error_in_the_producer_reaches_the_consumer_after_the_items_before_it():
    def produce(put):
        put(1)
        put(2)
        raise ValueError("product failed")

    seen = []
    with pytest.raises(ValueError, match="product failed"):
        for item in _produced(produce, ahead=4):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_and_joins_the_producer():
    stopped = []

    def produce(put):
        for item in range(10_000):
            if not put(item):
                stopped.append(item)
                return

    items = _produced(produce, ahead=1)
    assert next(items) == 0
    items.close()
    assert stopped and not [thread for thread in threading.enumerate() if thread.name == "al-stream-producer"]


def test_a_bad_feature_row_is_named_from_the_stream_and_no_thread_is_left():
    """A non-finite feature row found in a worker (after the producer moved on) raises in the
    caller, naming the row; the producer and workers are gone afterwards."""
    rng = np.random.default_rng(0)
    features = rng.standard_normal((300, 8)).astype(np.float32)
    features[217, 3] = np.nan
    weight = rng.standard_normal((4, 8)).astype(np.float32)
    pool = make_pool(labeled_mask=np.zeros(300, dtype=bool), features=features, head_weight=weight, chunk_size=64)
    with pytest.raises(InputError, match="features row 217"):
        for _ in pool.map_unlabeled_bounds(lambda rows, logits, bound: rows):
            pass
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith(("al-stream-producer", "ThreadPoolExecutor"))]


@pytest.mark.parametrize("torch_conversion", [False, True])
def test_reused_conversion_buffers_are_not_written_while_workers_read_them(monkeypatch, torch_conversion):
    """float16 blocks are converted into two buffers used in turn: every block's bounds (computed by
    the workers from its features, slowly here, while the producer moves on) and logits are those of
    its own rows, with fully labeled blocks in between (they take no buffer)."""
    from al_core import linear

    if torch_conversion:
        monkeypatch.setattr(linear, "TORCH_CONVERSION_VALUES", 1)
    rng = np.random.default_rng(4)
    features = rng.standard_normal((700, 24)).astype(np.float16)
    weight = rng.standard_normal((5, 24)).astype(np.float32)
    labeled = np.zeros(700, dtype=bool)
    labeled[100:200] = labeled[400:500] = True  # blocks 1 and 4 of 100 rows: fully labeled
    bound = linear.Float32Filter.bound

    def slow_bound(self, block, logits):
        time.sleep(0.02)
        return bound(self, block, logits)

    monkeypatch.setattr(linear.Float32Filter, "bound", slow_bound)
    pool = make_pool(labeled_mask=labeled, features=features, head_weight=weight, chunk_size=100)
    seen = []
    for rows, logits, bounds in pool.map_unlabeled_bounds(lambda rows, logits, bounds: (rows, logits.copy(), bounds.copy())):
        time.sleep(0.01)
        seen.append(rows)
        block = features[rows].astype(np.float32)
        assert np.array_equal(bounds, bound(linear.Float32Filter(weight, np.zeros(5, np.float32)), block, logits))
        assert np.abs(logits - block @ weight.T).max() <= 1e-4
    assert np.array_equal(np.concatenate(seen), np.flatnonzero(~labeled))


def test_as_float32_converts_into_a_given_buffer_and_refuses_a_wrong_one():
    from al_core.linear import as_float32

    half = np.arange(12, dtype=np.float16).reshape(3, 4)
    out = np.empty((3, 4), dtype=np.float32)
    assert as_float32(half, out) is out and np.array_equal(out, half.astype(np.float32))
    single = half.astype(np.float32)
    assert as_float32(single, out) is single  # nothing to convert: the array itself
    with pytest.raises(ValueError, match="shape"):
        as_float32(half, np.empty((4, 3), dtype=np.float32))
