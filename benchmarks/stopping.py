"""Where the stabilizing-predictions criterion stops, against the truth of the test curves.

Reads finished study cells (`al study run --grid benchmarks/stopping_grid.yaml --out
benchmarks/results/stopping_cells`: the default pipeline for 20 rounds, 100 to 2,000 labels), whose
``rounds.csv`` holds each round's test top-1 and the Cohen's kappa between its predictions on the
fixed stop set and the previous round's. For each cell and each kappa threshold (window 3), the
round the criterion stops at; the *plateau*: the first round whose test top-1 is within
``PLATEAU_POINTS`` of the run's best; and what stopping there costs (top-1 below the run's last
round) or saves (labels not bought). Writes ``benchmarks/results/stopping.json`` and
``docs/results/img/stopping.png``.

With ``--calibrate DATASET`` it also chooses a rule (window, threshold) on that dataset's cells
alone: among the rules that fire in at least ``FIRING_SHARE`` of its runs, each time at a top-1
within ``PLATEAU_POINTS`` of the run's best, the one that stops earliest (median labels), ties to
the higher threshold; the
other datasets' cells only check it. Each cell then records ``default_stop`` (labels and top-1 where
the chosen rule stops, or null) and ``final_top1``.

    python -m benchmarks.stopping [--cells DIR] [--out JSON] [--figure PNG] [--calibrate DATASET | --check JSON] [--table]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

from al_core.stopping import stabilized_at
from pipeline.results_file import write_results

CELLS = Path("benchmarks/results/stopping_cells")
OUT = Path("benchmarks/results/stopping.json")
FIGURE = Path("docs/results/img/stopping.png")
THRESHOLDS = (0.99, 0.98, 0.95)
WINDOW = 3
PLATEAU_POINTS = 0.01
CANDIDATE_WINDOWS = (2, 3, 4)
FIRING_SHARE = 0.8  # the rule must fire in at least this share of the calibration runs (9 of 10 in the terms)
CANDIDATE_THRESHOLDS = tuple(round(0.95 + 0.005 * step, 3) for step in range(10))  # 0.95 ... 0.995


def stop_of(rounds: dict, window: int, threshold: float) -> dict | None:
    """Where (window, threshold) stops a cell's rounds: labels and top-1, or None."""
    index = stabilized_at(rounds["kappa"], threshold, window)
    return None if index is None else {"labels": rounds["labels"][index], "top1": rounds["top1"][index]}


