"""Selection speed and memory on an ImageNet-shaped synthetic pool (a benchmark, not a test).

Builds N x d float16 features on disk (class-clustered, unequal class sizes and spreads,
memory-mapped), a linear head and a labeled set, then times each sampler at budget b, the bare
logits matrix product over the pool (the floor every head-based sampler pays), the samplers from
precomputed logits, and a naive implementation (per-batch (B, C, d) tensors, a full sort of the
pool per class) on a slice, extrapolated to N. Peak memory, two ways: numpy's traced
allocations (tracemalloc), and the rise of the process's resident anonymous memory (Linux
RssAnon, sampled every 20 ms), i.e. what the sampler holds beyond the memory-mapped inputs,
BLAS buffers included.

    python -m benchmarks.selection                     # the full ImageNet shape (needs ~9 GB disk)
    python -m benchmarks.selection --n 100000 --d 256 --c 100 --labeled 3000 --budget 1000
"""

from __future__ import annotations

import argparse
import ctypes
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

from al_core.clustering import cluster_pool
from al_core.errors import InputError
from al_core.metrics import class_counts, imbalance_ratio
from al_core.samplers import SAMPLERS, select_with_scores
from benchmarks.realistic_pool import POOL_HELP, POOLS, build_named_pool
from pipeline.results_file import machine, write_results

HEAD_SAMPLERS = ("base", "mase", "margin", "confidence", "entropy")
FEATURE_SAMPLERS = ("coreset", "partitioned_coreset", "badge", "partitioned_badge", "balancing")  # need features even beside logits


def logits_file(workdir: Path, features, weight, bias, chunk: int) -> tuple[np.ndarray, float]:
    """Bare logits product over the pool (timed), written as float16 for the logits-only runs."""
    path = workdir / f"logits_{features.shape[0]}_{weight.shape[0]}.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(features.shape[0], weight.shape[0]))
    started = time.perf_counter()
    for start in range(0, features.shape[0], chunk):
        block = np.asarray(features[start:start + chunk], dtype=np.float32) @ weight.T
        block += bias
        out[start:start + chunk] = block
    seconds = time.perf_counter() - started
    out.flush()
    return np.load(path, mmap_mode="r"), seconds


