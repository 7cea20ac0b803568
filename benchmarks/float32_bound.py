"""How loose the float32 filter's error bound is, and what a product sliced along d would cost to
tighten it (a benchmark, not a test).

Every streaming sampler rules rows out with intervals built from ``Float32Filter.bound``:
gamma_d ||x|| max_c ||w_c|| plus the roundings of the bias and the reference, which holds for any
summation order the BLAS takes. On the first ``--rows`` rows of each benchmark pool
(``realistic``, ``imagenet``; d = 2048, C = 1000) this records:

- ``bound_over_error``: per row, the bound divided by the largest |float32 logit - exact logit| of
  that row (quantiles over the rows): how far the worst case lies above what the product did;
- ``product_seconds``: one block of ``--rows`` rows multiplied whole (numpy's BLAS, the filter's
  product) and sliced along d into pieces of K columns summed in float32 (torch's ``addmm_``, K in
  ``--slices``), the fastest of ``--repeats`` alternating runs each;
- ``bound_factor``: gamma_(K + d/K - 1) / gamma_d, the factor by which such a slicing would shrink
  the bound (each term passes through at most K - 1 additions inside its piece and d/K - 1 across
  the pieces: Higham, Accuracy and Stability of Numerical Algorithms, Eq. 3.4 applied to that tree).

    python -m benchmarks.float32_bound
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from al_core import linear
from al_core.linear import accumulation_factor, as_float32, reference_logits
from benchmarks.realistic_pool import WORK, build_named_pool
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/float32_bound.json")


def sliced_product(block: np.ndarray, weight: np.ndarray, bias: np.ndarray, width: int) -> np.ndarray:
    """``block @ weight.T + bias`` as a float32 sum of products over ``width`` columns of d at a time."""
    import torch

    rows, columns = torch.from_numpy(block), torch.from_numpy(np.ascontiguousarray(weight.T))
    with linear._full_precision_products(torch):  # IEEE float32, as the filter's torch product: the bound assumes it
        out = torch.mm(rows[:, :width], columns[:width])
        for start in range(width, block.shape[1], width):
            out.addmm_(rows[:, start:start + width], columns[start:start + width])
    out += torch.from_numpy(bias)
    return out.numpy()


def measure(pool: str, rows: int, slices: list[int], repeats: int, seed: int, shape: tuple[int, int, int] = (100_000, 2048, 1000),
            workdir: Path = WORK) -> dict:
    features, weight, bias, _ = build_named_pool(pool, workdir, *shape, seed)
    block = as_float32(features[:rows])
    fast = linear.Float32Filter(weight, bias)
    logits = fast.product(block)
    bound = fast.bound(block, logits)
    error = np.abs(logits.astype(np.float64) - reference_logits(block, weight, bias).astype(np.float64)).max(axis=1)
    ratio = bound / np.maximum(error, np.finfo(np.float64).tiny)
    methods = {"whole": lambda: fast.product(block), **{f"sliced_{k}": (lambda k=k: sliced_product(block, weight, bias, k)) for k in slices}}
    best = {name: float("inf") for name in methods}
    for method in methods.values():
        method()  # warm: torch's import, BLAS buffers
    for _ in range(repeats):
        for name, method in methods.items():
            started = time.perf_counter()
            method()
            best[name] = min(best[name], time.perf_counter() - started)
    d = block.shape[1]
    full = accumulation_factor(d, linear.UNIT_ROUNDOFF_32)
    result = {
        "pool": pool, "rows": rows, "d": d, "c": weight.shape[0], "seed": seed,
        "bound_median": float(np.median(bound)), "error_median": float(np.median(error)),
        "bound_over_error": {q: round(float(np.quantile(ratio, float(q))), 1) for q in ("0.01", "0.5", "0.99")},
        "product_seconds": {name: round(value, 4) for name, value in best.items()},
        "slowdown": {name: round(value / best["whole"], 3) for name, value in best.items() if name != "whole"},
        "bound_factor": {f"sliced_{k}": round(accumulation_factor(k + d // k - 1, linear.UNIT_ROUNDOFF_32) / full, 4) for k in slices},
    }
    print(pool, {key: result[key] for key in ("bound_over_error", "slowdown", "bound_factor")})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192, help="rows of each pool (one of the samplers' blocks)")
    parser.add_argument("--slices", default="256,512,1024", help="widths K of the pieces of d, comma-separated")
    parser.add_argument("--pools", default="realistic,imagenet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=100_000, help="the pools' size (their first --rows rows are used)")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    slices = [int(k) for k in args.slices.split(",")]
    if not all(0 < k < args.d for k in slices):
        parser.error(f"--slices: each width K must lie between 1 and d - 1 = {args.d - 1} (got {args.slices})")
    runs = [measure(pool, args.rows, slices, args.repeats, args.seed, (args.n, args.d, args.c), args.workdir) for pool in args.pools.split(",")]
    command = "python -m benchmarks.float32_bound" + ("" if args.rows == 8192 else f" --rows {args.rows}")
    write_results(args.out, {"command": command, "what": __doc__.splitlines()[0] + " " + __doc__.splitlines()[1], "runs": runs})


if __name__ == "__main__":
    main()
