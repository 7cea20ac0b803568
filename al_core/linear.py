"""The linear head's arithmetic, in one place: logits = features @ weight.T + bias.

Every consumer (the samplers' streaming, test metrics, the full-data probe's predictions, the
export's predicted classes) calls `linear_logits` on a block of rows, so a change to how
the product is computed (precision, threads) changes all of them together.
"""

from __future__ import annotations

import contextlib
import ctypes
import math

import numpy as np

DEFAULT_CHUNK_ROWS = 65536
TORCH_CONVERSION_VALUES = 1 << 22  # float16 arrays this large convert in torch's kernel (smaller: numpy's cast, no torch import)


def as_float32(array, out: np.ndarray | None = None) -> np.ndarray:
    """``array`` as float32 (itself when it is float32 already, as ``np.asarray`` gives it).

    ``out``: a C-contiguous float32 array of ``array``'s shape to convert into when a conversion is
    needed (a stream reuses a few such buffers: writing into fresh memory costs a page fault per
    4 KiB, which made the conversion several times slower beside the product).

    float16, how the pipeline stores features, converts in torch's vectorised kernel on its
    threads, several times faster than numpy's cast (``python -m benchmarks.conversion``,
    ``benchmarks/results/conversion.json``). Exact either way: every float16 is a float32
    (tests/test_exact_logits.py compares all 65,536 bit patterns). Arrays under
    ``TORCH_CONVERSION_VALUES`` values and other dtypes use numpy's cast, so a small pool never
    waits for torch's import (about 1.4 s, once per process)."""
    return _converted(array, np.float32, out)


class Float32Blocks:
    """Blocks of at most ``rows`` rows as float32, converted into two buffers used in turn: each call
    returns the block itself when it is float32 already, else its converted copy in the buffer the
    call before last used (made on first use). A caller streaming blocks must be done with a
    returned block, and with anything that refers to it, two calls later. Fresh memory for every
    block (64 MiB for 8,192 x 2,048) is mapped anew and faulted in page by page: several times the
    conversion's own time beside a product's threads."""

    def __init__(self, rows: int, columns: int):
        self.shape = (rows, columns)
        self.buffers: list[np.ndarray | None] = [None, None]
        self.turn = 0  # blocks converted so far

    def __call__(self, block) -> np.ndarray:
        block = np.asarray(block)
        if block.dtype == np.float32:
            return block
        which = self.turn % 2
        if self.buffers[which] is None:
            self.buffers[which] = np.empty(self.shape, dtype=np.float32)
        self.turn += 1
        return as_float32(block, self.buffers[which][:block.shape[0]])


def _converted(array, dtype, out: np.ndarray | None = None) -> np.ndarray:
    """``array`` as ``dtype`` (float32 or float64), into ``out`` when given (see `as_float32`);
    large native float16 arrays through torch."""
    array = np.asarray(array)
    if array.dtype == dtype:
        return array
    if out is not None and (out.shape != array.shape or out.dtype != dtype or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype).name} array of shape {array.shape}, got {out.dtype} {out.shape}")
    if array.dtype != np.float16 or array.size < TORCH_CONVERSION_VALUES:
        if out is None:
            return array.astype(dtype)
        np.copyto(out, array)
        return out
    import torch

    source = np.ascontiguousarray(array)
    out = np.empty(source.shape, dtype=dtype) if out is None else out
    torch.from_numpy(out).copy_(torch.from_numpy(_writable_alias(source)))
    return out


def _writable_alias(array: np.ndarray) -> np.ndarray:
    """``array`` (C-contiguous) itself when writable, else an alias of its memory flagged writable,
    for ``torch.from_numpy`` (which warns on read-only memory, such as a memory-mapped feature
    file), to be read only: the caller keeps ``array`` alive and nothing writes through it."""
    if array.flags.writeable:
        return array
    memory = (ctypes.c_char * array.nbytes).from_address(array.ctypes.data)
    return np.frombuffer(memory, dtype=array.dtype).reshape(array.shape)


