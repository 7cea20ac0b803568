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
