"""The linear head's cost: the paper's SGD head against the converged L-BFGS head, side by side in one run.

Synthetic Gaussian-class features (``--n`` labeled rows, ``--val`` validation rows, ``--d``
dimensions, ``--c`` classes; the 1.28M benchmark's rounds: 30,000 x 2048 x 1,000) or, with
``--real``, the default run's own features (``data/embed/features.npy`` after ``dvc repro``) with
``--n`` labeled pool rows drawn at random. Each head is fitted ``--repeats`` times (the fastest is
kept); the L-BFGS head also reports its evaluations and the penalty it chose. ``--max-iter`` caps
the L-BFGS iterations per penalty (the head's setting ``train.max_iter``).

    python -m benchmarks.head --n 800 --real
    python -m benchmarks.head --n 30000 --d 2048 --c 1000 --val 10000 --repeats 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from al_core.linear import feature_statistics
from al_core.train import HeadConfig, train_linear_head
from pipeline.results_file import write_results


def synthetic(n: int, val: int, d: int, c: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.15, size=(c, d)).astype(np.float32)
    labels = rng.integers(0, c, size=n + val)
    features = centres[labels] + rng.normal(size=(n + val, d)).astype(np.float32)
    return features[:n], labels[:n], features[n:], labels[n:]


def real(n: int, seed: int = 0):
    from pipeline.artifacts import PoolTable, load_features

    table, features = PoolTable.load(), load_features()
    pool, val = table.split_range("pool"), table.split_range("val")
    labels = table.frame["label"].to_numpy()
    rows = pool.start + np.sort(np.random.default_rng(seed).choice(pool.stop - pool.start, n, replace=False))
    return features[rows], labels[rows], features[val], labels[val]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--val", type=int, default=5000)
    parser.add_argument("--d", type=int, default=1280)
    parser.add_argument("--c", type=int, default=10)
    parser.add_argument("--real", action="store_true", help="the default run's features (data/embed) instead of synthetic ones")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    x, y, xv, yv = real(args.n) if args.real else synthetic(args.n, args.val, args.d, args.c)
    classes = int(max(y.max(), yv.max()) + 1)
    mean, std = feature_statistics(np.concatenate([x, xv]))
    rows = {"n": int(x.shape[0]), "val": int(xv.shape[0]), "d": int(x.shape[1]), "c": classes,
            "features": "default run (data/embed)" if args.real else "synthetic"}
    for solver in ("sgd", "lbfgs"):
        best, head = None, None
        for _ in range(args.repeats):
            started = time.perf_counter()
            head = train_linear_head(x, y, xv, yv, num_classes=classes, config=HeadConfig(solver=solver, max_iter=args.max_iter),
                                     seed=0, mean=mean, std=std)
            seconds = time.perf_counter() - started
            best = seconds if best is None else min(best, seconds)
        history = {key: value for key, value in head.history.items() if key in ("l2", "evaluations", "epochs_run", "best_epoch")}
        rows[solver] = {"seconds": round(best, 2), "val_top1": round(float(head.history["val_top1"]), 4), **history}
        print(f"{solver}: {best:.2f} s, val top-1 {head.history['val_top1']:.4f} {history}", flush=True)
    rows["ratio_lbfgs_to_sgd"] = round(rows["lbfgs"]["seconds"] / rows["sgd"]["seconds"], 2)
    out = args.out or Path(f"benchmarks/results/head_{rows['n']}x{rows['d']}x{classes}.json")
    write_results(out, {"what": __doc__.splitlines()[0], **rows})


if __name__ == "__main__":
    main()
