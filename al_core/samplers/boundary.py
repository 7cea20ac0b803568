"""Margin Selection (MASE, paper Eq. 2 / Alg. 1) and Balanced Selection (BASE, Eq. 3 / Alg. 2).

Both measure, in feature space, how far an item lies from the linear head's decision boundaries:
the boundary between classes p and c is the hyperplane (w_p - w_c).x + (b_p - b_c) = 0, so an
item's distance to it is |z_p - z_c| / ||w_p - w_c||. Neither ever forms an (N, C, d) tensor:
the distances come from the logits and the (C, C) matrix of weight distances.
"""

from __future__ import annotations

import numpy as np

from al_core.linear import as_float32
from al_core.samplers.boundary_lists import ExactLists, RefiningLists
from al_core.samplers.pool import Pool
from al_core.samplers.quotas import REMAINDER_RULES, TURN_ORDERS, class_quotas, turn_order, turns_needed
from al_core.samplers.ranking import RunningSmallestPerClass, float32_ceiling, kth_smallest_per_group, select_smallest_scores, smallest_k
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import (IntervalScore, boundary_distance_bounds, boundary_distances, boundary_entry_bounds,
                                    inverse_weight_distances, nearest_boundary_bounds, rounded_slack)
from al_core.schema import one_of


@register_sampler("mase", shardable=True, needs=("logits", "head_weight"), summary="smallest feature-space distance to the nearest decision boundary (Eq. 2)")
def mase_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """MASE: score_i = min_{c != p} |z_p - z_c| / ||w_p - w_c||, take the ``budget`` smallest.

    Cost: O(N*d*C) logits (O(N*C) when given) + O(C^2*d) weight distances + O(N*C) scores;
    memory O(chunk*C + C^2 + budget).
    """
    geometry = inverse_weight_distances(pool.head_weight)

    def score(logits: np.ndarray) -> np.ndarray:
        distances, predicted = boundary_distances(logits, geometry)
        return distances[np.arange(len(predicted)), predicted]

    return select_smallest_scores(pool, budget, IntervalScore(score, lambda logits, bound: nearest_boundary_bounds(logits, bound, geometry),
                                                              from_rows=lambda pool, rows: exact_margins(pool, geometry, rows)))


def exact_margins(pool: Pool, geometry, rows: np.ndarray) -> np.ndarray:
    """``(B,) float32``: the MASE margins of pool rows (column p of `boundary_distances` of
    the exact logits), bit for bit, from the exact logits of the few classes that decide each.
    From features.

    The fast product of the rows (``Pool.approximate_rows``) and its intervals
    (`boundary_distance_bounds`) settle each row's predicted class p (where the top two
    logits are more than 2 bound apart) and the classes c whose distance interval reaches below the
    row's smallest upper end: the minimum is among them. Each of their distances is
    (z_p - z_c) * inverse[p, c] in float32 from two exact logits (``Pool.reference_entries``), as
    `boundary_distances` evaluates it. Rows whose p is not settled take their exact logits
    (``Pool.reference_logits``).
    Cost: the fast product of the rows, O(B*d*C), plus O(d) in float64 per exact logit taken
    (1 + the classes in reach, per row), instead of O(d*C) in float64 per row.
    """
    rows = np.asarray(rows, dtype=np.int64)
    features, logits, bound = pool.approximate_rows(rows)
    lower, upper, unsettled = boundary_distance_bounds(logits, bound, geometry)
    out = np.empty(rows.shape[0], dtype=np.float32)
    if unsettled.any():  # the exact logits decide the predicted class too
        distances, predicted = boundary_distances(pool.reference_logits(rows[unsettled]), geometry)
        out[unsettled] = distances[np.arange(predicted.shape[0]), predicted]
    settled = np.flatnonzero(~unsettled)
    predicted = logits[settled].argmax(axis=1)
    reach = lower[settled] <= upper[settled, predicted][:, None]
    reach[np.arange(settled.shape[0]), predicted] = False
    at, to = np.nonzero(reach)
    top = pool.reference_entries(rows[settled], predicted, features[settled])
    others = pool.reference_entries(rows[settled[at]], to, features[settled[at]])
    with np.errstate(invalid="ignore"):  # inf * 0 for identical weight rows, as boundary_distances
        candidates = geometry.inverse[predicted[at], to] * (top[at] - others)
    if geometry.parallel:
        np.nan_to_num(candidates, copy=False, nan=np.inf)
    margins = np.full(settled.shape[0], np.inf, dtype=np.float32)
    np.minimum.at(margins, at, candidates)
    out[settled] = margins
    return out


