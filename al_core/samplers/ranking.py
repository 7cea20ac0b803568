"""Selection rules: exact top-k under the order (score, pool index).

Scoring is kept separate from ranking (baal style): samplers compute a score per item, and
these helpers pick the smallest ones. Ties are broken by pool order, so results never depend on
how the pool was chunked or on an unstable sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from al_core.samplers.pool import Pool
from al_core.samplers.registry import Selection
from al_core.samplers.scores import IntervalScore


def smallest_k(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(indices, scores)`` of the ``k`` smallest scores, sorted by (score, index).

    scores: ``(n,) float``; indices: ``(n,) int64`` pool indices, distinct.
    Cost: O(n) partition plus O(k log k) sort of the survivors; memory O(n).
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=scores.dtype)
    if k < n:
        # Everything strictly below the k-th value is in; among values equal to it, the lowest
        # indices are, which the lexsort below settles.
        kth_value = np.partition(scores, k - 1)[k - 1]
        keep = scores <= kth_value
        scores, indices = scores[keep], indices[keep]
    order = np.lexsort((indices, scores))[:k]
    return indices[order], scores[order]


def smallest_k_unordered(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The same set as ``smallest_k`` but unsorted, plus its largest score. O(n), no sort
    except among the items tied with the k-th score."""
    n = scores.shape[0]
    if k <= 0:
        return indices[:0], scores[:0], -np.inf
    if k >= n:
        return indices, scores, (float(scores.max()) if n else -np.inf)
    kth_value = np.partition(scores, k - 1)[k - 1]
    below = scores < kth_value
    tied = np.sort(indices[scores == kth_value])[: k - int(below.sum())]
    return (
        np.concatenate([indices[below], tied]),
        np.concatenate([scores[below], np.full(tied.shape[0], kth_value, dtype=scores.dtype)]),
        float(kth_value),
    )


class RunningSmallest:
    """Keep the ``k`` smallest (score, index) pairs seen over a stream of chunks.

    Each ``push`` keeps the k smallest of what it holds and the chunk, unsorted (a partition);
    ``indices`` and ``scores`` sort them by (score, index) when read. Memory O(k + chunk); each
    ``push`` costs O(k + chunk), plus O(k log k) once per read after pushes. Equal to
    ``smallest_k`` over the concatenation of every chunk, whatever the chunking.
    """

    def __init__(self, k: int):
        self.k = k
        self._indices = np.empty(0, dtype=np.int64)
        self._scores = np.empty(0, dtype=np.float64)
        self._worst = np.inf  # the k-th smallest score once k are held
        self._sorted = True

    def push(self, scores: np.ndarray, indices: np.ndarray) -> None:
        if self.k <= 0 or scores.shape[0] == 0:
            return
        if self._indices.shape[0] >= self.k:
            # Only scores that can beat the current worst kept one matter.
            candidate = scores <= self._worst
            scores, indices = scores[candidate], indices[candidate]
            if scores.shape[0] == 0:
                return
        merged_scores = np.concatenate([self._scores, scores.astype(np.float64, copy=False)])
        merged_indices = np.concatenate([self._indices, indices])
        self._indices, self._scores, self._worst = smallest_k_unordered(merged_scores, merged_indices, self.k)
        self._sorted = False

    def _sort(self) -> None:
        if not self._sorted:
            order = np.lexsort((self._indices, self._scores))
            self._indices, self._scores, self._sorted = self._indices[order], self._scores[order], True

    @property
    def indices(self) -> np.ndarray:
        """``(min(k, seen),) int64``: the kept pool indices, by (score, index)."""
        self._sort()
        return self._indices

    @property
    def scores(self) -> np.ndarray:
        """``(min(k, seen),) float64``: their scores, in the same order."""
        self._sort()
        return self._scores

    def threshold(self) -> float:
        """The k-th smallest score so far (+inf until k were seen): every score above it is out."""
        return float(self._worst) if self.k > 0 and self._indices.shape[0] >= self.k else np.inf


