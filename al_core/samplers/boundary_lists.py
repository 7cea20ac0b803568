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
  the lower end of every unrefined one, so the walk is the exact lists' walk.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

FIRST_BATCH = 16  # rows refined the first time a class needs one; doubles each time that class needs more
LOOKAHEAD = 2  # with them, the next unrefined rows of every class with turns left (one product for all: see _refine)


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
            return None
        self.cursor[cls] = position + 1
        return indices[position], self.distances[cls][position]


class RefiningLists:
    """Candidate entries ``(classes, rows, lower)`` (every entry that may be among its class's
    ``keep[c]`` nearest), refined lazily with ``exact_distances(rows) -> (B, C) float32``.

    Cost: O(E log E) to sort E entries once; the exact logits of the rows the walk reaches
    (about the budget, plus the rows whose intervals overlap the walked distances), in batches.
    """

    def __init__(self, classes: np.ndarray, rows: np.ndarray, lower: np.ndarray, keep: np.ndarray,
                 exact_distances: Callable[[np.ndarray], np.ndarray]):
        order = np.lexsort((rows, lower, classes))
        self.rows, self.lower = rows[order], lower[order]
        self.starts = np.searchsorted(classes[order], np.arange(keep.shape[0] + 1), side="left")
        self.position = self.starts[:-1].copy()  # per class: next entry not refined yet
        by_row = np.argsort(rows, kind="stable")  # to find every class a refined row is a candidate of
        self.rows_by_row, self.classes_by_row = rows[by_row], classes[by_row]
        self.refined: set[int] = set()
        self.heaps: list[list[tuple[float, int]]] = [[] for _ in range(keep.shape[0])]
        self.walked = np.zeros(keep.shape[0], dtype=np.int64)
        self.batch = np.full(keep.shape[0], FIRST_BATCH, dtype=np.int64)
        self.remaining = np.zeros(keep.shape[0], dtype=np.int64)  # turns left per class (from prefetch)
        self.keep = keep
        self.exact_distances = exact_distances

    def _next_lower(self, cls: int) -> float | None:
        """Lower end of class ``cls``'s first entry whose row is not refined (None when none is left)."""
        position, stop = self.position[cls], self.starts[cls + 1]
        while position < stop and int(self.rows[position]) in self.refined:
            position += 1
        self.position[cls] = position
        return float(self.lower[position]) if position < stop else None

    def _unrefined(self, cls: int, count: int) -> list[int]:
        """Class ``cls``'s next ``count`` rows not refined yet, by lower end."""
        position, stop = self.position[cls], self.starts[cls + 1]
        batch: list[int] = []
        while position < stop and len(batch) < count:
            row = int(self.rows[position])
            if row not in self.refined:
                batch.append(row)
            position += 1
        return batch

    def _refine(self, cls: int) -> None:
        """Exact distances of class ``cls``'s next unrefined rows, pushed to every class they are
        candidates of; with them, the next ``LOOKAHEAD`` unrefined rows of every other class with
        turns left. One float64 product reads the whole head, so a few rows cost as much as a few
        dozen: refining the rows other classes will soon need in the same product saves hundreds
        of small ones."""
        batch = set(self._unrefined(cls, int(self.batch[cls])))
        self.batch[cls] *= 2
        for other in np.flatnonzero(self.remaining > 0).tolist():
            if other != cls:
                batch.update(self._unrefined(other, min(LOOKAHEAD, int(self.remaining[other]))))
        self._push_exact(np.array(sorted(batch), dtype=np.int64))

    def _push_exact(self, rows: np.ndarray) -> None:
        """Exact distances of ``rows`` (sorted, none refined yet), pushed to every class they are candidates of."""
        if rows.shape[0] == 0:
            return
        distances = self.exact_distances(rows)
        first = np.searchsorted(self.rows_by_row, rows, side="left")
        last = np.searchsorted(self.rows_by_row, rows, side="right")
        for index, row in enumerate(rows.tolist()):
            for klass in self.classes_by_row[first[index]:last[index]].tolist():
                heapq.heappush(self.heaps[klass], (float(distances[index, klass]), row))
            self.refined.add(row)

    def prefetch(self, counts: np.ndarray) -> None:
        """Refine, in one batch, each class's first ``counts[c]`` entries (by lower end): what its
        turns will need at least, so most of the walk needs no small batches (one large float64
        product is several times faster per row than many small ones)."""
        self.remaining = np.asarray(counts, dtype=np.int64).copy()
        batch = [self.rows[start:start + min(int(count), stop - start)]
                 for start, stop, count in zip(self.starts[:-1], self.starts[1:], counts)]
        rows = np.unique(np.concatenate(batch)) if batch else np.empty(0, dtype=np.int64)
        self._push_exact(rows[[int(row) not in self.refined for row in rows.tolist()]] if self.refined else rows)

    def next_untaken(self, cls: int, taken: np.ndarray) -> tuple[int, float] | None:
        """As `ExactLists.next_untaken`: the exact walk, refining only as far as it goes."""
        heap = self.heaps[cls]
        while True:
            if self.walked[cls] >= self.keep[cls]:
                return None  # walked its keep[c] nearest: the truncated list ran out
            next_lower = self._next_lower(cls)
            # The heap's smallest is the next in exact order once it is below every unrefined
            # entry's lower end (an unrefined entry at equal distance may have a smaller index).
            if heap and (next_lower is None or heap[0][0] < next_lower):
                distance, row = heapq.heappop(heap)
                self.walked[cls] += 1
                if not taken[row]:
                    self.remaining[cls] -= 1
                    return row, distance
            elif next_lower is None:
                raise AssertionError(f"BASE: class {cls} has no candidate left although its list is complete")
            else:
                self._refine(cls)