# A bfloat16 stream's wider intervals keep several times the (row, class) entries, and the walk
# refines several times the rows (realistic 100k pool: 2.6% instead of 0.2% at b/N = 0.1%, 8.8%
# instead of 2.1% at 1%): faster than a float32 stream at 0.1%, slower at 1% (``python -m
# benchmarks.selection_grid``, ``benchmarks.stream_precision``). Below this share of the pool BASE
# keeps the pool's bfloat16 stream; the switch between the two measured budgets is not measured.
BASE_COARSE_MAX_SHARE = 0.003
BASE_SLACK_FACTOR = 32  # candidates kept per class in the first pass: (1 + this) * quota + BASE_SLACK_EXTRA
BASE_SLACK_EXTRA = 64
LIST_GROWTH_SAFETY = 3  # after a list ran out, the next lists hold 3 x the fastest walk seen, extrapolated (`longer_lists`),
LIST_GROWTH_MAX = 8  # but at most 8 x their length (memory grows with them) and at least 2 x
HELD_ROWS_PER_KEEP = 16  # dense runs held before their first push: thresholds at about the 1/16 quantile


ORDER = one_of(*TURN_ORDERS, default="round_robin",
                help="order of the classes' turns: round_robin (the paper's Alg. 2) | sequential (the authors' released code)")


REMAINDER = one_of(*REMAINDER_RULES, default="fewest_labels",
                   help="which classes take the b mod C extra turns when C does not divide b: fewest_labels (ours: "
                        "the classes with the fewest labels so far, seeded ties) | class_order (Alg. 2 read literally: "
                        "classes 0, 1, ... in index order)")


@register_sampler("base", shardable=True, needs=("logits", "head_weight"), options={"order": ORDER, "remainder": REMAINDER},
                  summary="per-class quotas of items closest to each class's boundary (Eq. 3, Alg. 2)")