def select_smallest_scores(pool: Pool, budget: int, score: IntervalScore) -> Selection:
    """Stream the unlabeled pool's logits and keep the ``budget`` smallest ``score.exact(logits)``.

    The selection rule of every score-then-rank sampler. From given logits: one streamed pass
    (see ``Pool.map_unlabeled_logits``). From features (filter and refine): one pass of the fast
    product (``Pool.map_unlabeled_bounds``) gives every row an interval [lower, upper] holding its
    score under the reference logits; a row whose lower end exceeds the ``budget``-th smallest upper
    end cannot be picked, and only the rest are scored exactly (``Pool.reference_logits``). The
    picks, their order and their scores are those of the reference logits, whatever the product,
    the chunking or the number of processes.
    Cost: one streamed pass, plus O(N + budget log budget) ranking, plus the exact scores of the
    r rows left in (O(d*C) float64 each; O(d) for a row whose score two classes decide, nothing
    for a point interval); memory O(chunk*C + budget + r).
    On a sharded pool each process streams its blocks and the shards' ``budget`` smallest are
    merged: the same items, scores and order as one process.
    """
    if pool.filters:
        indices, scores = _refined_smallest(pool, budget, score)
    else:
        running = RunningSmallest(budget)
        for rows, scores in pool.map_unlabeled_logits(lambda rows, logits: (rows, score.exact(logits))):
            running.push(scores, rows)
        indices, scores = running.indices, running.scores
    parts = pool.all_gather((indices, scores))
    if len(parts) == 1:
        return Selection(indices=indices, scores=scores)
    # Each process kept its shard's smallest; the smallest of their union are the pool's.
    indices, scores = smallest_k(np.concatenate([part[1] for part in parts]), np.concatenate([part[0] for part in parts]), budget)
    return Selection(indices=indices, scores=scores)


def _refined_smallest(pool: Pool, budget: int, score: IntervalScore) -> tuple[np.ndarray, np.ndarray]:
    """This process's ``budget`` smallest exact scores, by filter and refine (see above): every
    row `interval_candidates` keeps is scored exactly (`exact_scores`)."""
    found = interval_candidates(pool, budget, score)
    exact = RunningSmallest(budget)
    exact.push(exact_scores(pool, score, found), found.rows)
    return exact.indices, exact.scores


@dataclass
class Intervals:
    """Rows with score intervals from the filter: ``rows`` (r,) int64 pool indices, ``lower`` and
    ``upper`` (r,) float64 (equal where the score is known exactly), ``top_two`` (r, 2) int64 and
    ``denominator`` (r,) float64 (see ``IntervalScore``; -1 and NaN where not used)."""

    rows: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    top_two: np.ndarray
    denominator: np.ndarray

    def __getitem__(self, which) -> "Intervals":
        return Intervals(self.rows[which], self.lower[which], self.upper[which], self.top_two[which], self.denominator[which])


