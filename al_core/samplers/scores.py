"""Score functions: one number per pool item, smaller = more worth labeling.

Every function takes a chunk of logits ``(B, C) float32`` (bias included) and returns ``(B,)
float64`` scores; the selection rule (``ranking.smallest_k``) then takes the smallest. Each costs
O(B*C) time and memory per chunk unless stated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from al_core.linear import UNIT_ROUNDOFF_32, UNIT_ROUNDOFF_64, accumulation_factor

EXP_ERROR = 2.0**-20  # numpy's float32 exp is within a few ulp (2^-23 each): a relative error, i.e. a logit shift
TINY = 1e-30  # absolute slack for float32 exponentials that underflow
ROUNDING_SLACK = 8.0 * 2.0**-53  # a few float64 roundings, relative to the term that cancels in margin's interval ends


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, ``(B, C)``."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def _exponentials(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(z - max_c z) ``(B, C) float32``, its exponentials ``(B, C) float32``, the top class
    ``(B,) int64`` and R ``(B,) float64``, the sum of every other class's exponential: the softmax
    is e / (1 + R). Exponentials in float32 (vectorised, 2.5x faster than float64 here); R is
    summed without the top class's 1, so its float64 error is relative to R itself and scores near
    saturation (R ~ 1e-13) keep their digits."""
    shifted = np.asarray(logits, dtype=np.float32) - np.max(logits, axis=1, keepdims=True).astype(np.float32)
    exponentials = np.exp(shifted)
    top = np.argmax(shifted, axis=1)
    rows = np.arange(shifted.shape[0])
    exponentials[rows, top] = 0.0
    others = exponentials.sum(axis=1, dtype=np.float64)
    exponentials[rows, top] = 1.0  # exp(0)
    return shifted, exponentials, top, others


def confidence_score(logits: np.ndarray) -> np.ndarray:
    """Largest softmax probability, 1 / (1 + R) (least-confidence sampling takes the smallest)."""
    return 1.0 / (1.0 + _exponentials(logits)[3])


def _second_and_others(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z_2 - z_1) ``(B,) float64`` (-inf with one class) and R ``(B,) float64``."""
    shifted, _, top, others = _exponentials(logits)
    shifted[np.arange(shifted.shape[0]), top] = -np.inf  # the top-1: 0 after the shift
    second = shifted.max(axis=1).astype(np.float64) if shifted.shape[1] > 1 else np.full(shifted.shape[0], -np.inf)
    return second, others


def margin_score(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 softmax probability, (1 - exp(z_2 - z_1)) / (1 + R) (margin sampling takes the smallest)."""
    second, others = _second_and_others(logits)
    return -np.expm1(second) / (1.0 + others)


def entropy_score(logits: np.ndarray) -> np.ndarray:
    """Negative softmax entropy, sum_c p_c log p_c = sum_c e_c (z_c - z_1) / S - log S with
    S = 1 + R (entropy sampling takes the largest entropy = smallest score)."""
    shifted, exponentials, _, others = _exponentials(logits)
    np.multiply(exponentials, shifted, out=shifted)  # e_c (z_c - z_1), logits are finite (checked upstream)
    return shifted.sum(axis=1, dtype=np.float64) / (1.0 + others) - np.log1p(others)


# Intervals for the filter: given approximate logits and a bound ``bound[i]`` on how far each of
# row i's logits is from the reference logits (al_core.linear), an interval [lower, upper] that
# holds the score the reference logits get, as computed by the function above. Each score is
# computed in floating point; its evaluation error is modelled as a further shift of every logit
# (the float32 shift z_c - z_1 and the float32 exponential), so both the approximate and the
# reference score are exact scores of logits within ``_logit_slack`` of the approximate ones.


