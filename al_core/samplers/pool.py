"""Validated view of what a sampler may look at, with chunked streaming over the pool.

Validation happens here, once, at the boundary (scikit-learn style); samplers trust a ``Pool``.
Arrays may be memory-mapped: nothing here copies the whole pool, and every pass over it reads
``chunk_size`` rows at a time.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from al_core.errors import InputError
from al_core.hardware import machine, pick_device
from al_core.linear import LOGIT_FILTERS, ExactLogits, Float32Blocks, as_float32, linear_logits
from al_core.schema import Setting, at_least

DEFAULT_CHUNK_SIZE = 8192
STREAM_WORKERS = 2  # threads scoring blocks of precomputed logits
STREAM_AHEAD = 1  # blocks of slices a stream's producer may have waiting for the caller (memory: about (d + C) * chunk_size * 4 bytes each)
INTERVAL_VALUES = 1 << 18  # logits per call of a streamed score's fn: a (rows, C) float32 slice of 1 MiB stays in a core's L2 cache through its passes
ENTRY_BLOCK_VALUES = 1 << 22  # float64 values per temporary when exact logits are taken entry by entry (32 MiB)
REFERENCE_ROWS = 1024  # rows per exact product in reference_logits: its float64 copies (16 MiB at d = 2048) stay below the size the allocator maps afresh (and page-faults) on every call
AUTO_BFLOAT16_WORK = 1e10  # multiply-adds (N*d*C) from which precision "auto" streams bfloat16 on a CPU with bfloat16 products: below, about 0.1 s of float32 product, torch's import costs more than it saves
COARSE_MAX_SHARE = 0.02  # rows to keep, as a share of the pool, up to which a bfloat16 stream pays (``python -m benchmarks.stream_precision``)
PROGRESS_MIN_WORK = 2e10  # element operations above which a loop shows a progress bar (on a terminal)
MEMORY_LIMIT = at_least(1, default=4 * 2**30, help="bytes the sampler may hold in memory before it refuses the pool")
CLUSTER_IDS = Setting(np.ndarray, settable=False,
                      help="(N,) cluster of each pool item, computed once by the caller; the sampler clusters the pool itself when absent")


def progress(iterable, *, total: int, work: float, desc: str, unit: str):
    """``iterable`` with a tqdm bar (what it does, rate, ETA) when ``work`` is large and stderr
    is a terminal; plain iteration otherwise (tests, CI logs, small pools)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, disable=None if work >= PROGRESS_MIN_WORK else True)


def _require_finite(block: np.ndarray, rows: np.ndarray, name: str) -> np.ndarray:
    """Return ``block`` (rows of ``name`` at pool indices ``rows``) or name its first non-finite row.

    A row sum is NaN or inf whenever the row holds one (it may also overflow on a finite row, so
    only then are the rows checked one value at a time): one reduction instead of a (B, d) mask."""
    if np.isfinite(block.sum(axis=1)).all():
        return block
    finite = np.isfinite(block).all(axis=1)
    if not finite.all():
        bad = int(rows[np.argmin(finite)])
        raise InputError(
            f"{name} row {bad} holds NaN or inf; the pool's {name} must be "
            "finite (re-run the stage that wrote them, or drop that item from the pool)"
        )
    return block


def _check_2d(name: str, array, dtype_kind: str = "fc") -> np.ndarray:
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-d array, got shape {array.shape}")
    if array.dtype.kind not in dtype_kind:
        raise InputError(f"{name} must hold floating-point values, got dtype {array.dtype}")
    return array