def interval_candidates(pool: Pool, count: int, score: IntervalScore) -> Intervals:
    """One pass of the fast product: the rows that may be among the ``count`` smallest exact scores,
    with their intervals.

    Why no row is lost: the ``count`` rows with the smallest upper ends all have exact scores <= T
    (the ``count``-th smallest upper end), so the ``count``-th smallest exact score is <= T, and a
    row with lower end > T has an exact score above it; every other row is kept. Rows the filter
    marks unsettled are scored exactly after the stream, in one product (point intervals; until
    then T is only looser, which keeps more rows and changes nothing else); after a stream coarser
    than float32 they are kept with open intervals and the float32 product of `_narrowed` comes
    first. A score that takes a threshold (``IntervalScore.takes_threshold``: entropy) is given
    the current T, which only goes down: the rows it gives cheaper, wider intervals have lower ends
    above T, and are dropped as they would be with the full ones.
    Cost: the fast pass, O(N*d*C), plus the exact logits of the unsettled rows; memory
    O(chunk*C + the rows kept).
    """
    pool = pool.stream_keeping(count) if score.coarse_ok else pool.streaming_float32()
    upper_ends = RunningSmallest(count)
    kept: list[tuple[np.ndarray, ...]] = []
    buffered, limit = 0, max(1 << 20, 8 * count)
    unsettled_rows: list[np.ndarray] = []  # scored exactly after the stream, in one product

    # The threshold as last set (a float, read by the workers): it only goes down, so a worker's
    # reading is at least the threshold its rows meet in `take`.
    current = {"threshold": np.inf}

    def intervals(rows: np.ndarray, logits: np.ndarray, bound: np.ndarray):  # in worker threads
        if score.takes_threshold:
            return rows, *score.bounds(logits, bound, threshold=current["threshold"])
        return rows, *score.bounds(logits, bound)

    def take(rows, lower, upper, top_two, denominator) -> int:
        upper_ends.push(upper, rows)
        current["threshold"] = upper_ends.threshold()
        passing = lower <= current["threshold"]
        kept.append((rows[passing], lower[passing], upper[passing], top_two[passing], denominator[passing]))
        return int(passing.sum())

    for rows, lower, upper, unsettled, *extra in pool.map_unlabeled_bounds(intervals):
        top_two, denominator = extra if extra else (np.full((rows.shape[0], 2), -1, dtype=np.int64), np.full(rows.shape[0], np.nan))
        if unsettled is not None and unsettled.any():
            if pool.coarse:  # open intervals: the float32 product (`_narrowed`) may settle them
                lower, upper = np.where(unsettled, -np.inf, lower), np.where(unsettled, np.inf, upper)
                top_two = np.where(unsettled[:, None], -1, top_two)
            else:
                unsettled_rows.append(rows[unsettled])
                settled = ~unsettled
                rows, lower, upper, top_two, denominator = rows[settled], lower[settled], upper[settled], top_two[settled], denominator[settled]
        buffered += take(rows, lower, upper, top_two, denominator)
        if buffered > limit:
            merged = [np.concatenate(part) for part in zip(*kept)]
            passing = merged[1] <= upper_ends.threshold()
            kept, buffered = [tuple(part[passing] for part in merged)], int(passing.sum())
            limit = max(limit, 2 * buffered)  # wide intervals keep many: compact less often (linear time overall)
    if unsettled_rows:
        rows = np.concatenate(unsettled_rows)
        exact = np.asarray(score.exact(pool.reference_logits(rows)), dtype=np.float64)
        take(rows, exact, exact, np.full((rows.shape[0], 2), -1, dtype=np.int64), np.full(rows.shape[0], np.nan))
    if not kept:
        return Intervals(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty((0, 2), dtype=np.int64), np.empty(0))
    found = Intervals(*(np.concatenate(part) for part in zip(*kept)))
    found = found[found.lower <= upper_ends.threshold()]
    return _narrowed(pool, found, count, score) if pool.coarse else found


def _narrowed(pool: Pool, found: Intervals, count: int, score: IntervalScore) -> Intervals:
    """``found`` after a float32 product of its rows (``Pool.approximate_rows``): each interval is
    the intersection of the stream's and the float32 one (both hold the exact score, so it does
    too), and a pair of deciding classes is taken from the float32 logits where they name one.
    Rows go in order of their upper ends, so the first few settle the ``count``-th smallest upper
    end T; a row whose lower end is above T is dropped without its product. Why none is lost:
    every interval holds its row's exact score, so ``count`` rows have exact scores <= T, and a
    row above T is not among the ``count`` smallest (the rows left out by the stream have lower
    ends above its threshold, which T never exceeds: the rows of its ``count`` smallest upper
    ends are all in ``found``).
    Cost: the float32 product of the rows still open when their turn comes, O(r*d*C)."""
    lower, upper = found.lower.copy(), found.upper.copy()
    top_two, denominator = found.top_two.copy(), found.denominator.copy()
    pending = np.flatnonzero(lower < upper)
    pending = pending[np.argsort(upper[pending], kind="stable")]
    step = min(pool.chunk_size, max(2 * count, 512))  # the first step sets T near its float32 value
    threshold = np.inf
    while pending.shape[0]:
        at, pending = pending[:step], pending[step:]
        step = pool.chunk_size
        _, logits, bound = pool.approximate_rows(found.rows[at])
        new_lower, new_upper, unsettled, *extra = score.bounds(logits, bound)
        keep = np.ones(at.shape[0], dtype=bool) if unsettled is None else ~unsettled
        settled = at[keep]
        lower[settled] = np.maximum(lower[settled], new_lower[keep])
        upper[settled] = np.minimum(upper[settled], new_upper[keep])
        if extra:
            pairs = keep & (extra[0][:, 0] >= 0)
            top_two[at[pairs]] = extra[0][pairs]
            denominator[at[pairs]] = extra[1][pairs]
        if 0 < count < upper.shape[0]:
            threshold = np.partition(upper, count - 1)[count - 1]
            pending = pending[lower[pending] <= threshold]
    narrowed = Intervals(found.rows, lower, upper, top_two, denominator)
    return narrowed[lower <= threshold]