def linear_logits(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``(B, C) float32`` logits of a block of rows.

    features: ``(B, d)`` any float dtype (converted to float32); weight: ``(C, d) float32``;
    bias: ``(C,) float32``. Cost O(B * d * C) time, O(B * C) memory (plus a float32 copy of the
    block when it is not float32 already).
    """
    logits = as_float32(features) @ weight.T
    logits += bias
    return logits


def chunked_logits(features: np.ndarray, weight: np.ndarray, bias: np.ndarray, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """``(N, C) float32`` logits of every row, read ``chunk_rows`` at a time (features may be
    memory-mapped). Cost O(N * d * C) time, O(N * C + chunk_rows * d) memory."""
    out = np.empty((features.shape[0], weight.shape[0]), dtype=np.float32)
    for start in range(0, features.shape[0], chunk_rows):
        out[start:start + chunk_rows] = linear_logits(features[start:start + chunk_rows], weight, bias)
    return out


# Exact logits and cheap bounds on how far a fast product is from them ("filter and refine").
#
# A BLAS float32 product gives a row last bits that depend on the block's row count and the row's
# position in it (measured: OpenBLAS, any row count, d >= 64), so "the float32 logits" of an item
# are not a function of the item. The reference below is: the float32 nearest to the exact real
# x.w + b. It is the same whatever the chunking, the number of processes or the host, so a
# sampler can score most rows with a fast product plus a rigorous error bound and compute the
# reference only for the rows the bounds cannot settle.

UNIT_ROUNDOFF_32 = 2.0**-24
UNIT_ROUNDOFF_64 = 2.0**-53
BFLOAT16_UNIT_ROUNDOFF = 2.0**-8
SAFETY = 1.0 + 2.0**-20  # covers the float64 rounding of the bound arithmetic itself


def accumulation_factor(terms: int, unit_roundoff: float) -> float:
    """gamma_n = n u / (1 - n u): |computed sum of n products - exact| <= gamma_n * sum |x_k w_k|
    for any summation order, with or without fused multiply-add (Higham, Accuracy and Stability
    of Numerical Algorithms, Eq. 3.4)."""
    return terms * unit_roundoff / (1.0 - terms * unit_roundoff)


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """``(B,) float64`` Euclidean norms of the rows, rounded up (never below the true norm).

    Summed in the array's own precision (float32 stays float32: a fifth of the time of a float64
    copy) and raised by that sum's worst-case relative error gamma_d, then by SAFETY."""
    matrix = np.asarray(matrix)
    if matrix.dtype not in (np.float32, np.float64):
        matrix = matrix.astype(np.float32)
    unit = UNIT_ROUNDOFF_32 if matrix.dtype == np.float32 else UNIT_ROUNDOFF_64
    squares = _row_dots(matrix).astype(np.float64)
    return np.sqrt(squares * (1.0 + 2.0 * accumulation_factor(matrix.shape[1] + 2, unit))) * SAFETY


def _row_dots(matrix: np.ndarray) -> np.ndarray:
    """Each row's dot product with itself, in the array's precision (any summation order: the
    bound in `row_norms` holds for all). numpy's ``vecdot`` (2.0 and later) where there is one:
    it takes about 0.6x of einsum's time on a (8192, 2048) float32 block."""
    vecdot = getattr(np, "vecdot", None)
    return vecdot(matrix, matrix) if vecdot is not None else np.einsum("ij,ij->i", matrix, matrix)


