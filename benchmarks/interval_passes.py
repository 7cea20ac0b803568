"""The score intervals' passes over a block's logits, on a whole slice against runs of rows that fit
a core's cache (a benchmark, one thread).

The streaming samplers compute, per block of the fast product, each row's score interval (softmax
scores: `margin_bounds`, `confidence_bounds`, `entropy_bounds`; MASE: `nearest_boundary_bounds`;
BASE: `boundary_entry_bounds`) in worker threads. Each is a few numpy passes over the (rows, C)
float32 logits. This times every one on a slice of 4,096 rows (what each of two workers got of an
8,192-row block) against the same rows in runs of ``al_core.samplers.pool.INTERVAL_VALUES`` logits
(what each worker does now), fastest of ``--repeats``, on logits of the realistic pool's head.

    python -m benchmarks.interval_passes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from al_core.linear import LOGIT_FILTERS
from al_core.samplers import scores
from al_core.samplers.pool import INTERVAL_VALUES
from benchmarks.realistic_pool import WORK, build_realistic_pool
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/interval_passes.json")
ROWS = 4096


def fastest(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--n", type=int, default=100000, help="rows of the realistic pool (the first 4,096 are timed)")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    features, weight, bias, _, info = build_realistic_pool(args.n, args.d, args.c, 0, work=args.workdir)
    block = np.asarray(features[:ROWS], dtype=np.float32)
    product = LOGIT_FILTERS["float32"](weight, bias)
    logits, bound = product.approximate(block)
    geometry = scores.inverse_weight_distances(weight)
    lower = scores.boundary_distance_bounds(logits, bound, geometry)[0]
    thresholds = np.sort(lower, axis=0)[min(40, lower.shape[0] - 1)].astype(np.float32)  # about BASE's thresholds at b/N = 1%
    functions = {"margin": lambda z, e: scores.margin_bounds(z, e), "confidence": lambda z, e: scores.confidence_bounds(z, e),
                 "entropy": lambda z, e: scores.entropy_bounds(z, e),
                 "mase": lambda z, e: scores.nearest_boundary_bounds(z, e, geometry),
                 "base": lambda z, e: scores.boundary_entry_bounds(z, e, geometry, thresholds)}
    step = max(1, INTERVAL_VALUES // logits.shape[1])
    rows = []
    for name, function in functions.items():
        whole = fastest(lambda: function(logits, bound), args.repeats)
        runs = fastest(lambda: [function(logits[low:low + step], bound[low:low + step]) for low in range(0, ROWS, step)], args.repeats)
        rows.append({"score": name, "slice_ms": round(1e3 * whole, 2), "runs_ms": round(1e3 * runs, 2), "runs_over_slice": round(runs / whole, 3)})
        print(f"{name:10s} slice of {ROWS} rows {1e3 * whole:6.1f} ms   runs of {step} rows {1e3 * runs:6.1f} ms   ({runs / whole:.2f}x)")
    product_seconds = fastest(lambda: product.product(block), 3)
    write_results(args.out, {"what": __doc__.splitlines()[0], "pool": info, "rows": ROWS, "run_rows": step, "threads": "one (the passes)",
                             "product_ms_same_rows": round(1e3 * product_seconds, 1), "scores": rows})


if __name__ == "__main__":
    main()