def base_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """BASE: classes take turns, each turn taking the class's nearest item not taken yet.

    An item's distance to class c's boundary (DCSDB) is its MASE margin when it is predicted as
    c, and |z_p - z_c| / ||w_p - w_c|| otherwise. Each class has a quota (`class_quotas`:
    b/C, the remainder to the classes with the fewest labels so far, seeded ties; option ``remainder``
    ``class_order``: classes 0, 1, ... as Alg. 2 reads literally). Option ``order``:
    ``round_robin`` (default, the paper's Alg. 2: passes over the classes, one item per class per
    pass) or ``sequential`` (the authors' released code: class 0's whole quota, then class 1's...).
    The two differ when classes compete for the same items.

    Before its last turn a class can lose at most (its last turn's position) items to the others,
    so one streaming pass keeps that many candidates per class, capped at a slack of a few times
    its quota; the turns then run on the candidates alone. If a class's truncated list runs out,
    every pick made so far is exact (each came from a list that still held untaken items), so the
    pool is streamed again without them and the turns resume where they stopped, with longer lists
    (`longer_lists`: as long as the turns left would walk at the pace of the fastest list so far,
    2 to 8 times longer; from features, for a few classes, a product with their weights only:
    `_few_class_candidates`).

    From features the pass uses the fast product with intervals, and the turns compute exact
    distances lazily (`RefiningLists`): the same picks,
    order and scores as exact lists, with about b rows (plus near-ties) scored exactly. After a
    bfloat16 stream the rows the turns reach are narrowed by their float32 product first
    (``narrowed_rows``), so about as few rows are scored exactly as after a float32 stream.

    Cost: O(N*d*C) logits + O(N*C) distances and candidate updates per pass (one pass unless
    classes compete heavily for the same items) + O(b + total candidates) for the turns (+ the
    exact logits of the rows the turns walk, from features); memory O(chunk*C + C^2 + b * slack)
    for the first pass's lists (each later pass's 2 to 8 times the last's, never more than b per
    class: O(C*b) at worst, where every class competes for the same items), plus 13 bytes per pool
    row from features (`_RowSummary`, for a later pass for a few classes).
    """
    pool = pool.stream_keeping(budget, BASE_COARSE_MAX_SHARE)
    num_classes = pool.num_classes
    quotas = class_quotas(budget, num_classes, pool.labeled_class_counts, seed, pool.option("remainder"))
    turns = turn_order(quotas, pool.option("order"))
    geometry = inverse_weight_distances(pool.head_weight)
    keep = np.minimum(turns_needed(turns, num_classes), (1 + BASE_SLACK_FACTOR) * quotas + BASE_SLACK_EXTRA)
    taken = np.zeros(pool.size, dtype=bool)
    picked: list[int] = []
    picked_scores: list[float] = []
    next_turn = 0
    summary = _RowSummary(pool.size) if pool.filters and pool.shard[1] == 1 else None
    while next_turn < turns.shape[0]:
        # after the first pass (which filled the summary), a pass for a few classes only
        if next_turn and summary is not None and (keep > 0).sum() <= NARROW_PASS_MAX_CLASSES * num_classes:
            lists = _few_class_candidates(pool, geometry, keep, taken, summary)
        else:
            lists = _boundary_candidates(pool, geometry, keep, taken if picked else None, summary)
        if isinstance(lists, RefiningLists):
            lists.prefetch(np.bincount(turns[next_turn:], minlength=num_classes))
        first_turn, next_turn = next_turn, _take_turns(lists, turns, next_turn, taken, picked, picked_scores)
        if next_turn < turns.shape[0]:  # a truncated list ran out: longer lists for the turns left
            keep = longer_lists(keep, lists.walked, next_turn - first_turn, turns_needed(turns[next_turn:], num_classes))
    return Selection(indices=np.asarray(picked, dtype=np.int64), scores=np.asarray(picked_scores, dtype=np.float64),
                     classes=turns)


