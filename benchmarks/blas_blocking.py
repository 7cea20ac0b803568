"""Why selection uses exact logits: how many rows of a BLAS float32 product change when the same rows
are multiplied in other blocks, and how rarely the exact logits need more than one float64 product.

On each benchmark pool (``realistic`` and ``imagenet``, d = 2048, C = 1000), the first ``--n`` rows:

- re-blocking: the float32 product in the samplers' blocks of 8192 rows against the same rows in
  blocks of 8000, of 3, in reversed order (one block) and one row at a time (the first 2,000 rows;
  a one-row product is a matrix-vector product in BLAS); the share of rows whose logits differ in
  any bit, and of single logits;
- exact logits (``al_core.linear.ExactLogits``): the share of logits that the certified float64
  product leaves undecided (values -/+ bound round to two float32), which go to the slower
  error-free sums.

    python -m benchmarks.blas_blocking            # N = 20,000: about a minute
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from al_core.linear import ExactLogits, linear_logits, undecided
from benchmarks.realistic_pool import WORK, build_named_pool
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/blas_blocking.json")


def blocked_product(features: np.ndarray, weight: np.ndarray, bias: np.ndarray, rows: int) -> np.ndarray:
    return np.concatenate([linear_logits(features[start:start + rows], weight, bias) for start in range(0, features.shape[0], rows)])


def differing(a: np.ndarray, b: np.ndarray) -> dict:
    unequal = a.view(np.uint32) != b.view(np.uint32)
    return {"rows": round(float(unequal.any(axis=1).mean()), 4), "logits": round(float(unequal.mean()), 5)}


def measure(pool: str, n: int, d: int, c: int, seed: int, work: Path = WORK) -> dict:
    features, weight, bias, *_ = build_named_pool(pool, work, n, d, c, seed)
    features = np.asarray(features[:n], dtype=np.float32)
    samplers_blocks = blocked_product(features, weight, bias, 8192)
    other_blocks = blocked_product(features, weight, bias, 8000)
    reversed_rows = linear_logits(features[::-1], weight, bias)[::-1]
    few = min(n, 2000)
    one_row = blocked_product(features[:few], weight, bias, 1)
    exact = ExactLogits(weight, bias)
    count = 0
    for start in range(0, n, 4096):
        _, values, bound = exact.float64_values(features[start:start + 4096])
        count += int(undecided(values, bound).sum())
    return {"pool": pool, "n": n, "d": d, "c": c, "seed": seed,
            "blocks_of_8000_vs_8192": differing(samplers_blocks, other_blocks),
            "blocks_of_3_vs_8192": differing(samplers_blocks, blocked_product(features, weight, bias, 3)),
            "reversed_rows_vs_blocks_of_8192": differing(samplers_blocks, reversed_rows),
            "one_row_at_a_time_vs_blocks_of_8192": differing(samplers_blocks[:few], one_row),
            "exact_logits_undecided": {"logits": count, "share": float(f"{count / (n * c):.3g}")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [measure(pool, args.n, args.d, args.c, args.seed, args.workdir) for pool in ("realistic", "imagenet")]
    for run in runs:
        print(run)
    write_results(args.out, {"what": __doc__.splitlines()[0], "seconds": round(time.perf_counter() - started, 1), "runs": runs})


if __name__ == "__main__":
    main()
