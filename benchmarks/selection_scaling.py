"""How selection time grows with the pool and with processes (a benchmark, not a test).

For each pool size N (the ImageNet shape's d and C, features float16 memory-mapped from disk,
built by ``benchmarks.pools.build_pool``): the bare float32 logits product over the pool,
then each sampler from features in one process and in P processes (``select.processes``: every
process streams every P-th block and the shards are merged; gloo on CPU, one BLAS thread per
process), the picks checked equal to one process's. The pool files stay in ``--workdir``
(20 GB at N = 5M): remove them after.

    python -m benchmarks.selection_scaling                            # 128k, 1.28M, 5M
    python -m benchmarks.selection_scaling --sizes 20000 --d 64 --c 10 --budget 100 --labeled 100
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.results_file import machine, write_results
from benchmarks.realistic_pool import POOL_HELP, POOLS, build_named_pool


def bare_product_seconds(features, weight, bias, chunk: int) -> float:
    started = time.perf_counter()
    for start in range(0, features.shape[0], chunk):
        block = np.asarray(features[start:start + chunk], dtype=np.float32) @ weight.T
        block += bias
    return time.perf_counter() - started


def selection_inputs(args, n: int):
    features, weight, bias, _ = build_named_pool(args.pool, args.workdir, n, args.d, args.c, args.seed)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(args.seed).choice(n, size=min(args.labeled, n - args.budget), replace=False)] = True
    return features, weight, bias, mask


def run_sampler(args, n: int, name: str, shard=(0, 1), gather=None):
    from al_core.samplers import select_with_scores

    features, weight, bias, mask = selection_inputs(args, n)
    started = time.perf_counter()
    selection = select_with_scores(name, args.budget, features=features, head_weight=weight, head_bias=bias,
                                   labeled_mask=mask, seed=args.seed, chunk_size=args.chunk_size,
                                   shard=shard, gather=gather, precision=args.precision)
    return selection, time.perf_counter() - started


def worker(rank: int, world: int, port: int, args, n: int, name: str, out: str) -> None:
    import pickle

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        def gather(value):
            values = [None] * world
            dist.all_gather_object(values, value)
            return values

        dist.barrier()
        selection, seconds = run_sampler(args, n, name, shard=(rank, world), gather=gather)
        dist.barrier()
        if rank == 0:
            Path(out).write_bytes(pickle.dumps((selection.indices, selection.scores, seconds, selection.notes)))
    finally:
        dist.destroy_process_group()


def run_sharded(args, n: int, name: str, processes: int):
    import pickle

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.pkl")
        os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
        try:
            started = time.perf_counter()
            mp.spawn(worker, args=(processes, port, args, n, name, out), nprocs=processes, join=True)
            wall = time.perf_counter() - started
        finally:
            del os.environ["OMP_NUM_THREADS"], os.environ["OPENBLAS_NUM_THREADS"]
        indices, scores, seconds, notes = pickle.loads(Path(out).read_bytes())
    return indices, scores, seconds, wall, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128000,1281167,5000000")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--labeled", type=int, default=30_000)
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--samplers", default="base,mase,margin")
    parser.add_argument("--processes", type=int, default=2, help="P of the sharded runs (1: none)")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/.work"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/selection_scaling.json"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", choices=POOLS, default="imagenet", help=POOL_HELP)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    report = {"machine": machine(), "pool": args.pool, "shape": {"d": args.d, "c": args.c, "labeled": args.labeled, "budget": args.budget,
                                              "chunk_size": args.chunk_size, "precision": args.precision}, "runs": rows}
    for n in (int(size) for size in args.sizes.split(",")):
        started = time.perf_counter()
        features, weight, bias, _ = selection_inputs(args, n)
        built = time.perf_counter() - started
        bare = bare_product_seconds(features, weight, bias, args.chunk_size)
        print(f"N={n:,}: pool ready in {built:.0f} s; bare product {bare:.1f} s", flush=True)
        for name in args.samplers.split(","):
            selection, seconds = run_sampler(args, n, name)
            row = {"n": n, "sampler": name, "bare_product_seconds": round(bare, 2), "seconds": round(seconds, 2),
                   "x_bare_product": round(seconds / bare, 2), "microseconds_per_row": round(seconds / n * 1e6, 2),
                   "notes": dict(selection.notes)}
            if args.processes > 1:
                indices, scores, sharded, wall, notes = run_sharded(args, n, name, args.processes)
                row.update({f"seconds_{args.processes}_processes": round(sharded, 2),
                            f"wall_seconds_{args.processes}_processes_with_start": round(wall, 2),
                            "sharded_equal_to_one_process": bool(np.array_equal(indices, selection.indices)
                                                                  and scores.tobytes() == selection.scores.tobytes())})
            rows.append(row)
            print(row, flush=True)
            write_results(args.out, report)  # after every row: a cut run keeps what it measured


if __name__ == "__main__":
    main()