@dataclass(frozen=True)
class IntervalScore:
    """A score function and its interval under perturbed logits.

    exact: ``(B, C) float32`` logits -> ``(B,) float64`` scores.
    bounds: ``(logits (B, C) float32, bound (B,) float64)`` -> ``(lower (B,), upper (B,), unsettled
        (B,) bool or None[, top_two (B, 2) int64, denominator (B,) float64])``; rows marked unsettled
        get no useful interval (the caller scores them exactly at once). A row whose lower end
        equals its upper end has exactly that score. With ``from_top_two``, bounds also returns
        ``top_two`` and ``denominator``: for the rows whose exact score depends on the exact logits
        of two classes only, those classes (top, runner-up; -1 elsewhere) and the score's known
        denominator.
    from_top_two: ``(second (B,) float64, denominator (B,) float64)`` -> the exact ``(B,)`` scores
        of those rows, with second = z_b - z_a (the float32 difference of the two exact logits);
        None when the score has no such rows.
    from_rows: ``(pool, rows (B,) int64)`` -> the exact ``(B,)`` scores of those pool rows from
        features, for a score that needs the exact logits of a few classes only (MASE); None to
        score rows on their exact logits (``exact``).
    coarse_ok: whether intervals from a bfloat16 product's bounds (about 35 times float32's) still
        rule out most rows; False (entropy: its interval grows with e^(2 bound) times the score)
        streams the pool in float32 whatever the pool's precision.
    takes_threshold: whether ``bounds`` accepts a keyword ``threshold`` (a float): then every row
        whose interval's lower end may be <= ``threshold`` gets the interval it gets without one,
        and the other rows an interval that still holds their score and whose lower end is above
        ``threshold`` (cheaper: a caller that drops every row above a threshold it knows gets the
        same rows and intervals).
    """

    exact: Callable[[np.ndarray], np.ndarray]
    bounds: Callable[..., tuple]
    from_top_two: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    from_rows: Callable[[object, np.ndarray], np.ndarray] | None = None
    coarse_ok: bool = True
    takes_threshold: bool = False