@dataclass(frozen=True)
class Pool:
    """Everything a sampler may read, already checked for consistent shapes.

    Attributes:
        labeled_mask: ``(N,) bool``, True where the item is already labeled.
        features: ``(N, d)`` float (any float dtype, may be a memmap) or None.
        head_weight: ``(C, d)`` float32 or None.
        head_bias: ``(C,)`` float32 or None (zeros when a weight is given without a bias).
        logits: ``(N, C)`` float or None; used instead of ``features @ head_weight.T + bias``.
        labels: ``(N,) int64`` or None; only oracle samplers may read it.
        labeled_class_counts: ``(C,) int64`` or None: how many labeled items each class has
            (known to any real user); quota rules give a budget's remainder to the rarest classes.
        chunk_size: rows per streamed block.
        options: the sampler's options, every declared one present (validated and defaulted).
        shard: ``(rank, processes)``: this process streams blocks ``rank, rank + processes, ...``
            of ``chunk_size`` rows (``(0, 1)``: all of them). Blocks are cut at the same rows
            whatever the number of processes, so every row's logits are the same numbers.
        gather: for a sharded pool, a function returning the list of one picklable object from
            every process (an all-gather, e.g. over ``torch.distributed``); None in one process.
        precision: the fast product samplers that filter and refine score the pool with,
            ``"float32"`` (BLAS) or ``"bfloat16"`` (torch); their picks do not depend on it.
        device: where that product runs: None (numpy on the CPU; torch on the CPU for bfloat16)
            or a torch device name ("cuda", "cuda:1", "cpu"); the picks do not depend on it.
        stats: what the filter did (rows streamed, rows refined exactly), for the caller to report.
    """

    labeled_mask: np.ndarray
    features: np.ndarray | None
    head_weight: np.ndarray | None
    head_bias: np.ndarray | None
    logits: np.ndarray | None
    labels: np.ndarray | None
    chunk_size: int
    labeled_class_counts: np.ndarray | None = None
    images: Any = None  # (N, H, W[, 3]) uint8 array-like, for samplers that look at pixels (vaal)
    options: Mapping[str, Any] = field(default_factory=dict)
    shard: tuple[int, int] = (0, 1)
    gather: Callable[[Any], list] | None = None
    precision: str = "float32"
    device: str | None = None
    stats: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False)  # the fast and exact products of the head, made once

    def all_gather(self, value: Any) -> list:
        """``value`` of every process, in rank order (``[value]`` in one process)."""
        return [value] if self.gather is None else list(self.gather(value))

    def option(self, name: str) -> Any:
        """Option ``name``, already checked against the sampler's schema and defaulted by ``select``."""
        if name not in self.options:
            raise AssertionError(f"option {name!r} is not declared in this sampler's register_sampler(options=...)")
        return self.options[name]

    def cluster_ids(self) -> np.ndarray | None:
        """Option ``cluster_ids`` (`CLUSTER_IDS`) as ``(N,) int64``, checked; None when not given."""
        given = self.option("cluster_ids")
        if given is None:
            return None
        if given.shape != (self.size,) or given.dtype.kind not in "iu" or (given.size and given.min() < 0):
            raise InputError(f"option cluster_ids must be a non-negative integer array of pool size {self.size}, "
                             f"got dtype {given.dtype} and shape {given.shape}")
        return given.astype(np.int64, copy=False)

    def check_memory(self, needed_bytes: int, what: str, advice: str) -> None:
        """Refuse work that would hold more than option ``memory_limit_bytes`` (`MEMORY_LIMIT`)."""
        limit = self.option("memory_limit_bytes")
        if needed_bytes > limit:
            raise InputError(
                f"{what} would take {needed_bytes / 2**30:.1f} GiB of memory, above the limit of "
                f"{limit / 2**30:.1f} GiB; {advice}"
            )

    def gather_features(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), d) float32`` copy of the given feature rows, read in chunks of rows."""
        if self.features is None:
            raise InputError("this sampler needs features")
        out = np.empty((rows.shape[0], self.features.shape[1]), dtype=np.float32)
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on a memmap
        for start in range(0, rows.shape[0], self.chunk_size):
            block = order[start:start + self.chunk_size]
            out[block] = _require_finite(as_float32(self.features[rows[block]]), rows[block], "features")
        return out

    @property
    def size(self) -> int:
        return int(self.labeled_mask.shape[0])

    @property
    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled_mask).astype(np.int64)

    @property
    def num_classes(self) -> int | None:
        if self.logits is not None:
            return int(self.logits.shape[1])
        if self.head_weight is not None:
            return int(self.head_weight.shape[0])
        return None

    @property
    def has_logits(self) -> bool:
        return self.logits is not None or (self.features is not None and self.head_weight is not None)

    def _finite_block(self, source: np.ndarray, name: str, start: int, stop: int, keep: np.ndarray, rows: np.ndarray) -> np.ndarray:
        block = as_float32(source[start:stop])
        return _require_finite(block if keep.all() else block[keep], rows, name)

    def _block(self, start: int, with_features: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | None:
        """Unlabeled rows of block ``[start, start + chunk_size)``: (indices, features or None, logits)."""
        stop = min(start + self.chunk_size, self.size)
        keep = ~self.labeled_mask[start:stop]
        if not keep.any():
            return None
        rows = np.arange(start, stop, dtype=np.int64)[keep]
        features = None
        if with_features or self.logits is None:
            features = self._finite_block(self.features, "features", start, stop, keep, rows)
        if self.logits is not None:
            logits = self._finite_block(self.logits, "logits", start, stop, keep, rows)
        else:
            logits = linear_logits(features, self.head_weight, self.head_bias)
        return rows, (features if with_features else None), logits

    def _check_streamable(self, with_features: bool) -> None:
        if not self.has_logits:
            raise InputError("this sampler needs logits, or features together with head_weight")
        if with_features and self.features is None:
            raise InputError("this sampler needs features")

    def _starts(self):
        width = (self.features.shape[1] if self.features is not None else 1) * (self.num_classes or 1)
        rank, processes = self.shard
        blocks = range(rank * self.chunk_size, self.size, processes * self.chunk_size)
        return progress(blocks, total=len(blocks), work=self.size * width / processes, desc="scoring the pool", unit="block")

    def iter_unlabeled_blocks(self, with_features: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
        """Yield ``(pool_indices (B,) int64, features (B, d) float32 or None, logits (B, C) float32)``
        for unlabeled rows, in pool order.

        Cost: O(N*d*C) time for features @ W.T (or O(N*C) from given logits); memory
        O(chunk_size*(d + C)). Given logits are read as they are; logits from features come from
        the BLAS product of each block, whose last bit can depend on the block's row count (not
        on the other rows' values). Raises InputError naming the first row holding NaN or inf.
        """
        self._check_streamable(with_features)
        for start in self._starts():
            block = self._block(start, with_features)
            if block is not None:
                yield block

    def reference_logits(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), C) float32`` exact logits of the given pool rows: the given logits, or
        `al_core.linear.reference_logits` (each the float32 nearest to x.w + b, a function of
        the row alone). Cost O(len(rows)*d*C) in float64, read and computed ``REFERENCE_ROWS`` rows
        at a time (at most ``chunk_size``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.logits is not None:
            order = np.argsort(rows, kind="stable")
            out = np.empty((rows.shape[0], self.num_classes), dtype=np.float32)
            out[order] = _require_finite(np.asarray(self.logits[rows[order]], dtype=np.float32), rows[order], "logits")
            return out
        exact = self._exact_logits()
        out = np.empty((rows.shape[0], self.head_weight.shape[0]), dtype=np.float32)
        step = min(self.chunk_size, REFERENCE_ROWS)
        for start in range(0, rows.shape[0], step):
            block = rows[start:start + step]
            out[start:start + step] = exact(self.gather_features(block))
        self._count_distinct("refined_rows", rows)
        return out

    def _exact_logits(self) -> ExactLogits:
        """The head's `ExactLogits`, made once per pool (its float64 copy of the head is reused)."""
        if "exact" not in self.cache:
            self.cache["exact"] = ExactLogits(self.head_weight, self.head_bias)
        return self.cache["exact"]

    def reference_top_two(self, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """``(len(rows),) float64``: z_b - z_a (the float32 difference, as a softmax score takes it) of
        the exact logits of classes ``classes[:, 0]`` (a) and ``classes[:, 1]`` (b) of each row. From
        features only. Cost O(len(rows)*d) in float64: two dot products per row, not C."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty(rows.shape[0], dtype=np.float64)
        step = min(self.chunk_size, REFERENCE_ROWS)  # as reference_logits: no fresh mapping per call
        for start in range(0, rows.shape[0], step):
            block = slice(start, start + step)
            features = self.gather_features(rows[block])
            first = self.reference_entries(rows[block], classes[block, 0], features)
            second = self.reference_entries(rows[block], classes[block, 1], features)
            out[block] = (second - first).astype(np.float64)
        return out

    def reference_entries(self, rows: np.ndarray, classes: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``(m,) float32``: the exact logit of class ``classes[k]`` for pool row ``rows[k]`` (what
        `reference_logits` gives in that column), ``features`` ``(m, d)`` being those rows'
        features (from `gather_features`). From features only. Cost O(m*d) in float64: one dot
        product per entry, not C. Counts the rows in ``stats["partial_rows"]``."""
        exact = self._exact_logits()
        out = np.empty(rows.shape[0], dtype=np.float32)
        step = max(1, ENTRY_BLOCK_VALUES // max(1, features.shape[1]))  # (step, d) float64 temporaries
        for start in range(0, rows.shape[0], step):
            out[start:start + step] = exact.entries(features[start:start + step], classes[start:start + step])
        self._count_distinct("partial_rows", np.asarray(rows, dtype=np.int64))
        return out

    def approximate_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(features (B, d) float32, logits (B, C) float32, bound (B,) float64)`` of the given pool
        rows from the float32 product (on ``device``): each logit within ``bound[i]`` of
        `reference_logits`, a bound tighter than a bfloat16 stream's. For refining a few rows
        without their exact logits. Cost O(B*d*C) in the float32 product."""
        rows = np.asarray(rows, dtype=np.int64)
        features = self.gather_features(rows)
        logits, bound = self._logit_filter("float32").approximate(features)
        if self.stats.get("filter", "float32") != "float32":  # after a bfloat16 stream: the rows it left open
            self._count_distinct("narrowed_rows", rows)
        return features, logits, bound

    @property
    def coarse(self) -> bool:
        """True when the stream's product is coarser than float32 (``precision`` bfloat16): the rows
        its wide bounds leave open are worth a float32 product (`approximate_rows`) before any
        exact logits."""
        return self.precision != "float32"

    def streaming_float32(self) -> "Pool":
        """This pool with a float32 stream (the same rows, options, stats and cache)."""
        return replace(self, precision="float32") if self.coarse else self

    def stream_keeping(self, count: int, share: float | None = None) -> "Pool":
        """The pool to stream when about ``count`` rows must be kept (the budget, or a sampler's
        candidates): this one, or with a float32 stream when ``count`` exceeds ``share`` (default
        ``COARSE_MAX_SHARE``) of the pool. A bfloat16 stream saves most of the product, but the
        rows its wide intervals leave open grow with ``count`` (about 30% of the pool at b/N = 10%),
        and their float32 products then cost what it saved."""
        share = COARSE_MAX_SHARE if share is None else share
        return self.streaming_float32() if self.coarse and count > share * self.size else self

    def _logit_filter(self, precision: str | None = None):
        """The fast product of ``precision`` (default: the pool's) for this pool's head, made once."""
        precision = precision or self.precision
        if precision not in self.cache:
            self.cache[precision] = LOGIT_FILTERS[precision](self.head_weight, self.head_bias, device=self.device)
        return self.cache[precision]

    def _count_distinct(self, name: str, rows: np.ndarray) -> None:
        """``stats[name]``: how many distinct pool rows were ever passed here (a row refined or
        streamed again in a later pass counts once). O(len(rows)), memory O(N) bits."""
        seen = self.cache.setdefault(f"{name}_seen", np.zeros(self.size, dtype=bool))
        fresh = np.unique(rows[~seen[rows]])
        seen[fresh] = True
        self.stats[name] = self.stats.get(name, 0) + int(fresh.shape[0])

    @property
    def filters(self) -> bool:
        """True when scores come from features through a fast product to be refined (no given logits)."""
        return self.logits is None

    def map_unlabeled_bounds(self, fn: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]) -> Iterator[Any]:
        """Yield ``fn(pool_indices (B,), logits (B, C) float32, bound (B,) float64)`` for runs of
        unlabeled rows of every block (B at most ``INTERVAL_VALUES / C``), in pool order: logits from
        the fast product of ``precision``, each within ``bound[i]`` of `reference_logits` (see
        ``al_core.linear``). From features only.

        Each block is converted to float32 (into one of two buffers used in turn: fresh memory for
        every block made the conversion several times slower beside the product) and multiplied on
        the whole (labeled rows included: a few percent more products, no copy of the unlabeled
        rows' features) by a producer thread; its
        bounds and ``fn`` then run on ``STREAM_WORKERS`` slices of rows in worker threads (numpy
        releases the GIL), while the producer multiplies the next block and the caller consumes
        what this generator yields (its work on one block's results overlaps the next products
        instead of pausing them; at most ``STREAM_AHEAD`` blocks wait). Each worker calls ``fn`` on runs of rows of about
        ``INTERVAL_VALUES`` logits, so a score's passes over them read the core's cache, not memory
        (12-41% less time per score than whole slices of an 8,192 x 1,000 block, BASE's the most:
        ``python -m benchmarks.interval_passes``). So ``fn`` must not touch shared state: it may read
        it, and the caller does what changes it with what ``fn`` returned. A block's slices are
        yielded one after the other, in row order.
        Finiteness is checked on the bounds (NaN or inf wherever a row's features or logits are),
        and only then on the features, to name the row.

        Cost: the fast product, O(N*d*C), plus O(N*d) for the bounds; memory O(chunk_size*(d + C))
        per block in flight (two).
        """
        self._check_streamable(False)
        if not self.filters:
            raise AssertionError("map_unlabeled_bounds streams features; given logits are exact already")
        product = self._logit_filter()
        self.stats["filter"] = product.name
        self.stats["passes"] = self.stats.get("passes", 0) + 1
        if self.device is not None:
            self.stats["device"] = self.device
        for name in ("refined_rows", "partial_rows") + (("narrowed_rows",) if self.coarse else ()):
            self.stats.setdefault(name, 0)
        workers = max(1, min(STREAM_WORKERS, os.cpu_count() or 1))

        def part(block: np.ndarray, logits: np.ndarray, keep: np.ndarray, rows: np.ndarray):
            with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows are named just below
                bound = product.bound(block, logits)
            if not keep.all():
                logits, bound = logits[keep], bound[keep]
            if not np.isfinite(bound).all():
                _require_finite(block[keep], rows, "features")
            step = max(1, INTERVAL_VALUES // max(1, logits.shape[1]))
            return [fn(rows[low:low + step], logits[low:low + step], bound[low:low + step]) for low in range(0, rows.shape[0], step)]

        def produce(put: Callable[[Any], bool]) -> None:  # in the producer thread
            previous: list = []
            # A block's buffer is written again two blocks later, after its workers are done
            # (``wait(previous)`` below) and nothing they returned refers to it.
            float32_blocks = Float32Blocks(self.chunk_size, self.features.shape[1])
            for start in self._starts():
                stop = min(start + self.chunk_size, self.size)
                keep = ~self.labeled_mask[start:stop]
                if not keep.any():
                    continue
                block = float32_blocks(self.features[start:stop])
                with np.errstate(invalid="ignore", over="ignore"):
                    logits = product.product(block)
                slices = np.linspace(0, stop - start, workers + 1).astype(np.int64)
                current = []
                for low, high in zip(slices[:-1], slices[1:]):
                    rows = np.arange(start + low, start + high, dtype=np.int64)[keep[low:high]]
                    if rows.shape[0]:
                        self._count_distinct("streamed_rows", rows)
                        current.append(executor.submit(part, block[low:high], logits[low:high], keep[low:high], rows))
                        if not put(current[-1]):
                            return
                # The next product overlaps this block's slices, not the previous block's too: two
                # products beside the workers would crowd the cores (measured slower).
                wait(previous)
                previous = current

        with ThreadPoolExecutor(workers) as executor:
            produced = _produced(produce, STREAM_AHEAD * workers)
            try:
                for future in produced:
                    yield from future.result()
            finally:
                produced.close()  # stops and joins the producer before the executor shuts down

    def map_unlabeled_logits(self, fn: Callable[[np.ndarray, np.ndarray], Any]) -> Iterator[Any]:
        """Yield ``fn(pool_indices, logits)`` for every block of unlabeled rows, in pool order.

        With precomputed logits, blocks are read, converted and passed to ``fn`` by up to
        ``STREAM_WORKERS`` threads (numpy releases the GIL; at most 2 blocks per thread in flight),
        so ``fn`` must not touch shared state. From features, one thread: the matrix product is
        already multi-threaded. Same results, in the same order, as the sequential loop.
        """
        self._check_streamable(False)
        workers = min(STREAM_WORKERS, os.cpu_count() or 1) if self.logits is not None else 1
        if workers == 1:
            for rows, _, logits in self.iter_unlabeled_blocks():
                yield fn(rows, logits)
            return

        def work(start: int):
            block = self._block(start, False)
            return None if block is None else fn(block[0], block[2])

        with ThreadPoolExecutor(workers) as executor:
            pending: deque = deque()
            for start in self._starts():
                pending.append(executor.submit(work, start))
                if len(pending) >= 2 * workers:
                    result = pending.popleft().result()
                    if result is not None:
                        yield result
            while pending:
                result = pending.popleft().result()
                if result is not None:
                    yield result


_DONE = object()


def _produced(produce: Callable[[Callable[[Any], bool]], None], ahead: int) -> Iterator[Any]:
    """The items ``produce(put)`` puts, in order, while it runs in a thread of its own: ``put(item)``
    waits while ``ahead`` items are waiting to be taken and returns False once the consumer has
    stopped (the producer should then return). An exception in ``produce`` is raised here, in the
    consumer, after the items put before it; a consumer that stops early (or raises) stops the
    producer and waits for it."""
    waiting: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stopped = threading.Event()

    def put(item: Any) -> bool:
        while not stopped.is_set():
            try:
                waiting.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            produce(put)
            put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failure(error))

    producer = threading.Thread(target=run, name="al-stream-producer", daemon=True)
    producer.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stopped.set()
        producer.join()


@dataclass(frozen=True)
class _Failure:
    error: BaseException


def auto_precision(features, head_weight) -> str:
    """Precision ``"auto"``: ``"bfloat16"`` where this CPU multiplies bfloat16 natively (AMX or
    AVX512-BF16) and the pool's product takes at least ``AUTO_BFLOAT16_WORK`` multiply-adds,
    ``"float32"`` otherwise (the picks are the same). On a 2-core AMX host the bfloat16 stream
    with float32 narrowing took 0.54-0.80x the bare float32 product for margin, confidence and
    MASE at b/N = 0.1-1%, against 0.86-1.32x for the float32 stream (``python -m
    benchmarks.stream_precision``)."""
    if features is None or head_weight is None:
        return "float32"
    work = float(features.shape[0]) * features.shape[1] * head_weight.shape[0]
    return "bfloat16" if work >= AUTO_BFLOAT16_WORK and machine()["bf16"] else "float32"


def make_pool(
    *,
    labeled_mask,
    features=None,
    head_weight=None,
    head_bias=None,
    logits=None,
    labels=None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    options: Mapping[str, Any] | None = None,
    images=None,
    labeled_class_counts=None,
    shard: tuple[int, int] = (0, 1),
    gather: Callable[[Any], list] | None = None,
    precision: str = "float32",
    device: str | None = None,
) -> Pool:
    """Check shapes and dtypes of the sampler inputs and return a `Pool`."""
    labeled_mask = np.asarray(labeled_mask)
    if labeled_mask.ndim != 1 or labeled_mask.dtype != np.bool_:
        raise InputError(
            f"labeled_mask must be a 1-d bool array of pool size, got dtype {labeled_mask.dtype} "
            f"and shape {labeled_mask.shape}"
        )
    size = labeled_mask.shape[0]
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    if features is not None:
        features = _check_2d("features", features)
        if features.shape[0] != size:
            raise InputError(f"features has {features.shape[0]} rows but labeled_mask has {size} entries")
    if head_weight is not None:
        head_weight = _check_2d("head_weight", head_weight).astype(np.float32, copy=False)
        if not np.isfinite(head_weight).all():
            raise InputError("head_weight holds NaN or inf; the linear head did not train properly")
        if features is not None and features.shape[1] != head_weight.shape[1]:
            raise InputError(
                f"features has {features.shape[1]} columns but head_weight expects "
                f"{head_weight.shape[1]} (head_weight is (classes, feature_dim))"
            )
        if head_bias is None:
            head_bias = np.zeros(head_weight.shape[0], dtype=np.float32)
    if head_bias is not None:
        head_bias = np.asarray(head_bias, dtype=np.float32)
        if head_weight is None:
            raise InputError("head_bias was given without head_weight")
        if head_bias.shape != (head_weight.shape[0],):
            raise InputError(
                f"head_bias has shape {head_bias.shape} but head_weight has {head_weight.shape[0]} classes"
            )
        if not np.isfinite(head_bias).all():
            raise InputError("head_bias holds NaN or inf; the linear head did not train properly")
    if logits is not None:
        logits = _check_2d("logits", logits)
        if logits.shape[0] != size:
            raise InputError(f"logits has {logits.shape[0]} rows but labeled_mask has {size} entries")
        if head_weight is not None and logits.shape[1] != head_weight.shape[0]:
            raise InputError(
                f"logits has {logits.shape[1]} classes but head_weight has {head_weight.shape[0]}"
            )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (size,) or labels.dtype.kind not in "iu":
            raise InputError(
                f"labels must be a 1-d integer array of pool size {size}, got dtype {labels.dtype} "
                f"and shape {labels.shape}"
            )
        labels = labels.astype(np.int64, copy=False)
    if labeled_class_counts is not None:
        labeled_class_counts = np.asarray(labeled_class_counts)
        if labeled_class_counts.ndim != 1 or labeled_class_counts.dtype.kind not in "iu" or (labeled_class_counts < 0).any():
            raise InputError(
                f"labeled_class_counts must be a 1-d array of non-negative integers (one per class), got dtype "
                f"{labeled_class_counts.dtype} and shape {labeled_class_counts.shape}"
            )
        labeled_class_counts = labeled_class_counts.astype(np.int64, copy=False)
    if images is not None and (len(images) != size or getattr(images, "dtype", None) != np.uint8 or images.ndim not in (3, 4)):
        raise InputError(
            f"images must be a (N, H, W[, 3]) uint8 array-like of pool size {size}, got dtype "
            f"{getattr(images, 'dtype', type(images).__name__)} and {len(images)} rows"
        )
    rank, processes = shard
    if not (isinstance(rank, (int, np.integer)) and isinstance(processes, (int, np.integer)) and 0 <= rank < processes):
        raise InputError(f"shard must be (rank, processes) with 0 <= rank < processes, got {shard!r}")
    if processes > 1 and gather is None:
        raise InputError("a sharded pool (processes > 1) needs gather, a function collecting one object from every process")
    if precision == "auto":
        precision = auto_precision(features, head_weight)
    if precision not in LOGIT_FILTERS:
        raise InputError(f"precision must be one of {', '.join(LOGIT_FILTERS)} or auto, got {precision!r}")
    if device is not None:
        parsed = pick_device(device, "device")
        if parsed.type not in ("cpu", "cuda"):
            raise InputError(f"device {device!r}: the fast product runs on cpu or cuda only")
        device = str(parsed)
    return Pool(
        precision=precision,
        device=device,
        shard=(int(rank), int(processes)),
        gather=gather,
        labeled_mask=labeled_mask,
        features=features,
        head_weight=head_weight,
        head_bias=head_bias,
        logits=logits,
        labels=labels,
        chunk_size=int(chunk_size),
        options=dict(options or {}),
        images=images,
        labeled_class_counts=labeled_class_counts,
    )