def anonymous_rss() -> int | None:
    """Resident anonymous memory of this process in bytes (Linux ``RssAnon``): what it holds
    beyond file-backed pages such as the memory-mapped inputs. None where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class AnonymousRssPeak:
    """Samples ``anonymous_rss`` every ``interval`` seconds on a thread; ``peak`` is the largest
    rise over the value at start (None off Linux). Sampling can miss a spike shorter than the interval."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak: int | None = None

    def __enter__(self):
        try:  # hand freed heap back to the OS first, or reused free memory would not show as a rise
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self._start = anonymous_rss()
        self._stop = threading.Event()
        self._highest = self._start
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        if self._start is None:
            return
        while not self._stop.wait(self.interval):
            self._highest = max(self._highest, anonymous_rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self._start is not None:
            self.peak = max(self._highest, anonymous_rss()) - self._start
        return False


def timed(fn):
    """(result, seconds, numpy's traced peak bytes, anonymous RSS peak rise in bytes or None)."""
    with AnonymousRssPeak() as rss:
        tracemalloc.start()
        try:
            started = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return result, seconds, peak, rss.peak


def naive_seconds(features, weight, bias, labeled_mask, budget: int, slice_rows: int, batch: int = 32) -> float:
    """The paper code's approach on ``slice_rows`` items: per-batch (B, C, d) weight-difference
    tensors for the boundary distances, then one full sort of the pool per class (BASE).
    Returns the time extrapolated to the whole pool (linear in N for the tensors; N log N sorts)."""
    n = features.shape[0]
    c = weight.shape[0]
    rows = np.arange(slice_rows)
    started = time.perf_counter()
    distances = np.empty((slice_rows, c), dtype=np.float32)
    for start in range(0, slice_rows, batch):
        x = np.asarray(features[start:min(start + batch, slice_rows)], dtype=np.float32)
        z = x @ weight.T + bias
        predicted = z.argmax(axis=1)
        differences = weight[predicted][:, None, :] - weight[None, :, :]  # (B, C, d)
        norms = np.linalg.norm(differences, axis=2)
        gaps = np.abs(z[np.arange(len(x)), predicted][:, None] - z)
        with np.errstate(divide="ignore", invalid="ignore"):
            distances[start:start + len(x)] = gaps / norms
    tensor_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for cls in range(c):
        np.argsort(np.where(labeled_mask[rows], np.inf, distances[:, cls]), kind="stable")
    sort_seconds = time.perf_counter() - started
    scale = n / slice_rows
    return tensor_seconds * scale + sort_seconds * scale * np.log(n) / np.log(slice_rows)


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_281_167)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--labeled", type=int, default=30_000)
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--naive-slice", type=int, default=5_000)
    parser.add_argument("--samplers", default=",".join(HEAD_SAMPLERS + ("random",)))
    parser.add_argument("--sources", default="features,logits", help="inputs to time each sampler from")
    parser.add_argument("--precisions", default="float32", help="fast products to filter features with (float32, bfloat16)")
    parser.add_argument("--partitions", type=int, default=10, help="p of the partitioned samplers")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--clusters", type=int, default=1000, help="margin_clustering: average-linkage clusters")
    parser.add_argument("--codebook-size", type=int, default=2048, help="margin_clustering: k-means codebook")
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/.work"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/selection.json"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", choices=POOLS, default="imagenet", help=POOL_HELP)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    features, weight, bias, labels = build_named_pool(args.pool, args.workdir, args.n, args.d, args.c, args.seed)
    print(f"{args.pool} pool {features.shape} float16 ready in {time.perf_counter() - started:.0f} s")
    labeled_mask = np.zeros(args.n, dtype=bool)
    labeled_mask[np.random.default_rng(args.seed).choice(args.n, size=args.labeled, replace=False)] = True

    logits, matmul_seconds = logits_file(args.workdir, features, weight, bias, args.chunk_size)
    print(f"bare logits product: {matmul_seconds:.1f} s ({2 * args.n * args.d * args.c / matmul_seconds / 1e9:.0f} GFLOP/s)")
    results = []
    clustering = None
    if "margin_clustering" in args.samplers.split(","):
        cluster_ids, seconds, peak, rss = timed(lambda: cluster_pool(features, args.clusters, codebook_size=args.codebook_size, seed=args.seed, progress=True))
        sizes = np.bincount(cluster_ids)
        clustering = {"clusters": int(sizes.size), "codebook_size": args.codebook_size, "seconds": round(seconds, 1),
                      "peak_traced_gib": round(peak / 2**30, 3),
                      "peak_anonymous_rss_gib": None if rss is None else round(rss / 2**30, 3), "largest": int(sizes.max()), "median": float(np.median(sizes))}
        print(f"clustering (once, cached across rounds): {clustering}", flush=True)
    runs = [(name, source, precision) for name in args.samplers.split(",") for source in args.sources.split(",")
            for precision in (args.precisions.split(",") if source == "features" and SAMPLERS[name].shardable else [None])]
    for name, source, precision in runs:
        if source == "logits" and "logits" not in SAMPLERS[name].needs:
            continue  # the sampler reads no logits: its features-run is the only one
        inputs = dict(labeled_mask=labeled_mask, seed=args.seed, chunk_size=args.chunk_size, head_weight=weight, labels=labels,
                      precision=precision or "float32")
        if "partitions" in SAMPLERS[name].options:
            inputs["options"] = {"partitions": args.partitions}
        if name == "margin_clustering":
            inputs["options"] = {"cluster_ids": cluster_ids}
        if source == "features" or name in FEATURE_SAMPLERS:
            inputs.update(features=features, head_bias=bias)
        if source == "logits":
            inputs.update(logits=logits)
        try:
            selection, seconds, peak, rss = timed(lambda: select_with_scores(name, args.budget, **inputs))
        except InputError as refused:  # e.g. a pool above a sampler's memory limit
            results.append({"sampler": name, "from": source, "refused": str(refused)})
            print(results[-1], flush=True)
            continue
        ratio = imbalance_ratio(class_counts(labels[selection.indices], args.c))
        row = {"sampler": name, "from": source, "seconds": round(seconds, 2),
               "peak_traced_gib": round(peak / 2**30, 3),
               "peak_anonymous_rss_gib": None if rss is None else round(rss / 2**30, 3), "x_bare_matmul": round(seconds / matmul_seconds, 2),
               "selected": int(selection.indices.shape[0]), "imbalance_ratio": round(ratio, 2)}
        if selection.notes:  # which fast product ran, and how many rows were scored exactly
            row.update(selection.notes, refined_fraction=round(selection.notes["refined_rows"] / selection.notes["streamed_rows"], 5))
        results.append(row)
        print(row, flush=True)
    naive = None
    if not args.no_naive:
        naive = naive_seconds(features, weight, bias, labeled_mask, args.budget, min(args.naive_slice, args.n))
        print(f"naive (B, C, d) tensors + full sorts, extrapolated: {naive:.0f} s")
    report = {
        "machine": machine(),
        "pool": args.pool,
        "shape": {"n": args.n, "d": args.d, "c": args.c, "labeled": args.labeled, "budget": args.budget, "chunk_size": args.chunk_size},
        "bare_matmul_seconds": round(matmul_seconds, 2),
        "naive_extrapolated_seconds": None if naive is None else round(naive, 1),
        "naive_slice_rows": min(args.naive_slice, args.n),
        "clustering": clustering,
        "samplers": results,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    main()