def _logit_slack(spread: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """``(B,) float64``: how far (per logit) the logits behind either computed score may lie from
    the given ones: the filter's bound plus twice the evaluation error (float32 rounding of
    z_c - z_1, at most u |z_max - z_min| = u ``spread``, and of the exponential)."""
    return bound + 2.0 * (1.01 * UNIT_ROUNDOFF_32 * spread + EXP_ERROR)


@dataclass(frozen=True)
class _Exponentials:
    """The work behind every softmax interval, in 6 passes over the block: ``shifted`` (z - z_t,
    float32, or None when not asked for), ``ratios`` e^(z_c - z_t) (float32, 0 in the top class's
    column), ``top_class`` t, ``spread`` z_t - min z, ``others`` R = sum of ``ratios`` (summed in
    float32, one vectorised pass, returned as float64: its error is in `_sum_error`) and
    ``runner_up`` r_2, the largest ratio left (float32 exponentials: their error is in ``_logit_slack``)."""

    shifted: np.ndarray | None
    top_class: np.ndarray
    ratios: np.ndarray
    spread: np.ndarray
    others: np.ndarray
    runner_up: np.ndarray


def _interval_exponentials(logits: np.ndarray, keep_shifted: bool = False) -> _Exponentials:
    logits = np.asarray(logits, dtype=np.float32)
    rows = np.arange(logits.shape[0])
    top_class = logits.argmax(axis=1)
    top = logits[rows, top_class]
    spread = top.astype(np.float64) - logits.min(axis=1)
    shifted = logits - top[:, None]
    ratios = np.exp(shifted, out=None if keep_shifted else shifted)
    ratios[rows, top_class] = 0.0
    runner_up = ratios.max(axis=1).astype(np.float64) if logits.shape[1] > 1 else np.zeros(logits.shape[0])
    return _Exponentials(shifted=shifted if keep_shifted else None, top_class=top_class, ratios=ratios, spread=spread,
                         others=np.einsum("ij->i", ratios).astype(np.float64), runner_up=runner_up)


def _sum_error(classes: int) -> tuple[float, float]:
    """``(relative, absolute)``: how far a float32 sum of ``classes`` non-negative float32 terms
    (any order, as `_interval_exponentials` sums R) may lie from their exact sum: gamma_C
    relative (Higham, Eq. 3.4), plus 2^-149 per addition where partial sums are subnormal."""
    return 1.01 * accumulation_factor(classes, UNIT_ROUNDOFF_32), classes * 2.0**-149


def _widen(lower: np.ndarray, upper: np.ndarray, relative=1e-15) -> tuple[np.ndarray, np.ndarray]:
    """Move the ends out by ``relative`` (scalar or per row: the float64 evaluation error of the
    score, and of the interval arithmetic) plus TINY; infinite ends stay as they are."""
    relative = np.asarray(relative, dtype=np.float64) + 1e-15
    with np.errstate(invalid="ignore"):
        return (np.where(np.isinf(lower), lower, lower - (np.abs(lower) * relative + TINY)),
                np.where(np.isinf(upper), upper, upper + (np.abs(upper) * relative + TINY)))


@dataclass(frozen=True)
class _SoftmaxBox:
    """What the softmax of any logits within ``slack`` of the given ones can be, relative to the
    given logits' top class t. Every ratio r_c = e^(z_c - z_t) moves by a factor within
    f = e^(2 slack), so the mass of the other classes R = S - 1 = sum_(c != t) r_c lies in
    [R / f, R f] (widened by the float64 summation error of R, relative to R), and:
    p_t in [top_low, top_high] = [1 / (1 + R_high), 1 / (1 + R_low)],
    every other p_c <= other_high = r_2 f / (1 + R_low) (r_2: the largest other ratio), and the
    second largest probability >= other_low = r_2 / f / (1 + R_high).
    When the top class holds nearly all the mass (R small) the box is tight whatever the slack."""

    factor: np.ndarray
    others: np.ndarray
    others_low: np.ndarray
    others_high: np.ndarray
    top_low: np.ndarray
    top_high: np.ndarray
    other_low: np.ndarray
    other_high: np.ndarray
    runner_up: np.ndarray
    top_class: np.ndarray


def _softmax_box(logits: np.ndarray, bound: np.ndarray, work: _Exponentials | None = None) -> _SoftmaxBox:
    work = _interval_exponentials(logits) if work is None else work
    factor = np.exp(2.0 * _logit_slack(work.spread, bound))
    relative, absolute = _sum_error(logits.shape[1])
    # R's float32 sum here, then the reference's float64 one (C terms, any order)
    summation = relative + 2.0 * logits.shape[1] * UNIT_ROUNDOFF_64 * (1.0 + relative)
    others = work.others
    others_low = np.maximum((others - absolute) / factor * (1.0 - summation), 0.0)
    others_high = (others + absolute) * factor * (1.0 + summation)
    runner_up = work.runner_up
    return _SoftmaxBox(factor=factor, others=others, others_low=others_low, others_high=others_high,
                       top_low=1.0 / (1.0 + others_high), top_high=1.0 / (1.0 + others_low),
                       other_low=runner_up / factor / (1.0 + others_high), other_high=runner_up * factor / (1.0 + others_low),
                       runner_up=runner_up, top_class=work.top_class)


def _saturated(logits: np.ndarray, bound: np.ndarray, box: _SoftmaxBox):
    """``(rows, denominator, block, first, runner)``: the rows whose reference score has a known
    denominator 1 + R (1.0 + R rounds to one float64 ``denominator`` over all of R's interval,
    which covers the reference's float64 sum: so for nearly saturated rows) and whose top class is
    the reference's too (the runner-up logit more than 2 bound below it); their logits with the
    top class's set to -inf, the top class and the runner-up class. O(B*C) on those rows."""
    known = (1.0 + box.others_low) == (1.0 + box.others_high)
    rows = np.flatnonzero(known) if logits.shape[1] > 1 else np.empty(0, dtype=np.int64)
    block = np.asarray(logits[rows], dtype=np.float32)
    first = box.top_class[rows]
    top = block[np.arange(rows.shape[0]), first].astype(np.float64)
    block[np.arange(rows.shape[0]), first] = -np.inf
    runner = block.argmax(axis=1)
    gap = (top - block[np.arange(rows.shape[0]), runner]) * (1.0 - 2.0**-40)
    settled = gap > 2.0 * bound[rows] * (1.0 + 2.0**-20)
    rows = rows[settled]
    return rows, 1.0 + box.others_low[rows], block[settled], first[settled], runner[settled]


def confidence_bounds(logits: np.ndarray, bound: np.ndarray):
    """The largest probability lies in [p_t low, max(p_t high, any other's high)] (see _SoftmaxBox);
    a point where the denominator is known (`_saturated`): 1.0 / (1.0 + R) as the reference computes it."""
    box = _softmax_box(logits, bound)
    lower, upper = _widen(box.top_low, np.maximum(box.top_high, box.other_high), _evaluation_error(logits, box))
    rows, denominator = _saturated(logits, bound, box)[:2]
    lower[rows] = upper[rows] = 1.0 / denominator
    return lower, upper, None


def margin_bounds(logits: np.ndarray, bound: np.ndarray):
    """p_(1) - p_(2) = (1 - e^(-G)) / S, with G = z_(1) - z_(2) the gap between the two largest
    logits and S = 1 / p_(1). Each order statistic z_(k) moves by at most the slack e when every
    logit does (whichever classes they are), so e^(-G) lies in [r_2 / f, r_2 f] (f = e^(2e), r_2
    = e^(z_(2) - z_t) from the given logits), and S in [1 / max(p_t high, others' high), 1 + R high]
    (see `_SoftmaxBox`): the margin lies in [(1 - r_2 f) / (1 + R high), (1 - r_2 / f) max(p_t high,
    others' high)], the first clipped at 0. Both ends move together with the gap, so near a uniform
    softmax (r_2 near 1) the interval is about f^2 times narrower than one from the two
    probabilities' own boxes. Plus the float64 rounding of these ends: a few units of 2^-53 of
    r_2 f (what cancels in 1 - r_2 f), and relative to the ends (`_evaluation_error`).

    Where the denominator is known (`_saturated`) and one class alone can be the reference's
    runner-up (every other logit more than 2 bound below it), the exact score is
    -expm1(z_2 - z_1) / (1.0 + R) with the exact logits of those two classes: returned as
    ``top_two`` (their classes) and ``denominator`` (NaN elsewhere)."""
    box = _softmax_box(logits, bound)
    largest = np.maximum(box.top_high, box.other_high)
    # 1 - r_2 f cancels where r_2 f is near 1: the rounding of r_2 f (and of r_2 / f) is absolute, at most
    # u r_2 f, so the ends move out by a few times that over the denominator; the rest is relative (_widen).
    rounding = ROUNDING_SLACK * box.runner_up * box.factor * largest
    lower = np.maximum((1.0 - box.runner_up * box.factor) / (1.0 + box.others_high) - rounding, 0.0)
    upper = (1.0 - box.runner_up / box.factor) * largest + rounding
    lower, upper = _widen(lower, upper, _evaluation_error(logits, box))
    top_two = np.full((logits.shape[0], 2), -1, dtype=np.int64)
    denominators = np.full(logits.shape[0], np.nan)
    rows, denominator, block, first, runner = _saturated(logits, bound, box)
    if rows.shape[0]:
        second = block[np.arange(rows.shape[0]), runner].astype(np.float64)
        reach = second - 2.0 * bound[rows] * (1.0 + 2.0**-20) - 2.0**-50 * np.abs(second) - 1e-300
        alone = (block >= reach[:, None]).sum(axis=1) == 1  # no third class within 2 bound of the runner-up
        top_two[rows[alone], 0] = first[alone]
        top_two[rows[alone], 1] = runner[alone]
        denominators[rows[alone]] = denominator[alone]
        _settle_saturated_margins(rows, second - logits[rows, first], bound, denominator, lower, upper)
    return lower, upper, None, top_two, denominators


def _settle_saturated_margins(rows: np.ndarray, difference: np.ndarray, bound: np.ndarray, denominator: np.ndarray,
                              lower: np.ndarray, upper: np.ndarray) -> None:
    """Point intervals, in place, for the rows (top class settled, denominator known) whose margin
    is one value whatever the exact logits: the reference's z_2 - z_1 (the largest float32
    difference of an exact logit and the top one's, each within ``bound`` of the given ones;
    ``difference`` is the given runner-up's minus the top's) lies in [low, high], and where
    -expm1(low) / denominator == -expm1(high) / denominator every value between gives that score
    too (numpy's expm1 is non-decreasing, checked by tests/samplers/test_score_intervals.py; the
    division is correctly rounded). Near saturation (z_2 - z_1 below about -38) the score is
    1 / denominator whatever the exact logits: no exact logit is needed. O(rows)."""
    slack = 2.0 * bound[rows] * (1.0 + 2.0**-20)
    low = (difference - slack) * (1.0 + 2.0**-22)  # the float32 rounding of the difference, outward
    high = (difference + slack) * (1.0 - 2.0**-22)
    known = high < 0.0
    value_low = -np.expm1(low) / denominator
    known &= value_low == -np.expm1(high) / denominator
    lower[rows[known]] = upper[rows[known]] = value_low[known]


def margin_from_top_two(second: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """The margin score from z_2 - z_1 and the known 1.0 + R, as `margin_score` computes it."""
    return -np.expm1(second) / denominator


def entropy_bounds(logits: np.ndarray, bound: np.ndarray, threshold: float = np.inf):
    """With log q_c = log p_c + t_c: H(q) - H(p) = sum (p_c - q_c) log p_c - sum q_c t_c. Here
    |t_t| <= a = |log(S' / S)| (the top class's ratio is 1 on both sides) and |t_c| <= 2e + a
    otherwise, so |H(q) - H(p)| <= a + 2e (1 - q_t) + (e^(2e + a) - 1) H(p): tight when the top
    class holds nearly all the mass. Plus the float32 rounding of each e_c (z_c - z_t) term,
    u sum p_c |z_c - z_t| on either side (on the reference's side at most f^2 (that sum + 2e (1 - q_t))).
    The first part takes the smaller of this bound and `_entropy_gradient_bound`'s, computed only
    for the rows whose interval from the first bound reaches down to ``threshold`` (see
    ``IntervalScore.takes_threshold``; the others keep that wider interval, above ``threshold``)."""
    work = _interval_exponentials(logits, keep_shifted=True)
    others = work.others
    # sum_c e_c (z_c - z_t) in one float32 pass (terms of one sign: within gamma_C of the exact sum); the top class's term is 0 * 0
    first = np.einsum("ij,ij->i", work.ratios, work.shifted).astype(np.float64) / (1.0 + others)  # sum_c p_c (z_c - z_t) <= 0
    score = first - np.log1p(others)
    box = _softmax_box(logits, bound, work)
    slack = np.log(box.factor) / 2.0
    relative, absolute = _sum_error(logits.shape[1])
    other_mass = box.others_high / (1.0 + box.others_high)
    # a is measured from the computed S = 1 + R; the exact one is within relative R / (1 + R) + absolute of it (in log)
    log_ratio = np.maximum(np.log1p(box.others_high) - np.log1p(box.others), np.log1p(box.others) - np.log1p(box.others_low))
    log_ratio += 1.01 * relative * other_mass + absolute
    moved = log_ratio + 2.0 * slack * other_mass + np.expm1(2.0 * slack + log_ratio) * np.maximum(-score, 0.0)
    rounding = 1.01 * UNIT_ROUNDOFF_32 * (np.abs(first) + (np.abs(first) + 2.0 * slack * other_mass) * box.factor**2)
    rounding += 4.0 * logits.shape[1] * UNIT_ROUNDOFF_64 * (np.abs(first) + box.others_high)  # the reference's float64 sums, log1p
    # This side's float32 sums, F = sum e_c (z_c - z_t) and R, each within ``relative`` of its own (plus the
    # subnormal slack): the score F / (1 + R) - log(1 + R) moves by at most relative (|first| + (|first| + 1) R / (1 + R)).
    rounding += 1.01 * (relative * (2.0 * np.abs(first) + other_mass) + 2.0 * absolute * (1.0 + np.abs(first)))
    # The second bound only narrows an interval, so a row whose wider one lies above ``threshold`` goes
    # without it. When every row is near, a slice: the block is read in place, not gathered.
    near = np.flatnonzero(_widen(score - (moved + rounding), score)[0] <= threshold)
    near = slice(None) if near.shape[0] == logits.shape[0] else near
    moved[near] = np.minimum(moved[near], _entropy_gradient_bound(work, near, first[near], slack[near], moved[near] + rounding[near]))
    width = moved + rounding
    return (*_widen(score - width, score + width), None)


def _entropy_gradient_bound(work: _Exponentials, rows: np.ndarray, first: np.ndarray, slack: np.ndarray,
                            reach: np.ndarray) -> np.ndarray:
    """A second bound on |H(z_b) - H(z_a)| for logits z_a, z_b within ``slack`` (e) of the given g,
    for ``rows`` of ``work`` (positions, or ``slice(None)`` for all; ``first``, ``slack`` and
    ``reach`` are those rows'), tight for diffuse rows (where e^(2e) - 1 times H is not): along the
    segment between them,
    dH = -sum_c p_c (log p_c + H) dz_c, and log p_c + H = s_c - E_p[s] (s_c = z_c - z_top), so
    |H(z_b) - H(z_a)| <= |z_b - z_a| max D <= 2e max D, D = E_p|s - E_p[s]| (the mean absolute
    deviation of the logits under the softmax). At a point xi of the segment (within e of g) each
    p_c is within e^(+-2e) of its value at g and s_c - E[s] moves by at most 2e + 2 ``reach`` (each
    entropy within ``reach`` of the computed one: the first bound plus the rounding), so
    D(xi) <= e^(2e) (D(g) + 2e + 2 reach). D(g) is computed here in float32 from the block (one more
    subtraction and one product-sum), raised by 2^-10 relative and absolute: far above that sum's
    error (within gamma_C relative, plus about 2^-20 (1 + spread) from the rounded s_c). O(rows*C)."""
    deviation = work.shifted[rows] - first.astype(np.float32)[:, None]
    np.abs(deviation, out=deviation)
    spread_error = 2.0**-20 * (1.0 + work.spread[rows])
    # the top class (ratio 1, s = 0) is 0 in ``ratios``: its term |0 - E[s]| is added apart
    mean_deviation = (np.einsum("ij,ij->i", work.ratios[rows], deviation).astype(np.float64) + np.abs(first)) / (1.0 + work.others[rows])
    bound_at_g = mean_deviation * (1.0 + 2.0**-10) + 2.0**-10 + spread_error
    return 2.0 * slack * np.exp(2.0 * slack) * (bound_at_g + 2.0 * slack + 2.0 * reach) * (1.0 + 2.0**-20)


def _evaluation_error(logits: np.ndarray, box: _SoftmaxBox) -> np.ndarray:
    """Relative float64 error of a computed confidence or margin, (1 - e^(z_2 - z_1)) / (1 + R):
    a few roundings (8 u64) plus R's summation error as a share of 1 + R."""
    return 8.0 * UNIT_ROUNDOFF_64 + 4.0 * logits.shape[1] * UNIT_ROUNDOFF_64 * box.others_high / (1.0 + box.others_low)


CONFIDENCE = IntervalScore(confidence_score, confidence_bounds)
MARGIN = IntervalScore(margin_score, margin_bounds, margin_from_top_two)
ENTROPY = IntervalScore(entropy_score, entropy_bounds, coarse_ok=False, takes_threshold=True)


@dataclass(frozen=True)
class BoundaryGeometry:
    """What `boundary_distances` needs of the head: ``inverse`` ``(C, C) float32``, 1 / ||w_p - w_c||
    off the diagonal (+inf where two rows are identical: no boundary) and 0 on it; ``parallel``
    is True when some off-diagonal entry is +inf; ``largest_inverse`` ``(C,)`` is each row's maximum."""

    inverse: np.ndarray
    parallel: bool
    largest_inverse: np.ndarray  # (C,) float32: per class p, the largest 1 / ||w_p - w_c|| over c != p
    inverse_low: np.ndarray   # inverse * (1 - 2^-20): the intervals' ends move out by this much
    inverse_high: np.ndarray  # inverse * (1 + 2^-20)


def inverse_weight_distances(head_weight: np.ndarray) -> BoundaryGeometry:
    """The (C, C) inverse distances between the head's weight rows, computed in float64.

    Cost O(C^2 * d) time, O(C^2) memory; done once per selection, not per chunk.
    """
    weight = head_weight.astype(np.float64)
    gram = weight @ weight.T
    squared_norms = np.diag(gram)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * gram
    np.maximum(squared, 0.0, out=squared)
    np.fill_diagonal(squared, np.inf)
    with np.errstate(divide="ignore", over="ignore"):
        inverse = (1.0 / np.sqrt(squared)).astype(np.float32)
    np.fill_diagonal(inverse, 0.0)
    return BoundaryGeometry(inverse=inverse, parallel=bool(np.isinf(inverse).any()), largest_inverse=inverse.max(axis=1),
                            inverse_low=(inverse * (1.0 - 2.0**-20)).astype(np.float32),
                            inverse_high=(inverse * (1.0 + 2.0**-20)).astype(np.float32))


def boundary_distances(logits: np.ndarray, geometry: BoundaryGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Feature-space distances to the linear head's decision boundaries (paper Eq. 2 and 3).

    For item i with predicted class p and any class c != p, the distance to the boundary between
    p and c is ``(z_p - z_c) / ||w_p - w_c||`` (z = logits including bias; z_p is the largest,
    so no absolute value is needed). In column p the matrix holds the item's smallest such
    distance, its MASE margin (Eq. 2), which is also its BASE distance to its own class's
    boundary (Eq. 3). Two classes with identical weights have no boundary: that distance is +inf.

    Computed in float32 (relative error ~1e-7 against float64; 3.7x faster, half the memory
    traffic). geometry: from `inverse_weight_distances`.
    Returns ``(distances (B, C) float32, predicted (B,) int64)``. Cost O(B*C), four passes.
    """
    logits = np.asarray(logits, dtype=np.float32)
    predicted = logits.argmax(axis=1)
    rows = np.arange(logits.shape[0])
    distances = np.take(geometry.inverse, predicted, axis=0)
    with np.errstate(invalid="ignore"):
        distances *= logits[rows, predicted][:, None] - logits
    if geometry.parallel:
        # 0 * inf: an item exactly on the "boundary" of two identical classes; there is none.
        np.nan_to_num(distances, copy=False, nan=np.inf)
    distances[rows, predicted] = np.inf
    distances[rows, predicted] = distances.min(axis=1)
    return distances, predicted


def boundary_distance_bounds(logits: np.ndarray, bound: np.ndarray, geometry: BoundaryGeometry, predicted: np.ndarray | None = None):
    """Intervals ``(lower (B, C) float32, upper (B, C) float32, unsettled (B,) bool)`` around the
    `boundary_distances` of the reference logits, each within ``bound[i]`` of ``logits``.

    Where the top two logits are more than 2 bound apart the predicted class p is the reference's
    too, and the gap g = z_p - z_c moves by at most 2 bound: the distance to class c's boundary
    lies in [(g - 2 bound) / ||w_p - w_c||, (g + 2 bound) / ||w_p - w_c||] (never below 0), and
    column p (the minimum over c != p) between the columns' minima. Evaluated in float32 with
    the slack rounded up and the ends moved out by 2^-20 relative (``inverse_low/high``), which
    covers the float32 rounding of the gap and the product on both sides (a few units of 2^-24).
    Other rows are marked unsettled (their predicted class may differ). ``predicted``: the logits'
    argmax when the caller has it (one pass fewer). Cost O(B*C) in about 10 float32 passes.
    """
    rows, predicted, gaps, slack32, unsettled, lower = _lower_ends(logits, bound, geometry, predicted)
    with np.errstate(invalid="ignore"):  # inf * 0 in column p (replaced below) and for identical weight rows
        upper = gaps + slack32[:, None]
        upper *= np.take(geometry.inverse_high, predicted, axis=0)
    if geometry.parallel:
        np.nan_to_num(upper, copy=False, nan=np.inf)
    upper[rows, predicted] = np.inf
    upper[rows, predicted] = upper.min(axis=1, initial=np.inf)
    return lower, upper, unsettled


def rounded_slack(slack: np.ndarray) -> np.ndarray:
    """``(B,) float32``: how far a gap z_p - z_c may move (``slack``, float64), raised by 2^-19
    relative and rounded up, never down: with the ends moved out by 2^-20 relative
    (``inverse_low/high``) it covers the float32 rounding of the gap and of the product."""
    return np.nextafter((slack * (1.0 + 2.0**-19)).astype(np.float32), np.float32(np.inf))


def _lower_ends(logits: np.ndarray, bound: np.ndarray, geometry: BoundaryGeometry, predicted: np.ndarray | None = None):
    """What `boundary_distance_bounds` and `boundary_entry_bounds` share: ``(rows,
    predicted, gaps (B, C) z_p - z_c with +inf in column p, slack32 (B,) 2 bound rounded up,
    unsettled (B,), lower (B, C) float32 with column p the row's minimum)``; ``predicted``, when
    given, is the logits' argmax."""
    logits = np.asarray(logits, dtype=np.float32)
    rows = np.arange(logits.shape[0])
    predicted = logits.argmax(axis=1) if predicted is None else predicted
    gaps = logits[rows, predicted][:, None] - logits
    gaps[rows, predicted] = np.inf
    unsettled = gaps.min(axis=1, initial=np.inf) * (1.0 - 2.0**-20) <= 2.0 * bound * (1.0 + 2.0**-20)
    slack32 = rounded_slack(2.0 * bound)
    with np.errstate(invalid="ignore"):  # inf * 0 in column p (replaced below) and for identical weight rows
        lower = gaps - slack32[:, None]
        lower *= np.take(geometry.inverse_low, predicted, axis=0)
        np.fmax(lower, 0.0, out=lower)  # distances are >= 0; fmax also turns NaN into 0
    lower[rows, predicted] = np.inf
    lower[rows, predicted] = lower.min(axis=1, initial=np.inf)
    return rows, predicted, gaps, slack32, unsettled, lower


def boundary_entry_bounds(logits: np.ndarray, bound: np.ndarray, geometry: BoundaryGeometry, thresholds: np.ndarray,
                          predicted: np.ndarray | None = None):
    """The entries of `boundary_distance_bounds` that can pass per-class thresholds, without
    the whole upper matrix: ``(positions (m,), classes (m,) int64, lower (m,), upper (m,) float32,
    unsettled (B,) bool)`` for every (row, class) of a settled row whose lower end is <=
    ``thresholds[class]`` (``(C,) float32``), each end bit for bit what the dense function gives.
    Rows marked unsettled are left out (the caller scores them exactly).

    An entry whose lower end is above its class's threshold has its upper end above it too, so the
    upper ends are computed only for the entries kept (and, for a row's own column, whose upper
    end is the minimum over the row, for those rows). ``predicted``: the logits' argmax when the
    caller has it. Cost O(B*C) in about 7 float32 passes (the
    dense function takes about 12), plus O(m) and O(C) per row with a kept own column.
    """
    _, predicted, gaps, slack32, unsettled, lower = _lower_ends(logits, bound, geometry, predicted)
    lower[unsettled] = np.nan  # passes no threshold, +inf included
    flat = np.flatnonzero(lower <= thresholds[None, :])
    positions, classes = np.divmod(flat, lower.shape[1])
    entry_lower = lower.reshape(-1)[flat]
    entry_predicted = predicted[positions]
    upper = np.empty(flat.shape[0], dtype=np.float32)
    other = classes != entry_predicted
    at, to, by = positions[other], classes[other], entry_predicted[other]
    with np.errstate(invalid="ignore"):
        upper[other] = (gaps[at, to] + slack32[at]) * geometry.inverse_high[by, to]
        own = np.unique(positions[~other])
        if own.shape[0]:
            ends = gaps[own] + slack32[own][:, None]
            ends *= np.take(geometry.inverse_high, predicted[own], axis=0)
            if geometry.parallel:
                np.nan_to_num(ends, copy=False, nan=np.inf)
            ends[np.arange(own.shape[0]), predicted[own]] = np.inf
            upper[~other] = ends.min(axis=1, initial=np.inf)[np.searchsorted(own, positions[~other])]
    if geometry.parallel:
        np.nan_to_num(upper, copy=False, nan=np.inf)
    return positions, classes, entry_lower, upper, unsettled


def nearest_boundary_bounds(logits: np.ndarray, bound: np.ndarray, geometry: BoundaryGeometry):
    """Intervals ``(lower (B,), upper (B,) float64, unsettled (B,) bool)`` around the MASE score
    (column p of `boundary_distances`) of the reference logits, each within ``bound[i]``.

    Every distance (z_p - z_c) / ||w_p - w_c|| moves by at most w = 2 bound max_c 1 / ||w_p - w_c||,
    and so does their minimum; the float32 evaluation moves it by 2^-20 relative at most. A row
    whose lower end reaches 0 may have another predicted class (its top two logits may be within
    2 bound): unsettled. Cost: `boundary_distances` plus O(B).
    """
    distances, predicted = boundary_distances(logits, geometry)
    score = distances[np.arange(len(predicted)), predicted].astype(np.float64)
    width = 2.0 * bound * geometry.largest_inverse[predicted].astype(np.float64) * (1.0 + 2.0**-19)
    with np.errstate(invalid="ignore"):  # inf - inf: no boundary at all, and twins (unsettled anyway)
        lower = score * (1.0 - 2.0**-20) - width
        upper = score * (1.0 + 2.0**-20) + width
    unsettled = ~(lower > 0.0)
    return np.where(unsettled, 0.0, lower), np.where(np.isnan(upper), np.inf, upper), unsettled