def calibrate(cells: dict, dataset: str) -> dict:
    """The rule chosen on ``dataset``'s cells (see the module docstring), with every candidate's record."""
    chosen, candidates = None, []
    own = {key: cell for key, cell in cells.items() if key.startswith(dataset + "/")}
    if not own:
        raise SystemExit(f"no cells of dataset {dataset!r} to calibrate on")
    for window in CANDIDATE_WINDOWS:
        for threshold in CANDIDATE_THRESHOLDS:
            stops = {key: stop_of(cell["rounds"], window, threshold) for key, cell in own.items()}
            fired = [key for key, stop in stops.items() if stop is not None]
            within = all(stops[key]["top1"] >= own[key]["summary"]["best_top1"] - PLATEAU_POINTS for key in fired)
            good = within and len(fired) >= FIRING_SHARE * len(own)
            labels = sorted(stops[key]["labels"] for key in fired)
            median = labels[len(labels) // 2] if labels else None
            candidates.append({"window": window, "threshold": threshold, "fired": len(fired), "runs": len(own),
                               "every_stop_within_1_point": within, "median_stop_labels": median})
            if good and (chosen is None or (median, -threshold) < (chosen["median_stop_labels"], -chosen["threshold"])):
                chosen = candidates[-1]
    return {"dataset": dataset, "chosen": chosen, "candidates": candidates}


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


def draw(cells: dict, path: Path, rule: dict | None = None) -> None:
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
            stop = cell["summary"]["default_stop"] if rule else cell["summary"]["stops"][str(THRESHOLDS[0])]
            if stop is not None:
                axes[0][column].plot([stop["labels"]], [stop["top1"]], "v", color=line.get_color(), markersize=9)
            axes[0][column].plot([cell["summary"]["plateau_labels"]], [cell["summary"]["plateau_top1"]], "o",
                                 mfc="none", color=line.get_color(), markersize=9)
        where = f"window {rule['window']}, kappa {rule['threshold']}" if rule else f"kappa {THRESHOLDS[0]}"
        axes[0][column].set_title(f"{dataset}: test top-1 (o plateau, v stop at {where})")
        axes[1][column].set_title("kappa of consecutive rounds' predictions (stop set)")
        for threshold in (rule["threshold"],) if rule else THRESHOLDS:
            axes[1][column].axhline(threshold, color="grey", linewidth=0.6, linestyle=":")
        axes[1][column].set_xlabel("labels")
        axes[1][column].set_ylim(0.6, 1.0)
    axes[0][0].legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def round_to_round(cells: dict) -> dict:
    """How often and how far test top-1 drops from a round to the next (labels added), over all cells."""
    steps = [(before, after) for cell in cells.values() for before, after in zip(cell["rounds"]["top1"], cell["rounds"]["top1"][1:])]
    drops = [before - after for before, after in steps if after < before]
    return {"round_pairs": len(steps), "drops": len(drops), "largest_drop": round(max(drops, default=0.0), 4)}


def table_rows(result: dict) -> list[str]:
    """The docs' table of a calibrated result: per cell its best and final top-1 and where the rule stops."""
    rows = ["| dataset / sampler | best top-1 (labels) | final top-1 (labels) | rule stops at: labels, top-1 | below best |",
            "|---|---|---|---|---|"]
    for key, cell in sorted(result["cells"].items()):
        labels, top1 = cell["rounds"]["labels"], cell["rounds"]["top1"]
        best_at = labels[top1.index(cell["best_top1"])]
        stop = cell["default_stop"]
        where = "never" if stop is None else f"{stop['labels']}, {stop['top1']:.4f}"
        below = "-" if stop is None else f"{cell['best_top1'] - stop['top1']:.4f}"
        rows.append(f"| {key.rsplit('/', 1)[0]} | {cell['best_top1']:.4f} ({best_at}) | {cell['final_top1']:.4f} "
                    f"({cell['final_labels']}) | {where} | {below} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=Path, default=CELLS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--figure", default=str(FIGURE), help="'' for none")
    parser.add_argument("--calibrate", default="", help="choose the rule on this dataset's cells (e.g. balanced)")
    parser.add_argument("--check", default="", help="apply the rule chosen in this results file (e.g. stopping_lbfgs.json)")
    parser.add_argument("--table", action="store_true", help="print the docs' table of the cells (with --calibrate)")
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
    calibration = calibrate(cells, args.calibrate) if args.calibrate else None
    if args.check:  # the rule another run of this script chose, applied to these (fresh) cells
        calibration = {"checked_from": args.check, "chosen": json.loads(Path(args.check).read_text())["calibration"]["chosen"]}
    rule = calibration["chosen"] if calibration else None
    for cell in cells.values():
        cell["summary"]["default_stop"] = stop_of(cell["rounds"], rule["window"], rule["threshold"]) if rule else None
    if args.figure:  # (a Path of '' is '.', which matplotlib would write as '.png')
        draw(cells, Path(args.figure), rule)
    command = (f"python -m benchmarks.stopping --cells {args.cells}" + (f" --calibrate {args.calibrate}" if args.calibrate else "")
               + (f" --check {args.check}" if args.check else ""))
    result = {"what": __doc__.splitlines()[0], "command": command, "window": WINDOW, "plateau_points": PLATEAU_POINTS, "calibration": calibration,
              "round_to_round": round_to_round(cells),
              "cells": {key: {**cell["summary"], "rounds": cell["rounds"]} for key, cell in cells.items()}}
    write_results(args.out, result)
    for key, cell in cells.items():
        summary = cell["summary"]
        stops = ", ".join(f"{t}: {s['labels'] if s else 'never'}" for t, s in summary["stops"].items())
        default = summary["default_stop"]
        print(f"{key}: plateau at {summary['plateau_labels']} labels (top-1 {summary['plateau_top1']:.4f}, best "
              f"{summary['best_top1']:.4f}); stops {stops}"
              + (f"; chosen rule: {default['labels'] if default else 'never'}" if rule else ""))
    if args.table:
        print("\n".join(table_rows(result)))
    if rule:
        print(f"{'chosen on ' + args.calibrate if args.calibrate else 'checked'}: window {rule['window']}, kappa >= {rule['threshold']} "
              f"(median stop {rule['median_stop_labels']} labels)")


if __name__ == "__main__":
    main()
