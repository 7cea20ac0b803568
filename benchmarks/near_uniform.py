"""Selection on a near-uniform softmax: the worst case for filter and refine (a benchmark, not a test).

The ``uniform`` benchmark pool (``benchmarks.realistic_pool``): the ImageNet-shaped pool's 100k x
2048 float16 features under a head of N(0, 0.02) weights and no bias (C = 1,000), so every class
sits near the top and the fast product's intervals overlap the most. At b = ``--budget`` (10,000
by default: 10% of the pool) it times, alternating ``--repeats`` times (the fastest of each
counts), the bare float32 product and each sampler selecting from features with the pipeline's
``precision`` (auto); checks that the picks, their order and their scores equal those of
selection on the exact reference logits; and selects again with other ``chunk_size`` values,
checking the same picks, order and scores. Writes ``benchmarks/results/near_uniform.json``.

    python -m benchmarks.near_uniform                     # base, margin, mase: about 5 minutes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from al_core.samplers import select_with_scores
from al_core.samplers.scores import softmax
from benchmarks.realistic_pool import WORK, build_named_pool
from benchmarks.selection_grid import CHUNK, bare_product_seconds, exact_logits, labeled_mask, same_selection
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/near_uniform.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--samplers", default="base,margin,mase")
    parser.add_argument("--chunk-sizes", default="5000,1024", help="other chunk sizes whose picks must equal those at 8192")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    features, weight, bias, _ = build_named_pool("uniform", args.workdir, args.n, args.d, args.c, args.seed)
    labeled = labeled_mask(args.n, args.seed)
    reference = exact_logits(features, weight, bias)
    top1 = softmax(reference[:20000]).max(axis=1)
    pool = {"pool": "uniform", "n": args.n, "d": args.d, "c": args.c, "seed": args.seed, "labeled": int(labeled.sum()),
            "median_top1_probability": round(float(np.median(top1)), 4), "largest_top1_probability": round(float(top1.max()), 4)}
    print(f"uniform pool: median top-1 probability {pool['median_top1_probability']} (1/C = {1 / args.c})")
    rows = []
    for sampler in args.samplers.split(","):
        common = dict(labeled_mask=labeled, seed=args.seed, head_weight=weight, head_bias=bias)
        bare, seconds = float("inf"), float("inf")
        for _ in range(args.repeats):
            bare = min(bare, bare_product_seconds(features, weight, bias, repeats=1))
            started = time.perf_counter()
            selection = select_with_scores(sampler, args.budget, features=features, chunk_size=CHUNK, precision="auto", **common)
            seconds = min(seconds, time.perf_counter() - started)
        exact = select_with_scores(sampler, args.budget, logits=reference, **common)
        chunks = {size: same_selection(selection, select_with_scores(sampler, args.budget, features=features, chunk_size=int(size),
                                                           precision="auto", **common))
                  for size in args.chunk_sizes.split(",")}
        row = {"sampler": sampler, "budget": args.budget, "seconds": round(seconds, 3), "bare_product_seconds": round(bare, 3),
               "ratio_to_bare": round(seconds / bare, 3), "filter": selection.notes.get("filter"),
               "refined_rows": selection.notes.get("refined_rows", 0), "partial_rows": selection.notes.get("partial_rows", 0),
               "narrowed_rows": selection.notes.get("narrowed_rows", 0),
               "same_picks_order_scores_as_exact": same_selection(selection, exact),
               "same_picks_order_scores_at_chunk_sizes": chunks}
        print(f"  {sampler:8s} {row['filter']:8s} {seconds:6.2f} s  {row['ratio_to_bare']:.2f}x bare ({bare:.2f} s)  "
              f"refined {row['refined_rows']}  exact: {row['same_picks_order_scores_as_exact']}  chunk sizes: {chunks}")
        rows.append(row)
    write_results(args.out, {"what": __doc__.splitlines()[0], "pool": pool, "chunk_size": CHUNK, "rows": rows})


if __name__ == "__main__":
    main()
