"""report: this run's results, for ``dvc exp show`` and for people (the ``report`` stage).

Reads ``runs/<round>/metrics.json`` of every scheduled round and ``data/full/metrics.json``;
writes ``metrics.json`` (a handful of columns for ``dvc exp show``), ``reports/rounds.csv``,
``reports/table.md`` and ``reports/figures/``. Comparing experiments is ``al report`` (the
``reporting`` package), not a stage.
"""

from __future__ import annotations

import polars as pl

from al_core.artifacts import atomic_path, read_json, write_json
from pipeline.artifacts import FULL_DIR, REPORTS_DIR, round_dir
from pipeline.params import Params
from reporting.comparison import Comparison
from reporting.experiments import ROUNDS_CSV, SUMMARY, Experiment, flatten
from reporting.pages import markdown_table
from reporting.report import write_figures

TABLE_MD = REPORTS_DIR / "table.md"
RUN_FIGURES = REPORTS_DIR / "figures"


def collect_rounds(params: Params) -> pl.DataFrame:
    rows = []
    for round_name in params.schedule():
        metrics = read_json(round_dir(round_name) / "metrics.json")
        rows.append({
            "round": round_name,
            "sampler": metrics["sampler"],
            "labels": metrics["labels"],
            "top1": metrics["top1"],
            "top5": metrics["top5"],
            "imbalance_ratio": metrics["imbalance_ratio"],
            "entropy": metrics["entropy"],
            "missing_classes": metrics["missing_classes"],
            "class_counts": " ".join(map(str, metrics["class_counts"])),
        })
    return pl.DataFrame(rows)


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
    frame = collect_rounds(params)
    full_path = FULL_DIR / "metrics.json"
    full = read_json(full_path) if full_path.exists() else None
    full = full if full is not None and "top1" in full else None  # skipped on an unlabeled pool
    summary = summarize(frame, full)
    with atomic_path(ROUNDS_CSV, suffix=".csv") as tmp:
        frame.write_csv(tmp)
    table = markdown_table(frame, ["round", "labels", "top1", "top5", "imbalance_ratio", "entropy", "class_counts"])
    footer = f"\nsampler={frame['sampler'][0]} seed={params.get('seed', int)}"
    if full is not None:
        footer += f"; full-data linear probe ({full['labels']} labels): top-1 {full['top1']:.4f}, top-5 {full['top5']:.4f}"
    with atomic_path(TABLE_MD, suffix=".md") as tmp:
        tmp.write_text(table + footer + "\n")
    write_json(SUMMARY, summary)
    experiment = Experiment("workspace", flatten(params.data), frame, full)
    write_figures(Comparison.of([experiment]), RUN_FIGURES)
    print(table + footer)
