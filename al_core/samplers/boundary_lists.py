"""BASE's per-class candidate lists, walked in (distance, pool index) order by the turns.

Each class's list is the ``keep[c]`` unlabeled items nearest its boundary (paper Eq. 3); a turn
takes the first item of its class's list not taken yet, and a list walked to its end (``keep[c]``
items, taken ones included) "runs out": BASE then streams the pool again with longer lists.

Two kinds with one method, ``next_untaken(cls, taken)``:

- `ExactLists`: lists of exact distances (from given logits), a cursor per class.
- `RefiningLists`: from features (filter and refine). Each class holds every item whose
  distance interval can fall among its ``keep[c]`` nearest; exact distances (from the exact
  logits) are computed lazily, a few rows at a time, only as far as the turns walk each list.
  A class's next item is the smallest exact distance among its refined items once it is below
  the lower end of every unrefined one, so the walk is the exact lists' walk. After a stream
  coarser than float32 (bfloat16) a row's wide interval is first narrowed by its float32 product
  (``narrow``), also only as far as the turns walk, and only rows whose narrowed interval still
  reaches the walk take exact logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from al_core.samplers.quotas import positions_in_runs

FIRST_BATCH = 16  # rows refined the first time a class needs one; doubles each time that class needs more
FIRST_NARROW_BATCH = 16  # rows narrowed (float32 product) the first time a class needs one; doubles likewise
PREFETCH_NARROW = 2  # before the turns, each class's first PREFETCH_NARROW * (its turns) + FIRST_NARROW_BATCH coarse entries are narrowed
LOOKAHEAD = 2  # with them, the next unrefined rows of every class with turns left (one product for all: see _refine)


def _sorted_merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``(values, rows)`` of the parts' entries together, sorted by (value, pool row)."""
    values, rows = (np.concatenate(column) for column in zip(*parts))
    order = np.lexsort((rows, values))
    return values[order], rows[order]


class ExactLists:
    """Per class, ``(indices, distances)`` sorted by (distance, index), at most ``keep[c]`` long."""

    def __init__(self, lists: list[tuple[np.ndarray, np.ndarray]], keep: np.ndarray):
        self.indices = [candidates[0].tolist() for candidates in lists]
        self.distances = [candidates[1].tolist() for candidates in lists]
        self.cursor = [0] * len(lists)
        self.keep = keep

    def next_untaken(self, cls: int, taken: np.ndarray) -> tuple[int, float] | None:
        """``(pool index, distance)`` of class ``cls``'s nearest item not taken, or None when its
        truncated list ran out. A list shorter than ``keep[cls]`` holds every eligible item and
        cannot run out while the budget does not exceed the unlabeled pool."""
        indices, position = self.indices[cls], self.cursor[cls]
        while position < len(indices) and taken[indices[position]]:
            position += 1
        if position == len(indices):
            if len(indices) < self.keep[cls]:
                raise AssertionError(f"BASE: class {cls} has no candidate left although its list is complete")
            self.cursor[cls] = position
            return None
        self.cursor[cls] = position + 1
        return indices[position], self.distances[cls][position]

    @property
    def walked(self) -> np.ndarray:
        """``(C,) int64``: per class, how many items of its list the turns have walked (taken by
        it or passed over as taken by others)."""
        return np.asarray(self.cursor, dtype=np.int64)


