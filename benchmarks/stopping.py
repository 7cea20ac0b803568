"""Where the stabilizing-predictions criterion stops, against the truth of the test curves.

Reads finished study cells (`al study run --grid benchmarks/stopping_grid.yaml --out
benchmarks/results/stopping_cells`: the default pipeline for 20 rounds, 100 to 2,000 labels), whose
``rounds.csv`` holds each round's test top-1 and the Cohen's kappa between its predictions on the
fixed stop set and the previous round's. For each cell and each kappa threshold (window 3), the
round the criterion stops at; the *plateau*: the first round whose test top-1 is within
``PLATEAU_POINTS`` of the run's best; and what stopping there costs (top-1 below the run's last
round) or saves (labels not bought). Writes ``benchmarks/results/stopping.json`` and
``docs/results/img/stopping.png``.

    python -m benchmarks.stopping [--cells DIR] [--out JSON] [--figure PNG]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

from al_core.hardware import machine
from al_core.stopping import stabilized_at

CELLS = Path("benchmarks/results/stopping_cells")
OUT = Path("benchmarks/results/stopping.json")
FIGURE = Path("docs/results/img/stopping.png")
THRESHOLDS = (0.99, 0.98, 0.95)
WINDOW = 3
PLATEAU_POINTS = 0.01


def cell_summary(rounds: pl.DataFrame) -> dict:
    top1 = rounds["top1"].to_list()
    labels = rounds["labels"].to_list()
    best = max(top1)
    plateau = next(index for index, value in enumerate(top1) if value >= best - PLATEAU_POINTS)
    summary = {"final_labels": labels[-1], "final_top1": top1[-1], "best_top1": best,
               "plateau_labels": labels[plateau], "plateau_top1": top1[plateau], "stops": {}}
    for threshold in THRESHOLDS:
        index = stabilized_at(rounds["kappa"].to_list(), threshold, WINDOW)
        summary["stops"][str(threshold)] = None if index is None else {
            "labels": labels[index], "top1": top1[index], "below_final": round(top1[-1] - top1[index], 4),
            "labels_after_plateau": labels[index] - labels[plateau]}
    return summary


def draw(cells: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({key.split("/")[0] for key in cells})
    figure, axes = plt.subplots(2, len(datasets), figsize=(6 * len(datasets), 7), sharex=True, squeeze=False,
                                constrained_layout=True)
    for column, dataset in enumerate(datasets):
        for key, cell in sorted(cells.items()):
            if not key.startswith(dataset + "/"):
                continue
            sampler = key.split("/")[1]
            rounds = cell["rounds"]
            line, = axes[0][column].plot(rounds["labels"], rounds["top1"], label=sampler)
            axes[1][column].plot(rounds["labels"], rounds["kappa"], color=line.get_color())
            stop = cell["summary"]["stops"][str(THRESHOLDS[0])]
            if stop is not None:
                axes[0][column].plot([stop["labels"]], [stop["top1"]], "v", color=line.get_color(), markersize=9)
            axes[0][column].plot([cell["summary"]["plateau_labels"]], [cell["summary"]["plateau_top1"]], "o",
                                 mfc="none", color=line.get_color(), markersize=9)
        axes[0][column].set_title(f"{dataset}: test top-1 (o plateau, v stop at kappa {THRESHOLDS[0]})")
        axes[1][column].set_title("kappa of consecutive rounds' predictions (stop set)")
        for threshold in THRESHOLDS:
            axes[1][column].axhline(threshold, color="grey", linewidth=0.6, linestyle=":")
        axes[1][column].set_xlabel("labels")
        axes[1][column].set_ylim(0.6, 1.0)
    axes[0][0].legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=Path, default=CELLS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--figure", type=Path, default=FIGURE, help="'' for none")
    args = parser.parse_args()
    cells = {}
    for rounds_file in sorted(args.cells.glob("*/*/seed*/rounds.csv")):
        key = "/".join(rounds_file.parent.relative_to(args.cells).parts)
        rounds = pl.read_csv(rounds_file)
        cells[key] = {"rounds": rounds.select("labels", "top1", "kappa").to_dict(as_series=False),
                      "summary": cell_summary(rounds)}
    if not cells:
        raise SystemExit(f"no finished cells under {args.cells}; run: al study run --grid benchmarks/stopping_grid.yaml "
                         f"--out {args.cells}")
    if str(args.figure):
        draw(cells, args.figure)
    result = {"what": __doc__.splitlines()[0], "command": f"python -m benchmarks.stopping --cells {args.cells}",
              "machine": machine(), "window": WINDOW, "plateau_points": PLATEAU_POINTS,
              "cells": {key: {**cell["summary"], "rounds": cell["rounds"]} for key, cell in cells.items()}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, cell in cells.items():
        summary = cell["summary"]
        stops = ", ".join(f"{t}: {s['labels'] if s else 'never'}" for t, s in summary["stops"].items())
        print(f"{key}: plateau at {summary['plateau_labels']} labels (top-1 {summary['plateau_top1']:.4f}, best "
              f"{summary['best_top1']:.4f}); stops {stops}")


if __name__ == "__main__":
    main()
