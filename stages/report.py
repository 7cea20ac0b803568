"""report: this run's results, for ``dvc exp show`` and for people (the ``report`` stage).

Reads ``runs/<round>/metrics.json`` of every scheduled round and ``data/full/metrics.json``;
writes ``metrics.json`` (a handful of columns for ``dvc exp show``), ``reports/rounds.csv``,
``reports/table.md`` and ``reports/figures/``. Comparing experiments is ``al report`` (the
``reporting`` package), not a stage.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from al_core.artifacts import atomic_path, read_json, read_npy, write_json
from al_core.stopping import cohen_kappa, stopping_point, wilson_interval
from pipeline.artifacts import FULL_DIR, PREPARE_DIR, REPORTS_DIR, STOP_PREDICTIONS, round_dir
from pipeline.params import Params
from reporting.comparison import Comparison
from reporting.experiments import ROUNDS_CSV, SUMMARY, Experiment, flatten
from pipeline.tables import markdown_table
from reporting.report import write_figures

TABLE_MD = REPORTS_DIR / "table.md"
RUN_FIGURES = REPORTS_DIR / "figures"


def stop_signals(metrics: list[dict], predictions: list[np.ndarray | None], num_classes: int) -> list[dict]:
    """Per round (``metrics``: each round's metrics.json; ``predictions``: its stop-set predictions):
    validation top-1 with its 95% Wilson interval, Cohen's kappa and the changed share of the
    predictions against the previous round's (None for the first)."""
    signals, previous = [], None
    for round_metrics, current in zip(metrics, predictions):
        low, high = wilson_interval(round_metrics.get("val_top1", float("nan")), round_metrics.get("val_items", 0))
        same = previous is not None and current is not None and previous.shape == current.shape
        signals.append({"val_top1": round_metrics.get("val_top1"), "val_low": round(low, 4), "val_high": round(high, 4),
                        "kappa": round(cohen_kappa(previous, current, num_classes), 5) if same else None,
                        "changed": round(float((previous != current).mean()), 5) if same else None})
        previous = current
    return signals


def stop_round(frame: pl.DataFrame, kappa: float, window: int) -> dict:
    """Where the stabilizing-predictions criterion (``stop.kappa``, ``stop.window``) says stop, on a rounds table."""
    return stopping_point(frame["round"].to_list(), frame["labels"].to_list(), frame["kappa"].to_list(), kappa, window)


def collect_rounds(rounds: list[str]) -> pl.DataFrame:
    """One row per round of ``rounds`` (the scheduled ones): its metrics.json, and the stopping
    signals of its stop-set predictions."""
    metrics = [read_json(round_dir(round_name) / "metrics.json") for round_name in rounds]
    paths = [round_dir(round_name) / STOP_PREDICTIONS for round_name in rounds]
    predictions = [read_npy(path, mmap=False) if path.exists() else None for path in paths]
    num_classes = len(read_json(PREPARE_DIR / "meta.json")["class_names"])
    rows = []
    for round_name, round_metrics, signals in zip(rounds, metrics, stop_signals(metrics, predictions, num_classes)):
        rows.append({
            "round": round_name,
            "sampler": round_metrics["sampler"],
            "labels": round_metrics["labels"],
            "top1": round_metrics["top1"],
            "top5": round_metrics["top5"],
            "imbalance_ratio": round_metrics["imbalance_ratio"],
            "entropy": round_metrics["entropy"],
            "missing_classes": round_metrics["missing_classes"],
            "class_counts": " ".join(map(str, round_metrics["class_counts"])),
            **signals,
        })
    return pl.DataFrame(rows, schema_overrides={"kappa": pl.Float64, "changed": pl.Float64, "val_top1": pl.Float64})


def summarize(frame: pl.DataFrame, full: dict | None) -> dict:
    """The short summary ``dvc exp show`` displays: a handful of columns per experiment."""
    last = frame.row(-1, named=True)
    if last["top1"] is None:  # no labeled test set
        return {"labels": last["labels"], "final_imbalance": round(last["imbalance_ratio"], 3)}
    summary = {
        "labels": last["labels"],
        "final_top1": round(last["top1"], 4),
        "final_top5": round(last["top5"], 4),
        "mean_top1": round(float(frame["top1"].mean()), 4),
        "final_imbalance": round(last["imbalance_ratio"], 3),
    }
    if full is not None:
        summary["full_top1"] = round(full["top1"], 4)
        summary["full_top5"] = round(full["top5"], 4)
    return summary


def run_report(params: Params) -> None:
    """The ``report`` stage: metrics.json, reports/rounds.csv, reports/table.md and reports/figures/."""
    settings = params.settings
    frame = collect_rounds(list(params.schedule()))
    full_path = FULL_DIR / "metrics.json"
    full = read_json(full_path) if full_path.exists() else None
    full = full if full is not None and "top1" in full else None  # skipped on an unlabeled pool
    stop = stop_round(frame, settings.stop.kappa, settings.stop.window)
    summary = summarize(frame, full)
    summary["stop_labels"] = stop["stop_labels"]
    with atomic_path(ROUNDS_CSV, suffix=".csv") as tmp:
        frame.write_csv(tmp)
    table = markdown_table(frame, ["round", "labels", "top1", "top5", "imbalance_ratio", "entropy", "val_top1", "kappa",
                                   "changed", "class_counts"])
    footer = f"\nsampler={frame['sampler'][0]} seed={settings.seed}"
    footer += (f"; stop ({stop['rule']}): at {stop['stop_round']} ({stop['stop_labels']} labels)" if stop["stop_round"]
               else f"; stop ({stop['rule']}): not reached yet")
    if full is not None:
        footer += f"; full-data linear probe ({full['labels']} labels): top-1 {full['top1']:.4f}, top-5 {full['top5']:.4f}"
    with atomic_path(TABLE_MD, suffix=".md") as tmp:
        tmp.write_text(table + footer + "\n")
    write_json(SUMMARY, summary)
    experiment = Experiment("workspace", flatten(params.data), frame, full)
    write_figures(Comparison.of([experiment]), RUN_FIGURES)
    print(table + footer)
