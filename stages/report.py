"""report: the results table across rounds (this workspace) and across DVC experiments."""

from __future__ import annotations

import io
import json
import subprocess

import polars as pl

from al_core.artifacts import atomic_path, read_json, write_json
from al_core.errors import InputError
from stages.common import FULL_DIR, REPORTS_DIR, Params, round_dir

ROUNDS_CSV = REPORTS_DIR / "rounds.csv"
TABLE_MD = REPORTS_DIR / "table.md"
SUMMARY = "metrics.json"


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
    summary = {
        "labels": last["labels"],
        "final_top1": round(last["top1"], 4),
        "final_top5": round(last["top5"], 4),
        "mean_top1": round(float(frame["top1"].mean()), 4),
        "final_imbalance": round(last["imbalance_ratio"], 3),
    }
    if full is not None:
        summary["full_top1"] = round(full["top1"], 4)
    return summary


def markdown_table(frame: pl.DataFrame, columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.select(columns).iter_rows():
        cells = [f"{value:.4f}" if isinstance(value, float) else str(value) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_report(params: Params) -> None:
    """Write metrics.json (summary), reports/rounds.csv (per round) and reports/table.md; print it."""
    frame = collect_rounds(params)
    full_path = FULL_DIR / "metrics.json"
    full = read_json(full_path) if full_path.exists() else None
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
    print(table + footer)


def _experiments() -> list[dict]:
    """Experiments known to DVC in this repo: name, rev, params (via ``dvc exp show --json``)."""
    try:
        output = subprocess.run(
            ["dvc", "exp", "show", "--json", "--all-commits"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise InputError(f"`dvc exp show --json` failed: {getattr(error, 'stderr', error)}") from error
    found = []

    def visit(entry: dict) -> None:
        data = entry.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        rev = data.get("rev") or entry.get("rev")
        if rev and rev != "workspace" and params:
            found.append({"name": entry.get("name") or rev[:7], "rev": rev, "params": params})
        for experiment in entry.get("experiments") or []:
            for executed in experiment.get("revs") or []:
                visit(executed)

    for baseline in json.loads(output or "[]"):
        visit(baseline)
    return found


def run_compare() -> pl.DataFrame:
    """One row per experiment: sampler, seed, top-1 per round, final imbalance ratio.

    Reads each experiment's reports/rounds.csv from its git commit (DVC commits it there).
    """
    rows = []
    for experiment in _experiments():
        shown = subprocess.run(["git", "show", f"{experiment['rev']}:{ROUNDS_CSV.as_posix()}"], capture_output=True, text=True)
        if shown.returncode != 0:
            continue
        rounds = pl.read_csv(io.StringIO(shown.stdout))
        row = {"experiment": experiment["name"], "sampler": experiment["params"].get("sampler"), "seed": experiment["params"].get("seed")}
        for labels, top1 in zip(rounds["labels"], rounds["top1"]):
            row[f"top1@{labels}"] = round(top1, 4)
        row["final_imbalance"] = round(rounds["imbalance_ratio"][-1], 2)
        rows.append(row)
    if not rows:
        raise InputError("no finished experiments found; run `dvc exp run -S sampler=...` first")
    frame = pl.DataFrame(rows).unique(subset=["sampler", "seed"] + [c for c in rows[0] if c.startswith("top1@")], keep="first", maintain_order=True)
    print(markdown_table(frame, frame.columns))
    return frame