def reference_logits(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``(B, C) float32``: each logit the float32 nearest (ties to even) to the exact x.w + b, with
    x the row converted to float32. See `ExactLogits` (which keeps the head's float64 copy
    across calls)."""
    return ExactLogits(weight, bias)(features)


class ExactLogits:
    """The exact logits of rows under one head: ``ExactLogits(weight, bias)(features)``.

    Each logit is the float32 nearest (ties to even) to the exact x.w + b, with x the row
    converted to float32: a function of the row alone, unlike a BLAS float32 product. Computed as
    a float64 product (each product x_k w_k of float32 values is exact in float64), certified
    element by element, and where the certificate's interval rounds to one float32 that float32
    is the answer; the rest go to `exact_float32_dots` (vectorised error-free sums, then
    ``math.fsum`` for what even they leave). With `EXACT_K_BLOCK` = K set, the product is cut along
    d into m = ceil(d / K) slices: one BLAS product per slice (any summation order: each slice's
    sum within gamma_K of its exact value), the m slices and the bias then added in a fixed order
    (within gamma_m of theirs), so the float64 value lies within gamma_(K+m) (||x|| ||w_c|| +
    |b_c|) of the exact x.w + b (Higham, Lemma 3.3 and Eq. 3.4), not gamma_(d+1): at d = 2048 and
    K = 512 about 4x fewer elements go to the error-free sums, for three more additions of the
    (B, C) partials. Off by default (one product): on the realistic benchmark pool, where few
    elements are undecided, the additions cost more than they save (``python -m
    benchmarks.exact_logits``). Cost per call: O(B*d*C) in float64 (the
    float64 product, 2-3x the float32 one, plus a few passes over the (B, C) result), O(B*C)
    memory; the head's float64 copy and norms are made once, here. Rows cost about the same in
    any batch above a few dozen; below that, reading the float64 head dominates.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight32 = np.ascontiguousarray(weight, dtype=np.float32)
        self.weight = self.weight32.astype(np.float64)
        self.weight_t = np.ascontiguousarray(self.weight.T)
        self.bias = np.asarray(bias, dtype=np.float32).astype(np.float64)
        self.weight_norms = row_norms(self.weight)
        d = self.weight.shape[1]
        self.slice = d if EXACT_K_BLOCK is None else max(1, min(EXACT_K_BLOCK, d))
        # gamma_(K+m): each slice's product (K terms, any order) plus the fixed-order sum of the m
        # slices and the bias (m additions); gamma_(d+1) for one dot product (`entries`).
        self.factor = accumulation_factor(self.slice + -(-d // self.slice), UNIT_ROUNDOFF_64) * SAFETY
        self.dot_factor = accumulation_factor(d + 1, UNIT_ROUNDOFF_64) * SAFETY
        self.scaled_norms = self.weight_norms * self.factor
        self.scaled_bias = np.abs(self.bias) * self.factor
        # A row's screen in _undecided_elements: its bound with the largest of each over the classes.
        self.largest_scaled_norm = float(self.scaled_norms.max(initial=0.0))
        self.largest_scaled_bias = float(self.scaled_bias.max(initial=0.0))
        # |values| <= ||x|| max||w_c|| + max|b_c| (+ the bound): the scale of the float64 rounding of values -/+ bound.
        self.largest_norm = float(self.weight_norms.max(initial=0.0)) * (1.0 + 2.0**-20)
        self.largest_bias = float(np.abs(self.bias).max(initial=0.0))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x, values, norms = self._float64_product(features)
        result = values.astype(np.float32)
        rows, columns = self._undecided_elements(values, norms)
        if rows.shape[0]:
            result[rows, columns] = self._exact_dots(x, rows, columns, norms)
        return result

    def _exact_dots(self, x: np.ndarray, rows: np.ndarray, columns: np.ndarray, norms: np.ndarray) -> np.ndarray:
        """`exact_float32_dots` of rows ``rows`` of ``x`` (norms ``norms``, one per row of ``x``) and
        classes ``columns``, with ||x|| ||w_c|| as the bound on sum|x_j w_j| (no pass to measure it)."""
        return exact_float32_dots(x, rows, self.weight, columns, self.bias, scale=norms[rows] * self.weight_norms[columns])

    def _undecided_elements(self, values: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, columns)`` of the elements of ``values`` (B, C) the float64 product leaves
        undecided under their own bound (as `float64_values` gives it), found without making the
        (B, C) bound: each row is first screened, a few rows at a time while they are in cache,
        with its largest bound over the classes (never below any of them: the float64 operations
        are monotone, so an element settled under it is settled under its own); the elements it
        flags are checked again with their own bound. O(B*C) in a few passes over cached slices."""
        largest = norms * self.largest_scaled_norm + self.largest_scaled_bias + self._rounding_slack(norms)
        found_rows, found_columns = [], []
        for start in range(0, values.shape[0], SCREEN_ROWS):
            part = values[start:start + SCREEN_ROWS]
            reach = largest[start:start + SCREEN_ROWS, None]
            rows, columns = np.nonzero((part - reach).astype(np.float32) != (part + reach).astype(np.float32))
            found_rows.append(rows + start)
            found_columns.append(columns)
        rows, columns = np.concatenate(found_rows), np.concatenate(found_columns)
        kept = undecided(values[rows, columns], self._element_bounds(norms[rows], columns))
        return rows[kept], columns[kept]

    def _float64_product(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (B, d), values (B, C), norms (B,))``: the rows in float64, their float64 product with
        the head plus the bias, and the rows' norms (rounded up)."""
        x = _float64_rows(features)
        step = self.slice
        if step >= x.shape[1]:
            values = x @ self.weight_t
        else:  # slices of d, added in order, a few rows at a time
            values = np.empty((x.shape[0], self.weight_t.shape[1]))
            part = np.empty((min(PRODUCT_ROWS, x.shape[0]), values.shape[1]))
            for start in range(0, x.shape[0], PRODUCT_ROWS):
                rows = slice(start, start + PRODUCT_ROWS)
                out, scratch = values[rows], part[: values[rows].shape[0]]
                np.matmul(x[rows, :step], self.weight_t[:step], out=out)
                for k in range(step, x.shape[1], step):
                    np.matmul(x[rows, k:k + step], self.weight_t[k:k + step], out=scratch)
                    out += scratch
        values += self.bias
        return x, values, row_norms(x)

    def _element_bounds(self, norms: np.ndarray, columns: np.ndarray, factor: float | None = None) -> np.ndarray:
        """Per element, how far the float64 value of the row with norm ``norms[k]`` and class
        ``columns[k]`` may lie from the exact x.w + b, its rounding slack included (the
        certificate's bound; `float64_values` makes the same sums for every element). ``factor``:
        the accumulation factor of the product behind the value (default: the sliced product's)."""
        if factor is None:
            return norms * self.scaled_norms[columns] + self.scaled_bias[columns] + self._rounding_slack(norms)
        return (norms * self.weight_norms[columns] + np.abs(self.bias[columns])) * factor + self._rounding_slack(norms)

    def float64_values(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (B, d), values (B, C), bound (B, C))`` in float64: the rows, their float64 product
        with the head plus the bias, and how far each value may lie from the exact x.w + b (the
        certificate `__call__` checks: an element is settled where values -/+ bound round to one
        float32)."""
        x, values, norms = self._float64_product(features)
        bound = np.multiply.outer(norms, self.scaled_norms)
        bound += self.scaled_bias
        bound += self._rounding_slack(norms)[:, None]
        return x, values, bound

    def entries(self, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """``(B,) float32``: the exact logit of class ``classes[i]`` for row i (as ``__call__`` gives it
        in that column), from one float64 dot product per row. Cost O(B*d) (about 8 us per entry at
        d = 2048, against about 40 us per row for all of a 1000-class head in `__call__`)."""
        x = np.asarray(features, dtype=np.float32)
        classes = np.asarray(classes, dtype=np.int64)
        # float32 operands, float64 products and sums: each product exact, half the memory traffic
        values = np.einsum("ij,ij->i", x, self.weight32[classes], dtype=np.float64)
        values += self.bias[classes]
        norms = row_norms(x)
        return self._certified(x, values, self._element_bounds(norms, classes, self.dot_factor), classes, norms)

    def _rounding_slack(self, norms: np.ndarray) -> np.ndarray:
        """Per row, the float64 rounding of values -/+ bound in `_certified`: at most
        2^-53 (|values| + bound) each, with |values| <= ||x|| max||w|| + max|b| + bound."""
        return 2.0**-51 * (norms * self.largest_norm + self.largest_bias) + 2.0**-1000

    def _certified(self, x: np.ndarray, values: np.ndarray, bound: np.ndarray, classes: np.ndarray, norms: np.ndarray) -> np.ndarray:
        """``values`` (float64, (B,), class ``classes[i]`` of row i) as float32 where the interval
        values -/+ ``bound`` (gamma_(d+1) (||x|| ||w_c|| + |b_c|) plus the rounding slack) rounds to
        one float32; the other elements from `exact_float32_dots`. ``norms``: the rows' norms."""
        result = values.astype(np.float32)
        where = np.flatnonzero(undecided(values, bound))
        if where.shape[0]:
            result[where] = self._exact_dots(x, where, classes[where], norms)
        return result


SCREEN_ROWS = 64  # rows of (B, C) float64 logits screened together by ExactLogits (512 KB at C = 1000)
EXACT_K_BLOCK: int | None = None  # columns of d per float64 product in ExactLogits (None: one product); its bound is then gamma_(K + d/K), not gamma_(d+1) (``python -m benchmarks.exact_logits``)
PRODUCT_ROWS = 1024  # rows per sliced float64 product there


def _float64_rows(features: np.ndarray) -> np.ndarray:
    """The rows as float32 values held in float64 (float16 and float32 convert exactly in one
    step; anything else is rounded to float32 first)."""
    features = np.asarray(features)
    if features.dtype not in (np.float16, np.float32):
        features = features.astype(np.float32)
    return _converted(features, np.float64)


def undecided(values: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Where the float64 ``values`` do not settle their float32: values - bound and values + bound
    round to two different float32 (`ExactLogits`' certificate; the rest need error-free sums)."""
    return (values - bound).astype(np.float32) != (values + bound).astype(np.float32)


FALLBACK_BLOCK = 512  # elements settled together by exact_float32_dots: (block, d) float64 products (8 MB at d = 2048; 2048 took twice as long)
SUM_BLOCK = 32  # terms per partial sum there: each partial is within gamma_32 of its exact value


def exact_float32_dots(x: np.ndarray, rows: np.ndarray, weight: np.ndarray, columns: np.ndarray, bias: np.ndarray,
                       scale: np.ndarray | None = None) -> np.ndarray:
    """``(m,) float32``: for each element, the float32 nearest (ties to even) to the exact
    x[rows[k]].weight[columns[k]] + bias[columns[k]] (float32 values held as float64).

    For the elements the float64 product could not settle (its bound put a float32 midpoint within
    reach), vectorised: each product x_j w_j is exact in float64; they are summed in partial sums
    of `SUM_BLOCK` terms (one pass, in any order: each within gamma_SUM_BLOCK of its exact value),
    and the partials by a pairwise tree of error-free additions (TwoSum: the tree's sum plus its
    additions' errors is the partials' sum exactly). The bound drops to about gamma_SUM_BLOCK of
    sum|x_j w_j|, so where the exact value now lies strictly between the two float32 midpoints
    around the candidate, the candidate is the answer; the rest (true midpoints among them) are
    summed exactly one by one (``math.fsum``), about SUM_BLOCK / d of the elements `ExactLogits`
    sends here. ``scale``:
    ``(m,)`` upper bounds on sum|x_j w_j| (e.g. ||x|| ||w||, rounded up), computed here when None.
    Cost O(m d).
    """
    out = np.empty(rows.shape[0], dtype=np.float32)
    d = x.shape[1]
    padded = -(-d // SUM_BLOCK) * SUM_BLOCK
    for start in range(0, rows.shape[0], FALLBACK_BLOCK):
        part = slice(start, start + FALLBACK_BLOCK)
        r, c = rows[part], columns[part]
        left, right = x[r], weight[c]
        if padded != d:
            left, right = (np.pad(side, ((0, 0), (0, padded - d))) for side in (left, right))
        # the bound's scale: sum|x_j w_j| (or the caller's upper bound on it) plus |b|
        magnitude = (np.abs(left * right).sum(axis=1) if scale is None else scale[part]) + np.abs(bias[c])
        # the partial sums in one pass, no (m, d) products kept: any order within a partial is within gamma_SUM_BLOCK
        partials = np.einsum("ijk,ijk->ij", left.reshape(r.shape[0], -1, SUM_BLOCK), right.reshape(r.shape[0], -1, SUM_BLOCK))
        terms = np.concatenate([partials, bias[c][:, None]], axis=1)
        errors = []
        while terms.shape[1] > 1:
            if terms.shape[1] % 2:
                terms = np.concatenate([terms, np.zeros((terms.shape[0], 1))], axis=1)
            a, b = terms[:, 0::2], terms[:, 1::2]
            total = a + b
            back = total - a
            errors.append((a - (total - back)) + (b - back))  # TwoSum: a + b = total + error, exactly
            terms = total
        high = terms[:, 0]
        low = np.concatenate(errors, axis=1).sum(axis=1) if errors else np.zeros_like(high)
        # the partials' own error, then the float64 sum of the tree's errors (each level's at most u of its sum)
        bound = (accumulation_factor(SUM_BLOCK, UNIT_ROUNDOFF_64)
                 + accumulation_factor(padded // SUM_BLOCK + 2, UNIT_ROUNDOFF_64) * UNIT_ROUNDOFF_64 * (len(errors) + 1) * 1.01)
        bound = bound * magnitude * SAFETY + 2.0**-1000
        with np.errstate(over="ignore", invalid="ignore"):
            candidate = (high + low).astype(np.float32)
            above = np.nextafter(candidate, np.float32(np.inf)).astype(np.float64)
            below = np.nextafter(candidate, np.float32(-np.inf)).astype(np.float64)
            certified = np.isfinite(candidate) & np.isfinite(above) & np.isfinite(below)
            for middle, side in (((candidate + above) / 2.0, -1.0), ((candidate + below) / 2.0, 1.0)):
                # high - middle is exact (Sterbenz) when they share a sign and lie within a factor 2.
                sterbenz = (high * middle > 0) & (np.abs(high) <= 2.0 * np.abs(middle)) & (np.abs(middle) <= 2.0 * np.abs(high))
                gap = (high - middle) + low
                certified &= sterbenz & (side * gap - 2.0**-52 * np.abs(gap) - bound > 0)
        result = out[part]
        result[:] = candidate
        for k in np.flatnonzero(~certified):
            result[k] = _exact_float32_dot(x[r[k]], weight[c[k]], float(bias[c[k]]))
    return out


def _exact_float32_dot(x: np.ndarray, w: np.ndarray, b: float) -> np.float32:
    """float32 nearest to the exact x.w + b (x, w hold float32 values as float64: products exact)."""
    terms = [*(x * w).tolist(), float(b)]
    nearest64 = math.fsum(terms)  # the float64 nearest to the exact sum
    rounded = np.float32(nearest64)
    if float(rounded) == nearest64 or not np.isfinite(rounded):
        return rounded
    neighbour = np.nextafter(rounded, np.float32(np.inf) if nearest64 > float(rounded) else np.float32(-np.inf))
    if nearest64 != (float(rounded) + float(neighbour)) / 2:
        return rounded  # not a float32 midpoint: rounding the float64 once more is exact
    # nearest64 is a midpoint between two float32; which side the exact sum lies on decides.
    side = math.fsum([*terms, -nearest64])
    if side == 0.0:
        return rounded  # a true tie: numpy's conversion already rounded it to even
    return max(rounded, neighbour) if side > 0 else min(rounded, neighbour)


class _LogitFilter:
    """What the filters share: ``approximate(block)``, their ``product`` then their ``bound``."""

    def approximate(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(logits, bound)`` of a block: ``product`` then ``bound``."""
        block = np.asarray(block, dtype=np.float32)
        logits = self.product(block)
        return logits, self.bound(block, logits)


class Float32Filter(_LogitFilter):
    """Fast logits for the filter: a float32 product, with per-row error bounds.

    ``product(block)`` returns the ``(B, C) float32`` logits, ``bound(block, logits)`` the
    ``(B,) float64`` bounds with ``|logits[i, c] - reference_logits[i, c]| <= bound[i]`` for every
    class: gamma_d ||x_i|| max_c ||w_c|| for the product, plus the float32 rounding of adding the
    bias and of the reference itself. ``bound`` works on any slice of rows (callers split a block
    between threads), and is NaN or inf where a row's logits are. The product is numpy's BLAS
    (``device`` None) or torch's on ``device`` ("cuda", "cuda:1", or "cpu" for the same path on
    the CPU) with IEEE float32 arithmetic forced (no TF32): gamma_d holds for any summation order,
    so the bound is the same. Cost: the product plus O(B*d) for the norms and O(B*C) for the rows'
    largest logits.
    """

    name = "float32"

    def __init__(self, weight: np.ndarray, bias: np.ndarray, device: str | None = None):
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.largest_weight_norm = float(row_norms(self.weight).max(initial=0.0))
        self.factor = accumulation_factor(self.weight.shape[1], UNIT_ROUNDOFF_32) * SAFETY
        self.device = device
        if device is not None:
            self.torch = TorchProduct(self.weight, device, "float32")

    def product(self, block: np.ndarray) -> np.ndarray:
        if self.device is None:
            return linear_logits(block, self.weight, self.bias)
        logits = self.torch(block)
        logits += self.bias
        return logits

    def bound(self, block: np.ndarray, logits: np.ndarray) -> np.ndarray:
        bound = self.factor * row_norms(block) * self.largest_weight_norm
        bound += 2.01 * UNIT_ROUNDOFF_32 * largest_magnitudes(logits)
        return bound


class TorchProduct:
    """``block @ weight.T`` with torch on ``device``, in ``dtype`` ("float32" or "bfloat16") with
    float32 accumulation: the head stays on the device, each block goes there and its ``(B, C)
    float32`` product comes back. Reduced-precision modes that would break the filters' bounds
    (TF32 for float32, reduced-precision reductions for bfloat16) are switched off around the
    product and restored after it (on the GPU and in oneDNN on the CPU)."""

    def __init__(self, weight: np.ndarray, device: str, dtype: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
        self.weight_t = torch.from_numpy(_writable_float32(weight)).to(self.device).to(self.dtype).T

    def __call__(self, block: np.ndarray) -> np.ndarray:
        torch = self.torch
        with _full_precision_products(torch):
            rows = torch.from_numpy(_writable_float32(block)).to(self.device).to(self.dtype)
            return (rows @ self.weight_t).to(torch.float32).cpu().numpy()


def _writable_float32(array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous, writable float32 array, copied only when it is not one already
    (torch warns on read-only memory, such as a float32 feature file's memory map)."""
    if array.dtype == np.float32 and array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, dtype=np.float32, order="C", copy=True)


@contextlib.contextmanager
def _full_precision_products(torch):
    """torch's matrix products in IEEE float32 (no TF32, no bfloat16 inside float32 products) and
    bfloat16 ones with float32 reductions, on the GPU and in oneDNN; the settings are restored after.
    torch 2.9 and later name them ``fp32_precision``; earlier ones ``allow_tf32``."""
    cuda = torch.backends.cuda.matmul
    settings = [(cuda, "fp32_precision", "ieee") if hasattr(cuda, "fp32_precision") else (cuda, "allow_tf32", False),
                (cuda, "allow_bf16_reduced_precision_reduction", False)]
    onednn = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if onednn is not None and hasattr(onednn, "fp32_precision"):
        settings.append((onednn, "fp32_precision", "ieee"))
    saved = [getattr(owner, name) for owner, name, _ in settings]
    try:
        for owner, name, value in settings:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(settings, saved):
            setattr(owner, name, value)


def largest_magnitudes(matrix: np.ndarray) -> np.ndarray:
    """``(B,) float64``: max_c |matrix[i, c]| from the rows' maxima and minima (no (B, C) temporary);
    NaN where a row holds NaN."""
    if matrix.shape[1] == 0:
        return np.zeros(matrix.shape[0])
    return np.maximum(matrix.max(axis=1).astype(np.float64), -matrix.min(axis=1).astype(np.float64))


class BFloat16Filter(_LogitFilter):
    """Fast logits from a bfloat16 product (torch; AMX or AVX512-BF16 on CPUs that have them, or
    on ``device``, e.g. "cuda").

    Features and weights are rounded to bfloat16 (x' = x + dx, w' = w + dw, dx and dw exact in
    float32), multiplied with float32 accumulation, and the product comes back rounded to
    bfloat16. Bound per row: ||dx|| max||w|| + ||x'|| max||dw|| (Cauchy-Schwarz on the rounding
    residuals; ||dx|| <= 2^-8 ||x||, up to a subnormal term, and ||x'|| <= ||x|| + ||dx||, so no
    pass over the block beyond its norms) + gamma_d ||x'|| max||w'|| (accumulation) + 2^-8 |product| (the bfloat16 output)
    + the float32 roundings of the bias and the reference. It assumes torch accumulates bfloat16
    products in float32, as its CPU kernels (oneDNN and the fallback) do, and as cuBLAS does with
    reduced-precision reductions off (`TorchProduct` turns them off).
    """

    name = "bfloat16"

    def __init__(self, weight: np.ndarray, bias: np.ndarray, device: str | None = None):
        import torch  # only this filter needs torch

        self.bias = np.asarray(bias, dtype=np.float32)
        weight32 = _writable_float32(weight)
        self.product_on_device = TorchProduct(weight32, device or "cpu", "bfloat16")
        rounded = torch.from_numpy(weight32).to(torch.bfloat16).to(torch.float32).numpy()
        self.largest_weight_norm = float(row_norms(weight32).max(initial=0.0))
        self.largest_rounded_norm = float(row_norms(rounded).max(initial=0.0))
        self.largest_residual_norm = float(row_norms(rounded - weight32).max(initial=0.0))
        self.largest_bias = float(np.abs(self.bias).max(initial=0.0))
        self.factor = accumulation_factor(weight.shape[1], UNIT_ROUNDOFF_32) * SAFETY

    def product(self, block: np.ndarray) -> np.ndarray:
        logits = self.product_on_device(block)
        logits += self.bias
        return logits

    def bound(self, block: np.ndarray, logits: np.ndarray) -> np.ndarray:
        norms = row_norms(block)
        # Rounding to nearest bfloat16 moves each value by at most 2^-8 of itself, or 2^-134 below
        # float32's normal range (half of bfloat16's subnormal spacing): ||dx|| <= u ||x|| + 2^-134 sqrt(d).
        residual = BFLOAT16_UNIT_ROUNDOFF * norms + 2.0**-134 * math.sqrt(block.shape[1])
        bound = residual * self.largest_weight_norm
        bound += (norms + residual) * (self.largest_residual_norm + self.factor * self.largest_rounded_norm)
        # |product| <= (|logits| + |bias|) (1 + u32): the logits are the product plus the bias, rounded.
        largest = largest_magnitudes(logits)
        bound += BFLOAT16_UNIT_ROUNDOFF * SAFETY * (largest + self.largest_bias) * (1.0 + 2.0 * UNIT_ROUNDOFF_32)
        bound += 2.01 * UNIT_ROUNDOFF_32 * largest
        return bound * SAFETY


LOGIT_FILTERS = {"float32": Float32Filter, "bfloat16": BFloat16Filter}


def feature_statistics(features: np.ndarray, chunk_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std ``(d,) float64`` in one chunked pass (O(N*d), O(chunk*d) memory)."""
    total = np.zeros(features.shape[1], dtype=np.float64)
    total_squares = np.zeros(features.shape[1], dtype=np.float64)
    for start in range(0, features.shape[0], chunk_size):
        block = np.asarray(features[start:start + chunk_size], dtype=np.float64)
        total += block.sum(axis=0)
        total_squares += np.square(block).sum(axis=0)
    mean = total / features.shape[0]
    std = np.sqrt(np.maximum(total_squares / features.shape[0] - mean**2, 0.0))
    return mean, np.maximum(std, 1e-6)