def exact_scores(pool: Pool, score: IntervalScore, found: Intervals) -> np.ndarray:
    """``(r,) float64`` exact scores of the rows of ``found``: a point interval is its score, a row
    with ``top_two`` classes gets it from those two exact logits (``Pool.reference_top_two``), the
    rest from ``score.from_rows`` when the score has it, else from their exact logits
    (``Pool.reference_logits``), in sorted chunks of rows."""
    out = np.empty(found.rows.shape[0])
    point = found.lower == found.upper
    out[point] = found.lower[point]
    pairs = ~point & (found.top_two[:, 0] >= 0)
    if pairs.any():
        out[pairs] = score.from_top_two(pool.reference_top_two(found.rows[pairs], found.top_two[pairs]), found.denominator[pairs])
    rest = np.flatnonzero(~point & ~pairs)
    rest = rest[np.argsort(found.rows[rest], kind="stable")]
    for start in range(0, rest.shape[0], pool.chunk_size):
        block = rest[start:start + pool.chunk_size]
        if score.from_rows is None:
            out[block] = score.exact(pool.reference_logits(found.rows[block]))
        else:
            out[block] = score.from_rows(pool, found.rows[block])
    return out


def kth_smallest_per_group(values: np.ndarray, groups: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``(G,) float64``: per group g, its ``k[g]``-th smallest value (+inf where the group has fewer,
    -inf where k[g] = 0). groups: ``(n,)`` ints in [0, G). O(n log n)."""
    order = np.lexsort((values, groups))
    starts = np.searchsorted(groups[order], np.arange(k.shape[0] + 1), side="left")
    threshold = np.where(k > 0, np.inf, -np.inf)
    full = np.flatnonzero((np.diff(starts) >= k) & (k > 0))
    threshold[full] = values[order[starts[full] + k[full] - 1]]
    return threshold


def float32_ceiling(values: np.ndarray) -> np.ndarray:
    """``values`` as float32, rounded up, never down (a float32 x <= the result whenever x <= the value)."""
    rounded = values.astype(np.float32)
    return np.where(rounded < values, np.nextafter(rounded, np.float32(np.inf)), rounded)


class RunningSmallestPerClass:
    """For every class c, keep the ``k[c]`` smallest (score, index) pairs seen over a stream of
    ``(B, C)`` score matrices, without a Python loop over classes.

    Entries pass a per-class threshold (the current k[c]-th smallest score, +inf until class c
    has k[c] candidates) in one vectorised comparison; survivors are buffered and compacted
    (a radix grouping by class, then an O(n) selection per class) whenever the buffer has grown
    by ``buffer_limit`` pairs; each class's survivors are sorted once, at the end. A block that
    arrives while a class has no threshold yet sets one from its own k[c]-th smallest score
    (a partition of that block), so the first blocks do not pass every entry.
    Memory O(sum(k) + buffer_limit + B*C); equal to ``smallest_k`` per column over the
    concatenation of every chunk, whatever the chunking.
    """

    def __init__(self, k: np.ndarray, buffer_limit: int | None = None):
        self.k = np.asarray(k, dtype=np.int64)
        self.thresholds = np.where(self.k > 0, np.inf, -np.inf)
        total = int(self.k.sum())
        # Compaction keeps up to sum(k) pairs; compact again once this many more have arrived.
        # Frequent compactions tighten the thresholds early; each costs O(buffer + C).
        self.buffer_limit = (max(1 << 20, 2 * total) if buffer_limit is None else int(buffer_limit)) + total
        self._classes: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._indices: list[np.ndarray] = []
        self._buffered = 0

    def push(self, scores: np.ndarray, indices: np.ndarray) -> None:
        """scores: ``(B, C)``; indices: ``(B,)`` pool indices of the rows."""
        self.push_candidates(*self.candidates(scores, indices))

    def candidates(self, scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(classes, scores, indices, block thresholds or None) of the entries that pass the
        thresholds. Only reads state, so worker threads may call it while ``push_candidates``
        runs: a threshold read before a compaction is looser, which lets more pairs through and
        changes nothing else."""
        thresholds = self.thresholds
        local = None
        unset = np.flatnonzero(np.isinf(thresholds) & (thresholds > 0) & (self.k <= scores.shape[0]))
        if unset.shape[0]:
            # This block alone holds k[c] pairs at or below its j-th smallest score for any j >= k[c],
            # and they all pass: a valid threshold for class c from now on. j is k[c] rounded up to
            # a power of two (at most the block's rows), so one partition has few distinct positions.
            positions = np.minimum((1 << np.ceil(np.log2(self.k[unset])).astype(np.int64)) - 1, scores.shape[0] - 1)
            ordered = np.partition(scores[:, unset], np.unique(positions), axis=0)
            local = np.full(thresholds.shape[0], np.inf)
            local[unset] = ordered[positions, np.arange(unset.shape[0])]
            thresholds = np.minimum(thresholds, local)
        if scores.dtype == np.float32:
            thresholds = float32_ceiling(thresholds)  # compare in float32: half the traffic
        # flatnonzero + divmod: 6x faster than a 2-d nonzero when few entries pass.
        flat = np.flatnonzero(scores <= thresholds[None, :])
        rows, classes = np.divmod(flat, scores.shape[1])
        return classes, scores.reshape(-1)[flat].astype(np.float64), indices[rows], local

    def push_candidates(self, classes: np.ndarray, scores: np.ndarray, indices: np.ndarray, local: np.ndarray | None = None) -> None:
        """Add pairs from `candidates`; compacts when the buffer is full."""
        if local is not None:
            np.minimum(self.thresholds, local, out=self.thresholds)
        if classes.shape[0] == 0:
            return
        self._classes.append(classes)
        self._scores.append(scores)
        self._indices.append(indices)
        self._buffered += classes.shape[0]
        if self._buffered > self.buffer_limit:
            self._compact()

    def _compact(self) -> None:
        classes = np.concatenate(self._classes)
        scores = np.concatenate(self._scores)
        indices = np.concatenate(self._indices)
        # Group by class with a radix sort (small integer keys), then select within each group.
        key_type = np.int16 if self.k.shape[0] < 2**15 else np.int32
        grouped = np.argsort(classes.astype(key_type), kind="stable")
        bounds = np.searchsorted(classes[grouped], np.arange(self.k.shape[0] + 1), side="left")
        kept_classes, kept_scores, kept_indices = [], [], []
        for cls in np.flatnonzero(np.diff(bounds)):
            members = grouped[bounds[cls]:bounds[cls + 1]]
            class_indices, class_scores, largest = smallest_k_unordered(scores[members], indices[members], int(self.k[cls]))
            if class_indices.shape[0] == self.k[cls]:
                self.thresholds[cls] = min(self.thresholds[cls], largest)
            kept_classes.append(np.full(class_indices.shape[0], cls, dtype=np.int64))
            kept_scores.append(class_scores)
            kept_indices.append(class_indices)
        self._classes = [np.concatenate(kept_classes)]
        self._scores = [np.concatenate(kept_scores)]
        self._indices = [np.concatenate(kept_indices)]
        self._buffered = self._classes[0].shape[0]

    def finish_thresholds(self) -> np.ndarray:
        """``(C,) float64``: per class the ``k[c]``-th smallest score pushed (+inf for a class with
        fewer, -inf where k[c] = 0), after a last compaction."""
        if self._buffered:
            self._compact()
        return self.thresholds.copy()

    def finish(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per class, ``(indices, scores)`` of its kept pairs sorted by (score, index)."""
        if self._buffered == 0:
            return [(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)) for _ in self.k]
        self._compact()
        classes, scores, indices = self._classes[0], self._scores[0], self._indices[0]
        bounds = np.searchsorted(classes, np.arange(self.k.shape[0] + 1), side="left")
        result = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            order = np.lexsort((indices[lo:hi], scores[lo:hi]))
            result.append((indices[lo:hi][order], scores[lo:hi][order]))
        return result
