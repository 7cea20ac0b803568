"""Side by side: every streaming sampler against the bare float32 product, over a grid of pools
and budgets, in one run (a benchmark, not a test).

For each pool (``realistic``: class geometry, long-tailed sizes, an unsaturated head, see
``benchmarks.realistic_pool``; ``imagenet``: the saturated ImageNet-shaped pool of
``benchmarks.selection``, kept for comparability), each N and each budget fraction b/N, it times
the bare product (features @ W^T + b over the pool, in the samplers' chunks, float16 features
converted as the samplers convert them: the floor every head-based sampler pays) and each sampler
selecting from features (exact selection: filter and refine), alternating, ``--repeats`` times
each (the fastest of each counts), and records the ratio to the bare product, the product the
samplers streamed (``--precision``, default ``auto`` as the pipeline: bfloat16 on CPUs with AMX or
AVX512-BF16, its open rows narrowed by a float32 product) and the fraction of rows scored exactly. With
``--check`` (default for N <= 200k) it also selects from the exact reference logits and records
whether the picks, their order and their scores are equal. Writes
``benchmarks/results/selection_grid.json`` and ``docs/results/img/selection_grid.png``.

    python -m benchmarks.selection_grid                          # N = 100k, d = 2048, C = 1000
    python -m benchmarks.selection_grid --n 100000,1280000 --no-check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from al_core.clustering import cluster_pool
from al_core.linear import Float32Blocks, as_float32, reference_logits
from al_core.samplers import select_with_scores
from benchmarks.realistic_pool import WORK, build_realistic_pool
from pipeline.results_file import machine, write_results
from benchmarks.pools import build_pool

OUT = Path("benchmarks/results/selection_grid.json")
FIGURE = Path("docs/results/img/selection_grid.png")
SAMPLERS = {"base": {}, "base (sequential)": {"order": "sequential"}, "mase": {}, "margin": {}, "confidence": {},
            "entropy": {}, "margin_clustering": {}}
CHUNK = 8192


def bare_product_seconds(features, weight, bias, repeats: int = 2) -> float:
    """The plain product over the pool in the samplers' chunks, float16 features converted by the
    samplers' own conversion (``al_core.linear.Float32Blocks``, two buffers used in turn, as the
    stream does), so the ratio measures what selection adds, not a faster conversion."""
    best = float("inf")
    as_float32(features[:CHUNK])  # torch's import (once per process) is not the product's time
    for _ in range(repeats):
        started = time.perf_counter()
        float32_blocks = Float32Blocks(CHUNK, features.shape[1])
        for start in range(0, features.shape[0], CHUNK):
            block = float32_blocks(features[start:start + CHUNK]) @ weight.T
            block += bias
        best = min(best, time.perf_counter() - started)
    return best


def labeled_mask(n: int, seed: int) -> np.ndarray:
    """``(n,) bool``: the grid's labeled items, 3% of the pool drawn with ``seed + 2``."""
    labeled = np.zeros(n, dtype=bool)
    labeled[np.random.default_rng(seed + 2).choice(n, size=max(1, n * 3 // 100), replace=False)] = True
    return labeled


def pool_clusters(features, seed: int) -> np.ndarray:
    """margin_clustering's clusters of the pool, computed once (not in the ratios)."""
    n = features.shape[0]
    return cluster_pool(features, min(1000, n // 10), codebook_size=min(2048, n), seed=seed)


def same_selection(a, b) -> bool:
    """Whether two selections have the same picks, in the same order, with bit-identical scores."""
    return bool(np.array_equal(a.indices, b.indices) and a.scores.tobytes() == b.scores.tobytes())


def exact_logits(features, weight, bias) -> np.ndarray:
    out = np.empty((features.shape[0], weight.shape[0]), dtype=np.float32)
    for start in range(0, features.shape[0], CHUNK):
        out[start:start + CHUNK] = reference_logits(features[start:start + CHUNK], weight, bias)
    return out


def run_pool(pool: str, n: int, d: int, c: int, fractions: list[float], check: bool, seed: int,
             samplers: dict = SAMPLERS, median_top1: float = 0.65, repeats: int = 2, precision: str = "auto") -> list[dict]:
    if pool == "realistic":
        features, weight, bias, _, info = build_realistic_pool(n, d, c, seed, median_top1=median_top1)
    else:
        WORK.mkdir(parents=True, exist_ok=True)
        features, weight, bias, _ = build_pool(WORK, n, d, c, seed)
        info = {"pool": "imagenet", "n": n, "d": d, "c": c, "seed": seed}
    labeled = labeled_mask(n, seed)
    started = time.perf_counter()
    clusters = pool_clusters(features, seed) if "margin_clustering" in samplers else None
    cluster_seconds = time.perf_counter() - started
    reference = exact_logits(features, weight, bias) if check else None
    print(f"{pool} N={n}: clustering {cluster_seconds:.1f} s (once, not in the ratios)")
    rows = []
    for fraction in fractions:
        budget = max(1, round(fraction * n))
        for label, options in samplers.items():
            name = label.split(" ")[0]
            options = dict(options, **({"cluster_ids": clusters} if name == "margin_clustering" else {}))
            common = dict(labeled_mask=labeled, seed=seed, options=options, head_weight=weight, head_bias=bias)
            # The bare product and the selection alternate, ``repeats`` times each, and the fastest of
            # each makes the ratio: this host's speed drifts by tens of percent within a run, so only
            # neighbouring timings compare.
            bare, seconds = float("inf"), float("inf")
            for _ in range(repeats):
                bare = min(bare, bare_product_seconds(features, weight, bias, repeats=1))
                started = time.perf_counter()
                selection = select_with_scores(name, budget, features=features, chunk_size=CHUNK, precision=precision, **common)
                seconds = min(seconds, time.perf_counter() - started)
            row = {**info, "budget": budget, "budget_fraction": fraction, "sampler": label, "seconds": round(seconds, 3),
                   "bare_product_seconds": round(bare, 3), "ratio_to_bare": round(seconds / bare, 3),
                   "precision": precision, "filter": selection.notes.get("filter"),
                   "streamed_rows": selection.notes.get("streamed_rows"), "refined_rows": selection.notes.get("refined_rows"),
                   "narrowed_rows": selection.notes.get("narrowed_rows", 0),
                   "partial_rows": selection.notes.get("partial_rows", 0),
                   "refined_fraction": round(selection.notes.get("refined_rows", 0) / max(selection.notes.get("streamed_rows", 1), 1), 5)}
            if reference is not None:
                exact = select_with_scores(name, budget, logits=reference, **common)
                row["same_picks_order_scores"] = same_selection(exact, selection)
            print(f"  b={budget:>7} {label:18s} {row['filter']:8s} {seconds:7.2f} s  {row['ratio_to_bare']:5.2f}x bare ({bare:.2f} s)  refined "
                  f"{row['refined_fraction']:.4f}" + (f"  same as exact: {row['same_picks_order_scores']}" if reference is not None else ""))
            rows.append(row)
    return rows


def draw(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pools = sorted({(row["pool"], row["n"]) for row in rows})
    figure, axes = plt.subplots(2, len(pools), figsize=(6 * len(pools), 7), squeeze=False, constrained_layout=True)
    for column, (pool, n) in enumerate(pools):
        for sampler in SAMPLERS:
            mine = sorted((row for row in rows if row["pool"] == pool and row["n"] == n and row["sampler"] == sampler),
                          key=lambda row: row["budget_fraction"])
            fractions = [row["budget_fraction"] for row in mine]
            for axis, key in ((axes[0][column], "ratio_to_bare"), (axes[1][column], "refined_fraction")):
                [line] = axis.plot(fractions, [row[key] for row in mine], marker="o", label=sampler)
                coarse = [row for row in mine if row.get("filter") == "bfloat16"]  # open markers: a bfloat16 stream
                axis.plot([row["budget_fraction"] for row in coarse], [row[key] for row in coarse], linestyle="none", marker="o",
                          color=line.get_color(), markerfacecolor="white")
        axes[0][column].axhline(1.2, color="grey", linestyle=":", linewidth=0.8, label="1.2x")
        axes[0][column].set_title(f"{pool}, N = {n:,}: time / bare float32 product\n(open markers: bfloat16 stream)")
        axes[1][column].set_title("fraction of rows scored on their exact logits")
        for row_axes in (axes[0][column], axes[1][column]):
            row_axes.set_xscale("log")
            row_axes.set_xlabel("budget / pool")
    axes[0][0].legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def markdown_table(previous: dict, current: dict, host: str | None = None) -> str:
    """The docs' before/after table: each cell's ratio to the bare product and its share of rows
    scored on their exact logits (+ rows scored from a few classes' exact logits), from two results
    files of this script: ``previous`` (before) and ``current`` (now); with ``host``, a first
    column naming the machine (for a second host's table on the same page)."""
    def share(row: dict) -> str:
        streamed = max(row.get("streamed_rows") or 1, 1)
        partial = row.get("partial_rows", row.get("top_two_rows", 0)) or 0
        return f"{100 * (row.get('refined_rows') or 0) / streamed:.1f}%" + (f" (+{100 * partial / streamed:.1f}%)" if partial else "")

    before = {(row["pool"], row["n"], row["budget_fraction"], row["sampler"]): row for row in previous["rows"]}
    first = "" if host is None else "| host "
    lines = [first + "| pool | b/N | sampler | before | now | rows scored exactly, before | now (+ from a few classes) |",
             ("" if host is None else "|---") + "|---|---|---|---|---|---|---|"]
    for row in current["rows"]:
        old = before.get((row["pool"], row["n"], row["budget_fraction"], row["sampler"]))
        old_ratio, old_share = (f"{old['ratio_to_bare']:.2f}x", share(old)) if old else ("-", "-")
        lines.append(("" if host is None else f"| {host} ") + f"| {row['pool']} | {100 * row['budget_fraction']:g}% | {row['sampler']} | {old_ratio} | "
                     f"{row['ratio_to_bare']:.2f}x | {old_share} | {share(row)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="100000", help="pool sizes, comma-separated")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--fractions", default="0.001,0.01,0.1")
    parser.add_argument("--pools", default="realistic,imagenet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="a comma-separated subset of: " + ", ".join(SAMPLERS))
    parser.add_argument("--median-top1", type=float, default=0.65, help="the realistic pool's median top-1 softmax probability")
    parser.add_argument("--repeats", type=int, default=2, help="timings of each selection and its bare product (the fastest counts)")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=None,
                        help="compare with selection on the exact logits (default: when N <= 200k)")
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="the samplers' stream (auto, the pipeline's default: bfloat16 on CPUs with AMX or AVX512-BF16)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--table", type=Path, metavar="PREVIOUS_JSON",
                        help="run nothing: print the docs' table of --out beside this earlier results file")
    parser.add_argument("--host", help="with --table: a first column with this name of the machine")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.table.read_text()), json.loads(args.out.read_text()), args.host))
        return
    fractions = [float(f) for f in args.fractions.split(",")]
    unknown = set(args.samplers.split(",")) - set(SAMPLERS)
    if unknown:
        parser.error(f"--samplers: {', '.join(sorted(unknown))} not among {', '.join(SAMPLERS)}")
    samplers = {label: SAMPLERS[label] for label in args.samplers.split(",")}
    rows = []
    for n in (int(value) for value in args.n.split(",")):
        check = args.check if args.check is not None else n <= 200_000
        for pool in args.pools.split(","):
            rows += run_pool(pool, n, args.d, args.c, fractions, check, args.seed, samplers, args.median_top1, args.repeats,
                             args.precision)
    write_results(args.out, {"what": __doc__.splitlines()[0], "command": "python -m benchmarks.selection_grid " +
                             f"--n {args.n} --d {args.d} --c {args.c} --fractions {args.fractions} --pools {args.pools}"
                             + (f" --samplers '{args.samplers}'" if samplers != SAMPLERS else "")
                             + (f" --median-top1 {args.median_top1}" if args.median_top1 != 0.65 else "")
                             + (f" --repeats {args.repeats}" if args.repeats != 2 else "")
                             + (f" --precision {args.precision}" if args.precision != "auto" else ""),
                             "date": time.strftime("%Y-%m-%d"), "machine": machine(), "repeats": args.repeats, "rows": rows})
    draw(rows, args.figure)


if __name__ == "__main__":
    main()
