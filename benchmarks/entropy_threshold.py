"""Entropy selection with and without the stream's threshold given to its intervals (a benchmark).

``entropy_bounds`` computes its second, tighter bound (the softmax's mean absolute deviation, two
more passes over a block) only for the rows whose first interval reaches down to the threshold the
stream holds (``IntervalScore.takes_threshold``); the others are dropped either way. This times
entropy selection from features with the threshold given (the sampler as it is) and without it
(every row gets both bounds, as before), alternating ``--repeats`` times on one pool, each against
the bare float32 product timed beside it, and records medians of wall time and process CPU time
(the two cores are shared with the product, so CPU time shows work saved that wall time may hide
in the noise), checking that both give the same picks, order and scores.

    python -m benchmarks.entropy_threshold                      # realistic and ImageNet-shaped, 0.1% and 1%
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from al_core.samplers import select_with_scores, uncertainty
from al_core.samplers.scores import ENTROPY
from benchmarks.realistic_pool import WORK, build_named_pool
from benchmarks.selection_grid import CHUNK, bare_product_seconds, labeled_mask, same_selection
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/entropy_threshold.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--pools", default="realistic,imagenet")
    parser.add_argument("--fractions", default="0.001,0.01")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    variants = {"threshold": ENTROPY, "no threshold": replace(ENTROPY, takes_threshold=False)}
    rows = []
    try:
        for name in args.pools.split(","):
            features, weight, bias, _ = build_named_pool(name, WORK, args.n, args.d, args.c, 0)
            labeled = labeled_mask(args.n, 0)
            for fraction in (float(value) for value in args.fractions.split(",")):
                budget = max(1, round(fraction * args.n))
                wall = {key: [] for key in variants}
                cpu = {key: [] for key in variants}
                bare, picks = [], {}
                for repeat in range(args.repeats):
                    for key in (list(variants) if repeat % 2 == 0 else list(variants)[::-1]):
                        uncertainty.ENTROPY = variants[key]
                        bare.append(bare_product_seconds(features, weight, bias, repeats=1))
                        started, started_cpu = time.perf_counter(), time.process_time()
                        picks[key] = select_with_scores("entropy", budget, features=features, chunk_size=CHUNK, precision="auto",
                                                        labeled_mask=labeled, seed=0, options={}, head_weight=weight, head_bias=bias)
                        wall[key].append(time.perf_counter() - started)
                        cpu[key].append(time.process_time() - started_cpu)
                bare_median = float(np.median(bare))
                row = {"pool": name, "n": args.n, "budget": budget, "budget_fraction": fraction,
                       "bare_product_seconds": round(bare_median, 3),
                       "same_picks_order_scores": same_selection(picks["threshold"], picks["no threshold"])}
                for key in variants:
                    row[key] = {"seconds": round(float(np.median(wall[key])), 3),
                                "ratio_to_bare": round(float(np.median(wall[key])) / bare_median, 3),
                                "cpu_seconds": round(float(np.median(cpu[key])), 3)}
                print(row, flush=True)
                rows.append(row)
    finally:
        uncertainty.ENTROPY = ENTROPY
    write_results(args.out, {"command": "python -m benchmarks.entropy_threshold", "repeats": args.repeats,
                             "what": __doc__.splitlines()[0], "statistic": "medians over the repeats", "rows": rows})


if __name__ == "__main__":
    main()
