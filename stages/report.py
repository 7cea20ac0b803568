"""report: this run's results, for ``dvc exp show`` and for people (the ``report`` stage).

Reads ``runs/<round>/metrics.json`` of every scheduled round and ``data/full/metrics.json``;
writes ``metrics.json`` (a handful of columns for ``dvc exp show``), ``reports/rounds.csv``,
``reports/table.md`` and ``reports/figures/``. Comparing experiments is ``al report`` (the
``reporting`` package), not a stage.
"""

from __future__ import annotations

import polars as pl

from al_core.artifacts import atomic_path, read_json, read_npy, write_json
from al_core.stopping import cohen_kappa, stabilized_at, wilson_interval
from pipeline.artifacts import FULL_DIR, PREPARE_DIR, REPORTS_DIR, STOP_PREDICTIONS, round_dir
from pipeline.params import Params
from reporting.comparison import Comparison
from reporting.experiments import ROUNDS_CSV, SUMMARY, Experiment, flatten
from reporting.pages import markdown_table
from reporting.report import write_figures

TABLE_MD = REPORTS_DIR / "table.md"
RUN_FIGURES = REPORTS_DIR / "figures"


def stop_signals(params: Params, num_classes: int) -> list[dict]:
    """Per scheduled round: validation top-1 with its 95% Wilson interval, Cohen's kappa and the
    changed share of the stop set's predictions against the previous round (None for the first)."""
    signals, previous = [], None
    for round_name in params.schedule():
        metrics = read_json(round_dir(round_name) / "metrics.json")
        low, high = wilson_interval(metrics.get("val_top1", float("nan")), metrics.get("val_items", 0))
        path = round_dir(round_name) / STOP_PREDICTIONS
        predictions = read_npy(path, mmap=False) if path.exists() else None
        same = previous is not None and predictions is not None and previous.shape == predictions.shape
        signals.append({"val_top1": metrics.get("val_top1"), "val_low": round(low, 4), "val_high": round(high, 4),
                        "kappa": round(cohen_kappa(previous, predictions, num_classes), 5) if same else None,
                        "changed": round(float((previous != predictions).mean()), 5) if same else None})
        previous = predictions
    return signals


def stop_round(frame: pl.DataFrame, params: Params) -> dict:
    """Where the stabilizing-predictions criterion says stop: the round and its label count (None: not yet)."""
    kappa, window = params.get("stop.kappa", float, 0.99), params.get("stop.window", int, 3)
    index = stabilized_at(frame["kappa"].to_list(), kappa, window)
    rule = f"mean kappa of the last {window} round pairs >= {kappa}"
    if index is None:
        return {"stop_round": None, "stop_labels": None, "rule": rule}
    return {"stop_round": frame["round"][index], "stop_labels": int(frame["labels"][index]), "rule": rule}


def collect_rounds(params: Params) -> pl.DataFrame:
    rows = []
    num_classes = len(read_json(PREPARE_DIR / "meta.json")["class_names"])
    for round_name, signals in zip(params.schedule(), stop_signals(params, num_classes)):
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
    frame = collect_rounds(params)
    full_path = FULL_DIR / "metrics.json"
    full = read_json(full_path) if full_path.exists() else None
    full = full if full is not None and "top1" in full else None  # skipped on an unlabeled pool
    summary = summarize(frame, full)
    summary["stop_labels"] = stop_round(frame, params)["stop_labels"]
    with atomic_path(ROUNDS_CSV, suffix=".csv") as tmp:
        frame.write_csv(tmp)
    table = markdown_table(frame, ["round", "labels", "top1", "top5", "imbalance_ratio", "entropy", "val_top1", "kappa",
                                   "changed", "class_counts"])
    stop = stop_round(frame, params)
    footer = f"\nsampler={frame['sampler'][0]} seed={params.get('seed', int)}"
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
