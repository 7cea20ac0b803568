"""Selection with a float32 stream against a bfloat16 stream (narrowed in float32 before any exact
logits), beside the bare float32 product, in one run (a benchmark, not a test).

On the realistic pool (``benchmarks.realistic_pool``: long-tailed classes, an unsaturated head,
float16 features on disk) it times, for each sampler and budget, the bare product and the sampler
with ``precision="float32"`` and ``precision="bfloat16"``, alternating, ``--repeats`` times (the
fastest of each counts; every measurement is kept), checks that both precisions pick the same
items with the same scores, and records the rows each path multiplied in float32 after the stream
(``narrowed_rows``) or scored exactly. The samplers stream bfloat16 only while the rows they keep
are at most ``COARSE_MAX_SHARE`` of the pool (BASE: ``BASE_COARSE_MAX_SHARE``; ``Pool.stream_keeping``);
this benchmark lifts both shares, so both streams run at every budget: the measurement behind the rule. (Entropy always
streams float32: its intervals from a bfloat16 stream rule out almost nothing.) The bfloat16
product is fast only on CPUs with AMX or AVX512-BF16 (the results name the CPU).

    python -m benchmarks.stream_precision
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from al_core.linear import as_float32
from al_core.samplers import select_with_scores
from al_core.samplers import boundary
from al_core.samplers import pool as pool_module
from benchmarks.realistic_pool import WORK, build_realistic_pool
from benchmarks.selection_grid import CHUNK, bare_product_seconds, labeled_mask, pool_clusters, same_selection
from pipeline.results_file import machine, write_results

OUT = Path("benchmarks/results/stream_precision.json")
SAMPLERS = ("margin", "confidence", "mase", "margin_clustering", "base")


def measure(args, features, weight, bias, labeled, clusters) -> list[dict]:
    """Every sampler and budget, both streams and the bare product alternating, ``args.repeats`` times."""
    rows = []
    for fraction in (float(value) for value in args.fractions.split(",")):
        budget = max(1, round(fraction * args.n))
        for label in args.samplers.split(","):
            name = label.split(" ")[0]
            options = {"cluster_ids": clusters} if name == "margin_clustering" else {}
            common = dict(labeled_mask=labeled, seed=0, options=options, features=features, head_weight=weight,
                          head_bias=bias, chunk_size=CHUNK)
            measured: dict[str, list[float]] = {"bare_product_s": [], "float32_s": [], "bfloat16_s": []}
            selections = {}
            for _ in range(args.repeats):
                measured["bare_product_s"].append(round(bare_product_seconds(features, weight, bias, repeats=1), 4))
                for precision in ("float32", "bfloat16"):
                    started = time.perf_counter()
                    selections[precision] = select_with_scores(name, budget, precision=precision, **common)
                    measured[f"{precision}_s"].append(round(time.perf_counter() - started, 4))
            single, double = selections["float32"], selections["bfloat16"]
            same = same_selection(single, double)
            best = {key: max(min(values), 1e-4) for key, values in measured.items()}
            row = {"sampler": label, "budget": budget, "budget_fraction": fraction, **measured,
                   "float32_ratio_to_bare": round(best["float32_s"] / best["bare_product_s"], 3),
                   "bfloat16_ratio_to_bare": round(best["bfloat16_s"] / best["bare_product_s"], 3),
                   "same_picks_order_scores": same, "float32_notes": single.notes, "bfloat16_notes": double.notes}
            rows.append(row)
            print(f"b={budget:>6} {label:24s} bare {best['bare_product_s']:.2f} s  float32 {row['float32_ratio_to_bare']:.2f}x  "
                  f"bfloat16 {row['bfloat16_ratio_to_bare']:.2f}x  narrowed {double.notes.get('narrowed_rows', 0):,}  same: {same}",
                  flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--fractions", default="0.001,0.01,0.1")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="a comma-separated subset of: " + ", ".join(SAMPLERS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    features, weight, bias, _, info = build_realistic_pool(args.n, args.d, args.c, 0, work=args.workdir)
    labeled = labeled_mask(args.n, 0)  # as the grid's seed-0 pools
    clusters = pool_clusters(features, 0) if "margin_clustering" in args.samplers else None
    as_float32(features[:CHUNK])  # torch's import (once per process) is not the product's time
    coarse_max_share, base_share = pool_module.COARSE_MAX_SHARE, boundary.BASE_COARSE_MAX_SHARE
    pool_module.COARSE_MAX_SHARE = boundary.BASE_COARSE_MAX_SHARE = 1.0  # both streams at every budget
    try:
        rows = measure(args, features, weight, bias, labeled, clusters)
    finally:
        pool_module.COARSE_MAX_SHARE, boundary.BASE_COARSE_MAX_SHARE = coarse_max_share, base_share
    write_results(args.out, {
        "command": "python -m benchmarks.stream_precision " + " ".join(f"--{k} {v}" for k, v in (
            ("n", args.n), ("d", args.d), ("c", args.c), ("fractions", args.fractions), ("samplers", args.samplers),
            ("repeats", args.repeats))),
        "what": "selection from features with a float32 and a bfloat16 stream (narrowed in float32; COARSE_MAX_SHARE lifted, so "
                "at every budget), beside the bare float32 product; seconds of every repeat, the fastest of each makes the ratios",
        "coarse_max_share_in_the_code": coarse_max_share, "base_coarse_max_share_in_the_code": base_share,
        "machine": machine(), "pool": info, "rows": rows,
    })


if __name__ == "__main__":
    main()
