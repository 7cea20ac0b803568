"""The exact logits (the float32 nearest to x.w + b) and the fast products' error bounds."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from al_core.linear import LOGIT_FILTERS, ExactLogits, reference_logits, row_norms, undecided


def nearest_float32(value: Fraction) -> np.float32:
    """The float32 nearest to an exact rational (ties to the even significand), by brute force."""
    guess = np.float32(float(value))
    candidates = [guess, np.nextafter(guess, np.float32(np.inf)), np.nextafter(guess, np.float32(-np.inf))]
    return min(candidates, key=lambda c: (abs(Fraction(float(c)) - value), int(c.view(np.uint32)) & 1))


def exact_logit(x, w, b) -> Fraction:
    return sum((Fraction(float(xk)) * Fraction(float(wk)) for xk, wk in zip(x, w)), Fraction(float(b)))


def test_reference_logits_are_the_nearest_float32_to_the_exact_value():
    rng = np.random.default_rng(0)
    features = (rng.standard_normal((40, 96)) * rng.uniform(0.01, 100, size=(40, 1))).astype(np.float16)
    weight = (rng.standard_normal((12, 96)) / 10).astype(np.float32)
    bias = rng.standard_normal(12).astype(np.float32)
    logits = reference_logits(features, weight, bias)
    assert logits.dtype == np.float32
    for i in range(0, 40, 3):
        for c in range(12):
            assert logits[i, c] == nearest_float32(exact_logit(features[i].astype(np.float32), weight[c], bias[c])), (i, c)


@pytest.mark.parametrize("tail, expected", [
    (2.0**-60, 1 + 2.0**-23),   # just above the float32 midpoint 1 + 2^-24: rounding to float64 first would give the midpoint, then 1
    (-2.0**-60, 1.0),           # just below it
    (0.0, 1.0),                 # on it: ties to even
])
def test_sums_next_to_a_float32_midpoint_round_once(tail, expected):
    features = np.array([[1.0, 2.0**-24, tail]], dtype=np.float32)
    weight = np.ones((1, 3), dtype=np.float32)
    assert reference_logits(features, weight, np.zeros(1, dtype=np.float32))[0, 0] == np.float32(expected)


def test_the_screen_by_each_rows_largest_bound_leaves_exactly_the_elements_their_own_bound_leaves():
    """ExactLogits screens each row with its largest bound over the classes, then re-checks what that
    flags with each element's own bound: the elements left must be those the (B, C) bound leaves, and
    every logit still the nearest float32. Class 7's weight is 1,000x the others' (its bound flags
    whole rows); class 6 sees only features that are zero (its logits are 0, never settled by the
    float64 product); 150 rows span three screened slices."""
    rng = np.random.default_rng(3)
    features = rng.standard_normal((150, 96)).astype(np.float16)
    features[:, 48:] = 0
    weight = (rng.standard_normal((12, 96)) / 10).astype(np.float32)
    weight[6, :48], weight[6, 48:] = 0, 1
    weight[7] *= 1000
    bias = rng.standard_normal(12).astype(np.float32)
    bias[6] = 0
    exact = ExactLogits(weight, bias)
    x, values, bound = exact.float64_values(features)
    screened = exact._undecided_elements(values, row_norms(x))
    flagged_by_the_largest = int(((values - bound.max(axis=1, keepdims=True)).astype(np.float32)
                                  != (values + bound.max(axis=1, keepdims=True)).astype(np.float32)).sum())
    expected = np.nonzero(undecided(values, bound))
    assert flagged_by_the_largest > expected[0].shape[0] >= 150  # the re-check has work, class 6 in every row
    assert np.array_equal(np.lexsort(screened[::-1]), np.arange(screened[0].shape[0]))  # row-major, as np.nonzero
    assert np.array_equal(screened[0], expected[0]) and np.array_equal(screened[1], expected[1])
    logits = exact(features)
    assert np.all(logits[:, 6] == 0)
    for i in range(0, 150, 7):
        for c in range(12):
            assert logits[i, c] == nearest_float32(exact_logit(features[i].astype(np.float32), weight[c], bias[c])), (i, c)


@pytest.mark.parametrize("slice_columns", [16, 40, 96])
def test_the_sliced_float64_product_certifies_the_nearest_float32(monkeypatch, slice_columns):
    """ExactLogits cuts d into slices (`EXACT_K_BLOCK`) and certifies with gamma_(K + d/K): every
    logit is still the float32 nearest to the exact x.w + b, on rows built to cancel and rows whose
    logits sit next to a float32 midpoint (d = 96: six slices of 16, three of 40 with a short last
    one, one product); slicing leaves no more undecided elements than one product."""
    from al_core import linear

    rng = np.random.default_rng(11)
    d = 96
    features = (rng.standard_normal((60, d)) * rng.uniform(0.01, 100, size=(60, 1))).astype(np.float32)
    weight = (rng.standard_normal((9, d)) / 10).astype(np.float32)
    bias = rng.standard_normal(9).astype(np.float32)
    features[:20] = np.abs(features[:20])  # class 8 alternates signs: x.w cancels
    weight[8] = (np.where(np.arange(d) % 2 == 0, 1.0, -1.0) * np.abs(weight[8])).astype(np.float32)
    features[40:43] = 0.0
    features[40:43, :3] = np.array([[1.0, 2.0**-24, 2.0**-60], [1.0, 2.0**-24, -2.0**-60], [1.0, 2.0**-24, 0.0]], dtype=np.float32)
    weight[0, :3], bias[0] = 1.0, 0.0
    whole = ExactLogits(weight, bias)
    _, values, norms = whole._float64_product(features)
    undecided_whole = whole._undecided_elements(values, norms)[0].shape[0]
    monkeypatch.setattr(linear, "EXACT_K_BLOCK", slice_columns)
    exact = ExactLogits(weight, bias)
    assert exact.slice == min(slice_columns, d)
    _, values, norms = exact._float64_product(features)
    assert exact._undecided_elements(values, norms)[0].shape[0] <= undecided_whole
    logits = exact(features)
    for i in range(60):
        for c in range(9):
            assert logits[i, c] == nearest_float32(exact_logit(features[i], weight[c], bias[c])), (i, c)


def test_a_row_gets_the_same_logits_alone_or_in_any_block():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((300, 256)).astype(np.float32)
    weight = rng.standard_normal((50, 256)).astype(np.float32) / 16
    bias = rng.standard_normal(50).astype(np.float32)
    whole = reference_logits(features, weight, bias)
    for rows in (np.arange(1), np.arange(7, 8), np.arange(100, 229), rng.permutation(300)[:77]):
        assert np.array_equal(reference_logits(features[rows], weight, bias), whole[rows])


DEVICES = [None, "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here"))]


@pytest.mark.parametrize("precision", sorted(LOGIT_FILTERS))
@pytest.mark.parametrize("scale", [0.01, 1.0, 300.0])
@pytest.mark.parametrize("device", DEVICES)
def test_the_fast_products_stay_within_their_bounds(precision, scale, device):
    """Both products, on numpy's BLAS (None) or through torch on a device ("cpu": the GPU's code path)."""
    rng = np.random.default_rng(2)
    features = (rng.standard_normal((500, 384)) * scale + rng.uniform(-3, 3, size=384) * scale).astype(np.float32)
    weight = (rng.standard_normal((40, 384)) * rng.uniform(0.01, 1, size=(40, 1))).astype(np.float32)
    bias = (rng.standard_normal(40) * scale).astype(np.float32)
    logits, bound = LOGIT_FILTERS[precision](weight, bias, device=device).approximate(features)
    error = np.abs(logits.astype(np.float64) - reference_logits(features, weight, bias)).max(axis=1)
    assert logits.shape == (500, 40) and bound.shape == (500,)
    assert (error <= bound).all()
    assert error.max() > 0  # the fast product is not exact, so the bound is doing work
    if precision == "float32":
        assert np.median(bound / np.abs(logits).max(axis=1)) < 1e-3  # tight enough to rule most rows out


@pytest.mark.parametrize("block", [7, 512])
def test_the_vectorised_exact_sums_round_like_exact_arithmetic(monkeypatch, block):
    """Elements the float64 product cannot settle (large cancellation, sums next to a float32
    midpoint) are settled by error-free sums, and only true midpoints go to math.fsum; in blocks
    of any size (7: many blocks and a short last one)."""
    from al_core import linear

    monkeypatch.setattr(linear, "FALLBACK_BLOCK", block)

    rng = np.random.default_rng(3)
    d = 64
    x = rng.standard_normal((60, d)).astype(np.float32)
    weight = rng.standard_normal((5, d)).astype(np.float32)
    # Cancellation: the last weight row makes x.w tiny against ||x|| ||w||.
    x[:20, -1] = np.float32(0.0)
    weight[4, -1] = np.float32(0.0)
    x[:20, :-1] = np.abs(x[:20, :-1])
    weight[4, :-1] = (np.where(np.arange(d - 1) % 2 == 0, 1.0, -1.0) * np.abs(weight[4, :-1])).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    # Next to a midpoint: 1 + 2^-24 (the midpoint between 1 and its successor) +/- a tiny tail, and exactly on it.
    x[40:43, :3] = np.array([[1.0, 2.0**-24, 2.0**-60], [1.0, 2.0**-24, -2.0**-60], [1.0, 2.0**-24, 0.0]], dtype=np.float32)
    x[40:43, 3:] = 0.0
    weight[0, :3], bias[0] = 1.0, 0.0
    calls = []
    original = linear._exact_float32_dot
    monkeypatch.setattr(linear, "_exact_float32_dot", lambda *args: calls.append(1) or original(*args))
    rows, columns = np.divmod(np.arange(60 * 5), 5)
    got = linear.exact_float32_dots(x.astype(np.float64), rows, weight.astype(np.float64), columns, bias.astype(np.float64))
    for k, (i, c) in enumerate(zip(rows, columns)):
        assert got[k] == nearest_float32(exact_logit(x[i], weight[c], bias[c])), (i, c)
    assert len(calls) <= 3  # at most the constructed midpoint cases go one by one


def test_torch_products_read_a_read_only_memory_map_without_a_warning(tmp_path):
    """A float32 feature file's memory map is read-only: the torch products copy such a block
    instead of handing torch read-only memory (which warns). In a fresh process, since torch
    warns only once per process."""
    path = tmp_path / "features.npy"
    np.save(path, np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32))
    code = (
        "import numpy as np\n"
        "from al_core.linear import BFloat16Filter, Float32Filter\n"
        f"features = np.load({str(path)!r}, mmap_mode='r')\n"
        "weight = np.ones((3, 16), dtype=np.float32)\n"
        "for make in (BFloat16Filter, Float32Filter):\n"
        "    make(weight, np.zeros(3, dtype=np.float32), device='cpu').approximate(features[:40])\n"
    )
    runs_without_a_warning(code)


def runs_without_a_warning(code: str) -> None:
    """Run ``code`` in a fresh Python process (torch warns once per process) with every warning an error."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_float16_converts_exactly_through_torch():
    """as_float32 (and the float64 rows of the exact logits) send large float16 arrays through
    torch's conversion: every one of the 65,536 float16 bit patterns (subnormals, infinities, NaN)
    must come out as numpy's cast gives it."""
    from al_core import linear

    patterns = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    patterns = np.tile(patterns, (-(-linear.TORCH_CONVERSION_VALUES // patterns.size), 1))
    assert patterns.size >= linear.TORCH_CONVERSION_VALUES  # the torch path, not numpy's cast
    for dtype, convert in ((np.float32, linear.as_float32), (np.float64, linear._float64_rows)):
        got, want = convert(patterns), patterns.astype(dtype)
        assert got.dtype == dtype and got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(want))  # -0.0 stays -0.0
    strided = np.tile(patterns, (1, 2))[:, ::2]  # not contiguous: converted from a contiguous copy
    assert np.array_equal(linear.as_float32(strided), strided.astype(np.float32), equal_nan=True)


def test_a_float16_memory_map_converts_without_a_warning_and_unchanged(tmp_path):
    """The pipeline's features are a read-only float16 memory map: the conversion reads it through
    torch without torch's warning about read-only memory (fresh process: torch warns once), and the
    file is unchanged."""
    from al_core.linear import TORCH_CONVERSION_VALUES

    path = tmp_path / "features.npy"
    rows = TORCH_CONVERSION_VALUES // 256 + 20
    values = np.random.default_rng(0).standard_normal((rows, 256)).astype(np.float16)
    np.save(path, values)
    before = path.read_bytes()
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from al_core.linear import as_float32\n"
        f"features = np.load({str(path)!r}, mmap_mode='r')\n"
        "out = as_float32(features[10:])\n"
        "assert 'torch' in sys.modules  # the torch path ran\n"
        "assert np.array_equal(out, np.asarray(features[10:]).astype(np.float32))\n"
    )
    runs_without_a_warning(code)
    assert path.read_bytes() == before
