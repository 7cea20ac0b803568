"""What the exact logits cost, and how slicing the float64 product along d changes it (a benchmark, not a test).

`al_core.linear.ExactLogits` multiplies in float64 and certifies each element with an a-priori
bound; elements whose interval holds a float32 midpoint go to the slower error-free sums of
`exact_float32_dots`, and the few these leave to ``math.fsum``. Cutting the product into slices of
K columns of d (``EXACT_K_BLOCK``, off in the code) shrinks the bound from gamma_(d+1) to
gamma_(K + d/K), so fewer elements go there, for a few more additions of (rows, C) partials.

For each benchmark pool (``realistic`` and ``imagenet``, d = 2048, C = 1000) it takes ``--rows``
random rows (sorted, as the samplers read them) and, in one run, alternating, times
``ExactLogits`` under each setting (K = d: one product; K = 512 and 256; the fallback's partial
sums of 32 or 16 terms), the fastest of ``--repeats``; it records the elements left undecided by
the float64 product, the elements left to ``math.fsum``, and checks that every setting returns the
same logits bit for bit. For scale it also times the bare float64 and float32 products of the
same rows. Writes ``benchmarks/results/exact_logits.json``.

    python -m benchmarks.exact_logits            # 8,192 rows of each pool: about a minute
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from al_core import linear
from benchmarks.interval_passes import fastest
from benchmarks.realistic_pool import WORK, build_named_pool
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/exact_logits.json")
SETTINGS = {"one product (K = d), sums of 32": (None, 32), "K = 512, sums of 32": (512, 32), "K = 512, sums of 16": (512, 16),
            "K = 256, sums of 16": (256, 16)}


@contextmanager
def setting(slice_columns: int | None, sum_block: int, d: int, calls: list):
    """The module's constants set for one measurement (and ``math.fsum`` fallbacks counted into ``calls``)."""
    saved = linear.EXACT_K_BLOCK, linear.SUM_BLOCK, linear._exact_float32_dot
    original = saved[2]
    linear.EXACT_K_BLOCK, linear.SUM_BLOCK = slice_columns, sum_block
    linear._exact_float32_dot = lambda *args: calls.append(1) or original(*args)
    try:
        yield
    finally:
        linear.EXACT_K_BLOCK, linear.SUM_BLOCK, linear._exact_float32_dot = saved


def measure(pool: str, rows: int, seed: int, repeats: int, work: Path = WORK, shape: tuple[int, int, int] = (100_000, 2048, 1000)) -> dict:
    features, weight, bias, *_ = build_named_pool(pool, work, *shape, 0)
    picked = np.sort(np.random.default_rng(seed).choice(features.shape[0], size=rows, replace=False))
    x = np.asarray(features[picked], dtype=np.float32)
    d = x.shape[1]
    x64, w64 = x.astype(np.float64), np.ascontiguousarray(weight.astype(np.float64).T)
    result = {"pool": pool, "rows": rows, "d": d, "c": int(weight.shape[0]),
              "float64_product_s": round(fastest(lambda: x64 @ w64, repeats), 4),
              "float32_product_s": round(fastest(lambda: x @ weight.T, repeats), 4), "settings": {}}
    reference = None
    timings = {name: float("inf") for name in SETTINGS}
    for _ in range(repeats):  # the settings alternate, so a drift of the host's speed hits them alike
        for name, (slice_columns, sum_block) in SETTINGS.items():
            calls: list = []
            with setting(slice_columns, sum_block, d, calls):
                exact = linear.ExactLogits(weight, bias)
                started = time.perf_counter()
                logits = exact(x)
                timings[name] = min(timings[name], time.perf_counter() - started)
                _, values, norms = exact._float64_product(x)
                undecided = int(exact._undecided_elements(values, norms)[0].shape[0])
            reference = logits if reference is None else reference
            result["settings"][name] = {"seconds": round(timings[name], 4), "undecided_elements": undecided,
                                        "fsum_elements": len(calls), "same_logits": bool(np.array_equal(logits.view(np.uint32), reference.view(np.uint32)))}
    for name, row in result["settings"].items():
        print(f"{pool:9s} {name:34s} {row['seconds']:.3f} s  undecided {row['undecided_elements']:6d}  fsum {row['fsum_elements']:4d}  same {row['same_logits']}")
    print(f"{pool:9s} bare float64 product {result['float64_product_s']:.3f} s, float32 {result['float32_product_s']:.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--n", type=int, default=100_000, help="rows of the benchmark pool the timed rows are drawn from")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--pools", default="realistic,imagenet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    pools = [measure(pool, args.rows, args.seed, args.repeats, args.workdir, (args.n, args.d, args.c)) for pool in args.pools.split(",")]
    write_results(args.out, {"what": __doc__.splitlines()[0],
                             "in_the_code": {"EXACT_K_BLOCK": linear.EXACT_K_BLOCK, "SUM_BLOCK": linear.SUM_BLOCK},
                             "pools": pools})


if __name__ == "__main__":
    main()
