"""float16 features to float32: numpy's cast against torch's kernel (``al_core.linear.as_float32``),
alone and inside the bare product (a benchmark, not a test).

The pipeline stores features as float16; every product over the pool (selection's stream, the
head's test metrics, the full-data probe's batches) converts each block to float32 first. This
times, over the realistic pool's memory map in the samplers' blocks of 8,192 rows:

- the conversion alone: numpy's cast on one thread, numpy's cast on two threads (row slices, as the
  selection stream did before), and ``as_float32`` (torch, on its own threads);
- the bare float32 product (conversion + ``block @ weight.T + bias``) with the two-thread numpy
  cast and with ``as_float32``.

Each measurement is repeated ``--repeats`` times, the methods alternating, and every measurement
is recorded (the host's speed drifts); the conversions are checked equal.

    python -m benchmarks.conversion
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from al_core.linear import as_float32
from benchmarks.realistic_pool import WORK, build_realistic_pool
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/conversion.json")
CHUNK = 8192


def numpy_one_thread(block: np.ndarray) -> np.ndarray:
    return block.astype(np.float32)


def numpy_two_threads(executor: ThreadPoolExecutor):
    def convert(block: np.ndarray) -> np.ndarray:
        out = np.empty(block.shape, dtype=np.float32)
        slices = np.linspace(0, block.shape[0], 3).astype(np.int64)
        list(executor.map(lambda low, high: np.copyto(out[low:high], block[low:high], casting="unsafe"), slices[:-1], slices[1:]))
        return out
    return convert


def seconds(features, convert, weight=None, bias=None) -> float:
    started = time.perf_counter()
    for start in range(0, features.shape[0], CHUNK):
        block = convert(features[start:start + CHUNK])
        if weight is not None:
            block = block @ weight.T
            block += bias
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    features, weight, bias, _, info = build_realistic_pool(args.n, args.d, args.c, 0, work=args.workdir)
    with ThreadPoolExecutor(2) as executor:
        methods = {"numpy_one_thread": numpy_one_thread, "numpy_two_threads": numpy_two_threads(executor), "as_float32": as_float32}
        head = features[:CHUNK]
        reference = numpy_one_thread(head)
        for name, convert in methods.items():
            if not np.array_equal(convert(head), reference):
                raise AssertionError(f"{name} converts differently from numpy's cast")
        measured: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for name, convert in methods.items():
                measured.setdefault(f"convert_{name}_s", []).append(round(seconds(features, convert), 4))
            for name in ("numpy_two_threads", "as_float32"):
                measured.setdefault(f"bare_product_{name}_s", []).append(round(seconds(features, methods[name], weight, bias), 4))
    medians = {name: round(statistics.median(values), 4) for name, values in measured.items()}
    for name, value in medians.items():
        print(f"{name:36s} median {value:.3f} s   all {measured[name]}")
    write_results(args.out, {"what": __doc__.splitlines()[0], "pool": info, "rows": int(features.shape[0]), "chunk": CHUNK,
                             "repeats": args.repeats, "medians": medians, "measured": measured})


if __name__ == "__main__":
    main()