def longer_lists(keep: np.ndarray, walked: np.ndarray, turns_run: int, needed: np.ndarray) -> np.ndarray:
    """``(C,) int64``: each class's list length for the pass after a list ran out.

    ``walked``: how far the turns walked each list in the pass that ran out, over ``turns_run``
    turns; ``needed``: 1 + the position of each class's last turn among the turns left, a length
    that always suffices (`turns_needed`). Each list gets ``LIST_GROWTH_SAFETY`` times the walk
    the turns left would take at the pace of this pass's fastest list, at least twice and at most
    ``LIST_GROWTH_MAX`` times its length, and never more than ``needed``. Where classes compete
    for the same items the walks speed up as the taken items pile up: on the 1.28M benchmark's
    first round (s0 = b = 10,000) the first pass's lists of 394 ran out at turn 2,364, its fastest
    pace extrapolated gives 1,273 items, and the turns left walked up to 2,399: doubling took
    two more passes (788, then 1,576) and 1.5 times the pace (1,909) two more, where this rule
    (3,152: eight times) takes one (select 78 s against 111 s, the same picks). Cost O(C).
    """
    fastest = int(walked.max(initial=0))  # items walked by the fastest list in turns_run turns; in integers, rounded up
    projected = -(-(LIST_GROWTH_SAFETY * fastest * needed.astype(np.int64)) // max(turns_run, 1))
    return np.minimum(needed, np.clip(projected, 2 * keep, LIST_GROWTH_MAX * keep))


def _boundary_candidates(pool: Pool, geometry, keep: np.ndarray, excluded: np.ndarray | None,
                         summary: "_RowSummary | None" = None) -> ExactLists | RefiningLists:
    """Per class c, the ``keep[c]`` unlabeled items (not ``excluded``) nearest its boundary, to be
    walked in (distance, index) order. One pass over the pool; from features, filter and refine
    (`_boundary_entries`, then exact distances as the turns need them), recording each row's
    predicted class in ``summary`` for a later pass (`_few_class_candidates`)."""
    if pool.filters:
        *entries, threshold = _boundary_entries(pool, geometry, keep, excluded, summary)
        parts = pool.all_gather(tuple(entries))
        classes, rows, lower, upper = (np.concatenate([part[i] for part in parts]) for i in range(4))
        # T_c: the keep[c]-th smallest upper end of class c (one process: what the stream's running
        # thresholds hold). Each shard kept its own keep[c] smallest, so the pool's are among the
        # entries; an entry whose lower end is above T_c cannot be among the keep[c] nearest.
        if len(parts) > 1:
            threshold = kth_smallest_per_group(upper, classes, keep)
        candidate = lower <= threshold[classes]
        # after a bfloat16 stream, the rows the turns reach are narrowed by their float32 product first
        return _refining_lists(pool, geometry, classes[candidate], rows[candidate], lower[candidate], keep, narrow=pool.coarse)
    running = RunningSmallestPerClass(keep)

    def score(rows: np.ndarray, logits: np.ndarray):
        if excluded is not None:
            kept = ~excluded[rows]
            rows, logits = rows[kept], logits[kept]
        # Workers score a block and keep what passes the thresholds; this thread merges and compacts.
        return running.candidates(boundary_distances(logits, geometry)[0], rows)

    for found in pool.map_unlabeled_logits(score):
        running.push_candidates(*found)
    shards = pool.all_gather(running.finish())
    if len(shards) == 1:
        return ExactLists(shards[0], keep)
    # Each process kept, per class, its shard's keep[c] nearest; the nearest of their union are the pool's.
    return ExactLists([smallest_k(np.concatenate([shard[c][1] for shard in shards]), np.concatenate([shard[c][0] for shard in shards]),
                                  int(keep[c])) for c in range(keep.shape[0])], keep)


def _float32_intervals(pool: Pool, geometry, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense distance intervals ``(lower, upper)`` ``(B, C) float32`` of pool rows from their float32
    product (``Pool.approximate_rows``), and ``exact`` ``(B,) bool``: the rows whose predicted class
    that product leaves unsettled, which get their exact distances (point intervals). Cost
    O(B*d*C) in float32, plus O(d*C) in float64 per unsettled row."""
    _, logits, bound = pool.approximate_rows(rows)
    lower, upper, unsettled = boundary_distance_bounds(logits, bound, geometry)
    if unsettled.any():  # the exact logits decide: point intervals
        exact = boundary_distances(pool.reference_logits(rows[unsettled]), geometry)[0]
        lower[unsettled], upper[unsettled] = exact, exact
    return lower, upper, unsettled


def _refining_lists(pool: Pool, geometry, classes: np.ndarray, rows: np.ndarray, lower: np.ndarray, keep: np.ndarray,
                    narrow: bool = False) -> RefiningLists:
    """`RefiningLists` of these candidate entries, refined from the rows' exact logits; with
    ``narrow``, narrowed first by the rows' float32 product (`_float32_intervals`)."""
    def narrowed(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower, _, exact = _float32_intervals(pool, geometry, rows)
        return lower, exact

    return RefiningLists(classes, rows, lower, keep, lambda rows: boundary_distances(pool.reference_logits(rows), geometry)[0],
                         narrowed if narrow else None)


def _boundary_entries(pool: Pool, geometry, keep: np.ndarray, excluded: np.ndarray | None, summary: "_RowSummary | None" = None):
    """``(classes, rows, lower, upper, thresholds)``: this process's (row, class) entries that may be
    among their class's ``keep[c]`` nearest, from the fast product (filter and refine), and per
    class the ``keep[c]``-th smallest upper end among them (+inf with fewer entries).

    Every (row, class) gets an interval holding the distance the exact logits give. Rows whose
    predicted class is unsettled get exact distances after the stream, in one product (their
    entries join the thresholds late, which only keeps more entries meanwhile). Per class, the
    running keep[c]-th smallest upper end rules out entries whose lower end is above it; the
    shard's keep[c] smallest upper ends always stay in. Until every class has such a threshold a
    block's intervals are dense (``boundary_distance_bounds``). Dense runs are held until they hold
    ``HELD_ROWS_PER_KEEP`` x max(keep) rows (at most a block's, at least max(keep)): one push of
    them sets every class's threshold at about its ``1 / HELD_ROWS_PER_KEEP`` quantile, where a run
    shorter than keep[c] rows would set none and let every entry through. After that only the
    entries whose lower end passes get an upper end (``boundary_entry_bounds``, the same ends for
    fewer passes).
    With ``summary``, each streamed row's predicted class, largest logit and bound are recorded.
    Cost: the fast pass, O(N*d*C), plus O(N*C) interval work; memory O(chunk*C + entries kept).
    """
    upper_ends = RunningSmallestPerClass(keep)
    kept: list[tuple[np.ndarray, ...]] = []
    buffered, limit = 0, max(1 << 21, 4 * int(keep.sum()))
    wanted = keep > 0
    unsettled_rows: list[np.ndarray] = []  # scored exactly after the stream, in one product
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # dense runs not pushed yet
    most = int(keep.max(initial=0))
    enough = max(most, min(HELD_ROWS_PER_KEEP * most, pool.chunk_size))  # rows held; memory: a block's intervals at most

    def intervals(rows: np.ndarray, logits: np.ndarray, bound: np.ndarray):  # in worker threads
        if excluded is not None:
            still = ~excluded[rows]
            rows, logits, bound = rows[still], logits[still], bound[still]
        thresholds = upper_ends.thresholds  # read only: a looser (older) threshold keeps more entries, nothing else
        predicted = logits.argmax(axis=1)  # once, for the intervals and the summary
        if np.isinf(thresholds[wanted]).any():
            sparse, found = False, boundary_distance_bounds(logits, bound, geometry, predicted)
        else:
            sparse, found = True, boundary_entry_bounds(logits, bound, geometry, float32_ceiling(thresholds), predicted)
        if summary is not None:
            summary.record(rows, predicted, logits[np.arange(rows.shape[0]), predicted], bound, found[-1])
        return rows, sparse, found

    def take_dense(rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> int:
        upper_ends.push(upper, rows)
        flat = np.flatnonzero(lower <= float32_ceiling(upper_ends.thresholds)[None, :])
        positions, classes = np.divmod(flat, lower.shape[1])
        kept.append((classes, rows[positions], lower.reshape(-1)[flat], upper.reshape(-1)[flat]))
        return flat.shape[0]

    def push_held() -> int:
        if not held:
            return 0
        rows, lower, upper = (np.concatenate(part) for part in zip(*held))
        held.clear()
        return take_dense(rows, lower, upper)

    for rows, sparse, found in pool.map_unlabeled_bounds(intervals):
        if not sparse:
            lower, upper, unsettled = found
            if unsettled.any():
                unsettled_rows.append(rows[unsettled])
                rows, lower, upper = rows[~unsettled], lower[~unsettled], upper[~unsettled]
            held.append((rows, lower, upper))
            if sum(part[0].shape[0] for part in held) >= enough:
                buffered += push_held()
        else:
            buffered += push_held()
            positions, classes, lower, upper, unsettled = found
            if unsettled.any():
                unsettled_rows.append(rows[unsettled])
            entry_rows = rows[positions]
            passing = upper <= float32_ceiling(upper_ends.thresholds)[classes]
            upper_ends.push_candidates(classes[passing], upper[passing].astype(np.float64), entry_rows[passing])
            kept.append((classes, entry_rows, lower, upper))
            buffered += classes.shape[0]
        if buffered > limit:  # drop what the thresholds, tighter now, rule out
            kept, buffered = _drop_ruled_out(kept, upper_ends.thresholds)
            limit = max(limit, 2 * buffered)  # wide intervals keep many: compact less often (linear time overall)
    push_held()
    if unsettled_rows:
        rows = np.concatenate(unsettled_rows)
        if pool.coarse:  # the float32 product settles most of them
            for start in range(0, rows.shape[0], pool.chunk_size):
                part = rows[start:start + pool.chunk_size]
                take_dense(part, *_float32_intervals(pool, geometry, part)[:2])
        else:
            exact = boundary_distances(pool.reference_logits(rows), geometry)[0]
            take_dense(rows, exact, exact)
    thresholds = upper_ends.finish_thresholds()
    if not kept:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), thresholds
    return (*(np.concatenate(part) for part in zip(*kept)), thresholds)


def _drop_ruled_out(kept: list[tuple[np.ndarray, ...]], thresholds: np.ndarray) -> tuple[list[tuple[np.ndarray, ...]], int]:
    """``kept`` (parts of entries ``(classes, rows, lower, ...)``) merged into one part, without the
    entries whose lower end is above their class's threshold (they cannot be among its nearest),
    and how many are left."""
    merged = [np.concatenate(part) for part in zip(*kept)]
    passing = merged[2] <= thresholds[merged[0]]
    return [tuple(part[passing] for part in merged)], int(passing.sum())


NARROW_PASS_MAX_CLASSES = 0.05  # share of the classes up to which a later pass multiplies only their columns (`_few_class_candidates`)
FEW_CLASS_BUFFER = 1 << 21  # entries that pass gathers before it drops those its thresholds, tighter by then, rule out


class _RowSummary:
    """What a later pass needs of each row from the first: ``predicted`` (N,) int32 (the fast
    product's argmax), ``top`` (N,) float32 (that logit), ``bound`` (N,) float32 (its filter's
    bound rounded up: every fast logit of the row within it of the reference's) and ``unsettled``
    (N,) bool (where the top two fast logits lie within 2 bound: p may not be the reference's
    argmax). Rows are recorded by the worker threads, each row by one of them. Memory 13 bytes per
    row of the pool."""

    def __init__(self, size: int):
        self.predicted = np.zeros(size, dtype=np.int32)
        self.top = np.zeros(size, dtype=np.float32)
        self.bound = np.full(size, np.inf, dtype=np.float32)
        self.unsettled = np.ones(size, dtype=bool)

    def record(self, rows: np.ndarray, predicted: np.ndarray, top: np.ndarray, bound: np.ndarray, unsettled: np.ndarray) -> None:
        self.predicted[rows], self.top[rows], self.unsettled[rows] = predicted, top, unsettled
        self.bound[rows] = float32_ceiling(bound)


def _few_class_candidates(pool: Pool, geometry, keep: np.ndarray, excluded: np.ndarray, summary: _RowSummary) -> RefiningLists:
    """`_boundary_candidates` for the few classes S with ``keep[c] > 0`` (the lists that ran out),
    without the whole product: the first pass's predicted class p, largest logit z_p and bound e_1
    of each row (``summary``) and a float32 product of the rows with S's columns only (bound e_2)
    give, for a row whose p the first pass settled (the reference's argmax) outside S, its
    distance to class c's boundary within
    [(g - s) / ||w_p - w_c||, (g + s) / ||w_p - w_c||], g = z_p - z_c, s = e_1 + e_2 (each logit
    within its bound of the reference's), evaluated as `boundary_distance_bounds` evaluates its
    ends. A row predicted in S (its own column is its margin, a minimum over every class) and a
    row whose predicted class p the first pass could not settle take the full float32 product
    (`Pool.approximate_rows`) and its intervals; every entry whose lower end is at most its
    class's keep[c]-th smallest upper end stays a candidate.
    Cost: O(N*d*|S|) for the product plus the float16 conversion of the rows, O(N*|S|) intervals,
    and O(d*C) per row predicted in S; instead of O(N*d*C). Memory O(chunk_size * (d + C) + the
    entries kept), as the first pass.
    """
    wanted = np.flatnonzero(keep > 0)
    pool.stats["few_class_passes"] = pool.stats.get("few_class_passes", 0) + 1
    upper_ends = RunningSmallestPerClass(keep, buffer_limit=FEW_CLASS_BUFFER)
    kept: list[tuple[np.ndarray, ...]] = []
    buffered, limit = 0, max(FEW_CLASS_BUFFER, 4 * int(keep.sum()))
    for classes, rows, lower, upper in _few_class_intervals(pool, geometry, wanted, excluded, summary):
        upper_ends.push_candidates(classes, upper.astype(np.float64), rows)
        passing = lower <= float32_ceiling(upper_ends.thresholds)[classes]
        kept.append((classes[passing], rows[passing], lower[passing]))
        buffered += int(passing.sum())
        if buffered > limit:  # drop what the thresholds, tighter now, rule out
            kept, buffered = _drop_ruled_out(kept, upper_ends.thresholds)
            limit = max(limit, 2 * buffered)
    thresholds = upper_ends.finish_thresholds()
    if not kept:
        kept.append((np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)))
    classes, rows, lower = (np.concatenate(part) for part in zip(*kept))
    candidate = lower <= thresholds[classes]
    return _refining_lists(pool, geometry, classes[candidate], rows[candidate], lower[candidate], keep)


def _few_class_intervals(pool: Pool, geometry, wanted: np.ndarray, excluded: np.ndarray, summary: _RowSummary):
    """Yield ``(classes, rows, lower, upper)``: the distance intervals of every unlabeled row not
    ``excluded`` to the boundaries of the classes ``wanted``, a block of rows at a time (see
    `_few_class_candidates`). Memory O(chunk_size * (d + C))."""
    filter32 = pool._logit_filter("float32")
    weight, bias = filter32.weight[wanted], filter32.bias[wanted]
    in_wanted = np.zeros(geometry.inverse.shape[0], dtype=bool)
    in_wanted[wanted] = True
    full_rows: list[np.ndarray] = []
    held = 0

    def entries(rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, ...]:
        return np.tile(wanted, rows.shape[0]), np.repeat(rows, wanted.shape[0]), lower.reshape(-1), upper.reshape(-1)

    def full(rows: np.ndarray) -> tuple[np.ndarray, ...]:
        lower, upper, _ = _float32_intervals(pool, geometry, rows)
        return entries(rows, lower[:, wanted], upper[:, wanted])

    for start in range(0, pool.size, pool.chunk_size):
        stop = min(start + pool.chunk_size, pool.size)
        rows = np.flatnonzero(~(pool.labeled_mask[start:stop] | excluded[start:stop])) + start
        whole = in_wanted[summary.predicted[rows]] | summary.unsettled[rows]
        full_rows.append(rows[whole])
        held += int(whole.sum())
        if held >= pool.chunk_size:  # the rows that take the full product, a block at a time
            yield full(np.concatenate(full_rows))
            full_rows, held = [], 0
        rows = rows[~whole]
        if rows.shape[0] == 0:
            continue
        predicted, top, first_bound = summary.predicted[rows], summary.top[rows], summary.bound[rows].astype(np.float64)
        block = as_float32(pool.features[rows])
        logits = block @ weight.T
        logits += bias
        gaps = top[:, None] - logits
        # how far z_p - z_c may lie from the reference's: e_1 + e_2 (2 bound in _lower_ends)
        slack32 = rounded_slack(first_bound + filter32.bound(block, logits))
        with np.errstate(invalid="ignore"):  # inf * 0 for identical weight rows
            lower = gaps - slack32[:, None]
            lower *= geometry.inverse_low[predicted[:, None], wanted[None, :]]
            np.fmax(lower, 0.0, out=lower)
            upper = gaps + slack32[:, None]
            upper *= geometry.inverse_high[predicted[:, None], wanted[None, :]]
        if geometry.parallel:
            np.nan_to_num(upper, copy=False, nan=np.inf)
        yield entries(rows, lower, upper)
    if held:
        yield full(np.concatenate(full_rows))


def _take_turns(lists, turns, first_turn, taken, picked, picked_scores) -> int:
    """Run ``turns[first_turn:]``: each takes its class's nearest item not taken yet.

    Appends to ``picked``/``picked_scores`` and marks ``taken``; returns the turn whose class's
    truncated list held no untaken item, or ``len(turns)`` when all are done.
    """
    for turn in range(first_turn, turns.shape[0]):
        found = lists.next_untaken(int(turns[turn]), taken)
        if found is None:
            return turn
        row, distance = found
        taken[row] = True
        picked.append(row)
        picked_scores.append(distance)
    return turns.shape[0]
