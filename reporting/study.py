"""``al study report``: the statistics of a study's cells (``reports/study/runs``), per dataset.

For every dataset, sampler and round: the mean top-1 over seeds and its 95% t-interval; the
**paired** difference to ``random`` (same seed = same s0) with its 95% t-interval, flagged
significant only when the interval excludes 0; per run, the area under the learning curve (top-1
against labels, trapezoids, divided by the label range: the mean top-1 over the curve) and its
paired difference to random; the final imbalance ratio and label entropy; and the labels each
sampler's mean curve needs to reach 90/95/99% of the full-data probe (paper Table 3; "not
reached" where it does not). Nothing is bolded: the flags say which differences the seeds support.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from al_core.artifacts import atomic_path
from al_core.curves import labels_to_reach, mean_confidence_band
from al_core.errors import InputError
from pipeline.study import GRID, RESULTS, load_grid
from pipeline.tables import markdown_table

STUDY_DIR = Path("reports/study")
REACH = (0.90, 0.95, 0.99)
BASELINE = "random"


ROUND_COLUMNS = {"round": pl.String, "labels": pl.Int64, "top1": pl.Float64, "imbalance_ratio": pl.Float64, "entropy": pl.Float64}


def _cell_json(path: Path, redo: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is missing or damaged ({error}); {redo}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a JSON object; {redo}")
    return data


def load_cells(results: Path = RESULTS) -> pl.DataFrame:
    """One row per (dataset, sampler, seed, round): labels, top1, imbalance_ratio, entropy, full_top1, code."""
    frames = []
    for rounds_file in sorted(results.glob("*/*/seed*/rounds.csv")):
        folder = rounds_file.parent
        dataset, sampler, seed = folder.parent.parent.name, folder.parent.name, int(folder.name.removeprefix("seed"))
        redo = f"redo the cell with `al study run --only {dataset}/{sampler}/{folder.name} --force`"
        metrics, info = (_cell_json(folder / name, redo) for name in ("metrics.json", "cell.json"))
        try:
            frame = pl.read_csv(rounds_file, schema_overrides=ROUND_COLUMNS).with_row_index("round_index").select(
                pl.lit(dataset).alias("dataset"), pl.lit(sampler).alias("sampler"), pl.lit(seed).alias("seed"),
                pl.col("round_index").cast(pl.Int64), "round", "labels", "top1", "imbalance_ratio", "entropy",
                pl.lit(metrics.get("full_top1"), dtype=pl.Float64).alias("full_top1"), pl.lit(info.get("code")).alias("code"),
            )
        except (OSError, pl.exceptions.PolarsError) as error:
            raise InputError(f"{rounds_file} is damaged ({str(error).splitlines()[0][:120]}); {redo}") from None
        frames.append(frame)
    if not frames:
        raise InputError(f"no study results under {results}: run `al study run` first")
    return pl.concat(frames)


def area_under_curve(labels: np.ndarray, top1: np.ndarray) -> float:
    """Trapezoid area of top-1 against labels, divided by the label range (a mean top-1)."""
    order = np.argsort(labels)
    labels, top1 = labels[order].astype(np.float64), top1[order].astype(np.float64)
    if labels[-1] == labels[0]:
        return float(top1.mean())
    return float(np.sum((top1[1:] + top1[:-1]) / 2 * np.diff(labels)) / (labels[-1] - labels[0]))


def _band(values: np.ndarray) -> dict:
    mean, low, high = mean_confidence_band(np.asarray(values, dtype=np.float64))
    return {"mean": mean, "low": low, "high": high, "n": int(len(values))}


def _significance(band: dict) -> str:
    if band["n"] < 2:
        return "n/a (1 seed)"
    if band["low"] > 0:
        return "better"
    if band["high"] < 0:
        return "worse"
    return "within noise"


def curves(cells: pl.DataFrame) -> pl.DataFrame:
    """dataset, sampler, round_index, labels, mean, low, high, n of top-1 over seeds."""
    rows = []
    for (dataset, sampler, round_index), part in cells.group_by(["dataset", "sampler", "round_index"], maintain_order=True):
        rows.append({"dataset": dataset, "sampler": sampler, "round_index": round_index, "labels": int(part["labels"].mean()),
                     **_band(part["top1"].to_numpy())})
    return pl.DataFrame(rows).sort("dataset", "sampler", "round_index")


def paired_differences(cells: pl.DataFrame, baseline: str = BASELINE) -> pl.DataFrame:
    """Per dataset, sampler, round: mean of (top1 - baseline's top1 at the same seed and round) and its interval."""
    base = cells.filter(pl.col("sampler") == baseline).select("dataset", "seed", "round_index", pl.col("top1").alias("base_top1"))
    joined = cells.filter(pl.col("sampler") != baseline).join(base, on=["dataset", "seed", "round_index"], how="inner")
    rows = []
    for (dataset, sampler, round_index), part in joined.group_by(["dataset", "sampler", "round_index"], maintain_order=True):
        band = _band((part["top1"] - part["base_top1"]).to_numpy())
        rows.append({"dataset": dataset, "sampler": sampler, "round_index": round_index, "labels": int(part["labels"].mean()),
                     **band, "vs_random": _significance(band)})
    schema = {"dataset": pl.String, "sampler": pl.String, "round_index": pl.Int64, "labels": pl.Int64, "mean": pl.Float64,
              "low": pl.Float64, "high": pl.Float64, "n": pl.Int64, "vs_random": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("dataset", "sampler", "round_index")


def summary(cells: pl.DataFrame, baseline: str = BASELINE, curve: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per dataset and sampler: AUC, its paired difference to random, final top-1,
    final imbalance and entropy (mean [95% interval]), labels to reach 90/95/99% of full."""
    runs = cells.group_by(["dataset", "sampler", "seed"], maintain_order=True).agg(
        pl.col("labels"), pl.col("top1"), pl.col("imbalance_ratio").last(), pl.col("entropy").last(),
        pl.col("full_top1").first())
    runs = runs.with_columns(pl.struct("labels", "top1").map_elements(
        lambda row: area_under_curve(np.asarray(row["labels"]), np.asarray(row["top1"])), return_dtype=pl.Float64).alias("auc"),
        pl.col("top1").list.last().alias("final_top1"))
    curve = curves(cells) if curve is None else curve
    rows = []
    for (dataset, sampler), part in runs.group_by(["dataset", "sampler"], maintain_order=True):
        row = {"dataset": dataset, "sampler": sampler, "seeds": part.height}
        for column in ("auc", "final_top1", "imbalance_ratio", "entropy"):
            band = _band(part[column].to_numpy())
            row[column] = f"{band['mean']:.4f} [{band['low']:.4f}, {band['high']:.4f}]" if band["n"] > 1 else f"{band['mean']:.4f}"
        base = runs.filter((pl.col("dataset") == dataset) & (pl.col("sampler") == baseline)).select("seed", pl.col("auc").alias("base"))
        paired = part.join(base, on="seed", how="inner")
        if sampler != baseline and paired.height:
            band = _band((paired["auc"] - paired["base"]).to_numpy())
            row["auc - random"] = f"{band['mean']:+.4f} [{band['low']:+.4f}, {band['high']:+.4f}]" if band["n"] > 1 else f"{band['mean']:+.4f}"
            row["vs random"] = _significance(band)
        else:
            row["auc - random"], row["vs random"] = "-", "-"
        full = part["full_top1"].drop_nulls()
        mean_curve = curve.filter((pl.col("dataset") == dataset) & (pl.col("sampler") == sampler)).sort("labels")
        for fraction in REACH:
            if full.len() == 0:
                row[f"labels to {fraction:.0%} of full"] = "-"
                continue
            reached = labels_to_reach(mean_curve["labels"].to_numpy(), mean_curve["mean"].to_numpy(), fraction * float(full.mean()))
            row[f"labels to {fraction:.0%} of full"] = str(reached) if reached else "not reached"
        rows.append(row)
    return pl.DataFrame(rows).sort("dataset", "sampler")


def run_study_report(grid_path: Path = GRID, results: Path = RESULTS, out: Path = STUDY_DIR) -> Path:
    """Tables (markdown + CSV) and figures of every finished cell, by dataset; returns summary.md."""
    from reporting import figures

    grid = load_grid(grid_path)
    cells = load_cells(results)
    order = {name: index for index, name in enumerate(grid.samplers)}
    cells = cells.filter(pl.col("sampler").is_in(grid.samplers) & pl.col("dataset").is_in(list(grid.datasets)))
    codes = cells["code"].unique().to_list()
    curve = curves(cells)
    tables = {"summary": summary(cells, curve=curve), "curves": curve, "paired_differences": paired_differences(cells)}
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        with atomic_path(out / f"{name}.csv", suffix=".csv") as tmp:
            table.write_csv(tmp)
    samplers = sorted(cells["sampler"].unique().to_list(), key=lambda name: order[name])
    written = figures.study_figures(tables["curves"], tables["paired_differences"], cells, list(grid.datasets), samplers, out)
    done = cells.select("dataset", "sampler", "seed").unique().height
    total = len(grid.cells())
    lines = [
        "# Study: samplers x datasets x seeds",
        "",
        f"{done} of {total} cells of `{grid_path}` have results (`al study run` runs the rest); code version(s): "
        f"{', '.join(sorted(map(str, codes)))}. Written by `al study report`.",
        "",
        "`vs random`: the paired difference to random (same seed, same s0) of the area under the learning curve, "
        "`better`/`worse` only when its 95% t-interval excludes 0, else `within noise`.",
        "",
    ]
    for path in written:
        if path.suffix == ".png":
            lines += [f"![{path.stem}]({path.name})", ""]
    summary_table = tables["summary"]
    for dataset in grid.datasets:
        part = summary_table.filter(pl.col("dataset") == dataset).drop("dataset")
        if part.height == 0:
            continue
        part = part.with_columns(pl.col("sampler").replace_strict(order, return_dtype=pl.Int64).alias("_order")).sort("_order").drop("_order")
        lines += [f"## {dataset}", "", markdown_table(part), ""]
    path = out / "summary.md"
    with atomic_path(path, suffix=".md") as tmp:
        tmp.write_text("\n".join(lines))
    print(f"study report: {done} of {total} cells -> {path}")
    return path