class RefiningLists:
    """Candidate entries ``(classes, rows, lower)`` (every entry that may be among its class's
    ``keep[c]`` nearest), refined lazily with ``exact_distances(rows) -> (B, C) float32``.

    A class's refined entries wait, as arrays, until its walk next looks at them; they are then
    sorted by (distance, pool index) together with the ones it has not walked yet, and walked in
    that order.

    With ``narrow(rows) -> (lower (B, C) float32, exact (B,) bool)`` (after a coarse stream), a row
    the walk reaches is first narrowed: each of its entries' lower end becomes the larger of the
    stream's and ``lower`` (both hold the exact distance below them), and the entry waits, by that
    end, among its class's narrowed entries; the walk then refines exactly the rows whose ends are
    smallest, narrowed or not (a row with ``exact[i]`` has its exact distances in ``lower[i]``: it
    counts as refined). The walk's order is the same: a ready entry is taken only below every
    unrefined entry's lower end, narrowed or coarse.

    Cost: O(E log E) to sort E entries once; the exact logits of the rows the walk reaches
    (about the budget, plus the rows whose intervals overlap the walked distances), in batches;
    per batch O(E_b) vectorised for its E_b entries and a sort of each class's waiting ones. With
    ``narrow``, the float32 product of the rows the walk reaches by their stream's lower ends, in
    batches, and the exact logits of those it reaches by their narrowed ends.
    """

    def __init__(self, classes: np.ndarray, rows: np.ndarray, lower: np.ndarray, keep: np.ndarray,
                 exact_distances: Callable[[np.ndarray], np.ndarray],
                 narrow: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None):
        order = np.lexsort((rows, lower, classes))
        self.rows, self.lower = rows[order], lower[order]
        self.row_list = self.rows.tolist()  # for the walk's scalar reads
        self.starts = np.searchsorted(classes[order], np.arange(keep.shape[0] + 1), side="left")
        self.stops = self.starts[1:].tolist()
        self.position = self.starts[:-1].tolist()  # per class: next entry neither refined nor narrowed
        by_row = np.argsort(rows, kind="stable")  # to find every class a refined row is a candidate of
        self.rows_by_row, self.classes_by_row, self.lower_by_row = rows[by_row], classes[by_row], lower[by_row]
        self.refined: set[int] = set()
        self.narrowed: set[int] = set()
        self.narrow = narrow
        classes_count = keep.shape[0]
        # narrowed entries not refined, per class: arrays waiting to join, and the sorted ones from a cursor
        self.open_waiting: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(classes_count)]
        self.open_waiting_min = [math.inf] * classes_count
        self.open_ready: list[tuple[list[float], list[int]]] = [([], []) for _ in range(classes_count)]
        self.open_cursor = [0] * classes_count
        self.narrow_batch = np.full(classes_count, FIRST_NARROW_BATCH, dtype=np.int64)
        self.waiting: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(classes_count)]
        self.ready: list[tuple[list[float], list[int]]] = [([], []) for _ in range(classes_count)]  # sorted, not walked
        self.ready_arrays = [(np.empty(0), np.empty(0, dtype=np.int64)) for _ in range(classes_count)]
        self.waiting_min = [math.inf] * classes_count  # the smallest waiting distance per class
        self.cursor = [0] * classes_count  # per class: the next ready entry
        self.walked = np.zeros(classes_count, dtype=np.int64)
        self.batch = np.full(classes_count, FIRST_BATCH, dtype=np.int64)
        self.remaining = np.zeros(classes_count, dtype=np.int64)  # turns left per class (from prefetch)
        self.keep = keep
        self.exact_distances = exact_distances

    def _coarse_next(self, cls: int) -> float | None:
        """Lower end of class ``cls``'s first entry whose row is neither refined nor narrowed (None
        when none is left)."""
        position, stop, rows, refined, narrowed = self.position[cls], self.stops[cls], self.row_list, self.refined, self.narrowed
        while position < stop and (rows[position] in refined or rows[position] in narrowed):
            position += 1
        self.position[cls] = position
        return float(self.lower[position]) if position < stop else None

    def _open_next(self, cls: int) -> float | None:
        """Smallest narrowed lower end among class ``cls``'s narrowed entries not refined (waiting
        ones included; None when there is none)."""
        values, rows = self.open_ready[cls]
        cursor, refined = self.open_cursor[cls], self.refined
        while cursor < len(rows) and rows[cursor] in refined:
            cursor += 1
        self.open_cursor[cls] = cursor
        if cursor == len(values) and not self.open_waiting[cls]:
            return None
        return min(values[cursor] if cursor < len(values) else math.inf, self.open_waiting_min[cls])

    def _next_lower(self, cls: int) -> float | None:
        """Lower end of class ``cls``'s first entry whose row is not refined (None when none is left)."""
        coarse = self._coarse_next(cls)
        if self.narrow is None:
            return coarse
        narrowed = self._open_next(cls)
        if narrowed is None:
            return coarse
        return narrowed if coarse is None else min(coarse, narrowed)

    def _unrefined(self, cls: int, count: int) -> list[int]:
        """Class ``cls``'s next ``count`` rows neither refined nor narrowed, by their stream's lower end."""
        position, stop, rows, refined, narrowed = self.position[cls], self.stops[cls], self.row_list, self.refined, self.narrowed
        batch: list[int] = []
        while position < stop and len(batch) < count:
            if rows[position] not in refined and rows[position] not in narrowed:
                batch.append(rows[position])
            position += 1
        return batch

    def _open_rows(self, cls: int, count: int, merge: bool = True) -> list[int]:
        """Class ``cls``'s next ``count`` narrowed rows not refined, by narrowed lower end (with
        ``merge``, its waiting narrowed entries join first; without, only the sorted ones count)."""
        if merge and self.open_waiting[cls]:
            values, rows = self.open_ready[cls]
            cursor = self.open_cursor[cls]
            merged_values, merged_rows = _sorted_merge([(np.asarray(values[cursor:], dtype=np.float64), np.asarray(rows[cursor:], dtype=np.int64)),
                                                        *self.open_waiting[cls]])
            self.open_ready[cls] = (merged_values.tolist(), merged_rows.tolist())
            self.open_cursor[cls] = 0
            self.open_waiting[cls] = []
            self.open_waiting_min[cls] = math.inf
        values, rows = self.open_ready[cls]
        cursor, refined = self.open_cursor[cls], self.refined
        batch: list[int] = []
        while cursor < len(rows) and len(batch) < count:
            if rows[cursor] not in refined:
                batch.append(rows[cursor])
            cursor += 1
        return batch

    def _refine(self, cls: int) -> None:
        """Exact distances of class ``cls``'s next unrefined rows, given to every class they are
        candidates of; with them, the next ``LOOKAHEAD`` unrefined rows of every other class with
        turns left. One float64 product reads the whole head, so a few rows cost as much as a few
        dozen: refining the rows other classes will soon need in the same product saves hundreds
        of small ones. With ``narrow``: when the class's smallest open lower end is a stream's
        one, its next rows by that end are narrowed instead (with the same lookahead), else its
        next narrowed rows are refined."""
        if self.narrow is not None:
            coarse, narrowed = self._coarse_next(cls), self._open_next(cls)
            if coarse is not None and (narrowed is None or coarse <= narrowed):
                self._push_narrowed(self._batch(cls, self.narrow_batch, lambda other, count, merge: self._unrefined(other, count)))
                return
        self._push_exact(self._batch(cls, self.batch, self._to_refine))

    def _batch(self, cls: int, sizes: np.ndarray, take: Callable[[int, int, bool], list[int]]) -> np.ndarray:
        """Sorted distinct rows: ``take(cls, sizes[cls], True)`` (then ``sizes[cls]`` doubles) and
        ``take(other, LOOKAHEAD or its turns left, False)`` for every other class with turns left."""
        batch = set(take(cls, int(sizes[cls]), True))
        sizes[cls] *= 2
        for other in np.flatnonzero(self.remaining > 0).tolist():
            if other != cls:
                batch.update(take(other, min(LOOKAHEAD, int(self.remaining[other])), False))
        return np.array(sorted(batch), dtype=np.int64)

    def _to_refine(self, cls: int, count: int, merge: bool) -> list[int]:
        """Class ``cls``'s next ``count`` rows to score exactly: its narrowed rows by narrowed lower
        end when the lists narrow (``merge``: see `_open_rows`), else its rows by lower end."""
        return self._open_rows(cls, count, merge) if self.narrow is not None else self._unrefined(cls, count)

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For sorted pool ``rows``: ``(which, classes, entries)``, each candidate entry of those rows
        as its row's place in ``rows``, its class and its place in the by-row arrays. O(entries)."""
        first = np.searchsorted(self.rows_by_row, rows, side="left")
        counts = np.searchsorted(self.rows_by_row, rows, side="right") - first
        which = np.repeat(np.arange(rows.shape[0]), counts)  # each entry's row in the batch
        entries = positions_in_runs(counts) + np.repeat(first, counts)  # each entry's place in rows_by_row
        return which, self.classes_by_row[entries], entries

    @staticmethod
    def _by_class(classes: np.ndarray, values: np.ndarray, entry_rows: np.ndarray):
        """Yield ``(cls, values, rows, smallest value)`` for each class among the entries."""
        order = np.argsort(classes, kind="stable")
        classes, values, entry_rows = classes[order], values[order], entry_rows[order]
        bounds = np.flatnonzero(np.diff(classes)) + 1
        starts = np.concatenate([[0], bounds])
        smallest = np.minimum.reduceat(values, starts).tolist() if values.shape[0] else []
        for start, stop, cls, least in zip(starts.tolist(), [*bounds.tolist(), classes.shape[0]], classes[starts].tolist(), smallest):
            yield cls, values[start:stop], entry_rows[start:stop], least

    def _push_exact(self, rows: np.ndarray, distances: np.ndarray | None = None) -> None:
        """Exact distances of ``rows`` (sorted, none refined yet; ``distances`` when known), given to
        every class they are candidates of (to wait there until that class's walk looks). O(entries)
        vectorised."""
        if rows.shape[0] == 0:
            return
        distances = self.exact_distances(rows) if distances is None else distances
        which, classes, _ = self._entries(rows)
        for cls, values, entry_rows, least in self._by_class(classes, distances[which, classes].astype(np.float64), rows[which]):
            self.waiting[cls].append((values, entry_rows))
            self.waiting_min[cls] = min(self.waiting_min[cls], least)
        self.refined.update(rows.tolist())

    def _push_narrowed(self, rows: np.ndarray) -> None:
        """Narrowed lower ends of ``rows`` (sorted, neither refined nor narrowed yet), given to every
        class they are candidates of; rows ``narrow`` gave exact distances are refined."""
        if rows.shape[0] == 0:
            return
        lower, exact = self.narrow(rows)
        self.narrowed.update(rows.tolist())
        if exact.any():
            self._push_exact(rows[exact], lower[exact])
            lower, rows = lower[~exact], rows[~exact]
        which, classes, entries = self._entries(rows)
        values = np.maximum(lower[which, classes].astype(np.float64), self.lower_by_row[entries].astype(np.float64))
        for cls, values, entry_rows, least in self._by_class(classes, values, rows[which]):
            self.open_waiting[cls].append((values, entry_rows))
            self.open_waiting_min[cls] = min(self.open_waiting_min[cls], least)

    def _ready(self, cls: int) -> tuple[list[float], list[int]]:
        """Class ``cls``'s refined entries not walked yet, sorted by (distance, pool index), from
        the cursor on (as lists, for the walk's scalar reads; the arrays are kept for the next
        merge). The waiting ones join only when one of them may come before the next ready one,
        so most classes never sort the entries their walk does not reach."""
        distances, cursor = self.ready[cls][0], self.cursor[cls]
        if self.waiting[cls] and (cursor == len(distances) or self.waiting_min[cls] <= distances[cursor]):
            values, pool_rows = _sorted_merge([tuple(array[cursor:] for array in self.ready_arrays[cls]), *self.waiting[cls]])
            self.ready_arrays[cls] = (values, pool_rows)
            self.ready[cls] = (values.tolist(), pool_rows.tolist())
            self.cursor[cls] = 0
            self.waiting[cls] = []
            self.waiting_min[cls] = math.inf
        return self.ready[cls]

    def prefetch(self, counts: np.ndarray) -> None:
        """Refine, in one batch, each class's first ``counts[c]`` entries (by lower end): what its
        turns will need at least, so most of the walk needs no small batches (one large float64
        product is several times faster per row than many small ones). With ``narrow``, first
        narrow each class's first ``PREFETCH_NARROW * counts[c] + FIRST_NARROW_BATCH`` entries by
        the stream's lower ends (one batch), then refine each class's first ``counts[c]`` by
        narrowed lower end."""
        self.remaining = np.asarray(counts, dtype=np.int64).copy()
        if self.narrow is not None:
            depth = np.where(self.remaining > 0, PREFETCH_NARROW * self.remaining + FIRST_NARROW_BATCH, 0)
            self._push_narrowed(self._first_entries(depth))
            batch = {row for cls in np.flatnonzero(self.remaining > 0).tolist() for row in self._open_rows(cls, int(self.remaining[cls]))}
            self._push_exact(np.array(sorted(batch), dtype=np.int64))
            return
        self._push_exact(self._first_entries(self.remaining))

    def _first_entries(self, counts: np.ndarray) -> np.ndarray:
        """The distinct rows, neither refined nor narrowed yet, of each class's first ``counts[c]``
        entries by the stream's lower end."""
        batch = [self.rows[start:start + min(int(count), stop - start)]
                 for start, stop, count in zip(self.starts[:-1], self.starts[1:], counts)]
        rows = np.unique(np.concatenate(batch)) if batch else np.empty(0, dtype=np.int64)
        if self.refined or self.narrowed:
            rows = rows[[row not in self.refined and row not in self.narrowed for row in rows.tolist()]]
        return rows

    def next_untaken(self, cls: int, taken: np.ndarray) -> tuple[int, float] | None:
        """As `ExactLists.next_untaken`: the exact walk, refining only as far as it goes."""
        keep = int(self.keep[cls])
        while True:
            if self.walked[cls] >= keep:
                return None  # walked its keep[c] nearest: the truncated list ran out
            next_lower = self._next_lower(cls)
            distances, rows = self._ready(cls)
            # A ready entry is the next in exact order while it lies below every unrefined entry's
            # lower end (an unrefined entry at equal distance may have a smaller index) and below
            # every waiting one (those join the ready ones first).
            limit = min(math.inf if next_lower is None else next_lower, self.waiting_min[cls])
            cursor, walked, end = self.cursor[cls], int(self.walked[cls]), len(distances)
            while cursor < end and distances[cursor] < limit and walked < keep:
                row = rows[cursor]
                cursor += 1
                walked += 1
                if not taken[row]:
                    self.cursor[cls], self.walked[cls] = cursor, walked
                    self.remaining[cls] -= 1
                    return row, distances[cursor - 1]
            self.cursor[cls], self.walked[cls] = cursor, walked
            if walked >= keep:
                continue
            if self.waiting[cls] and (cursor == end or distances[cursor] >= self.waiting_min[cls]):
                continue  # the waiting entries join the ready ones at the next look
            if next_lower is None:
                raise AssertionError(f"BASE: class {cls} has no candidate left although its list is complete")
            self._refine(cls)
