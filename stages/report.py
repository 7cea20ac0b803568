"""report: this run's results (the DVC stage) and the comparison of every experiment (``al report``).

``al report --scope run`` (the ``report`` stage) reads ``runs/*/metrics.json`` and writes
``metrics.json``, ``reports/rounds.csv``, ``reports/table.md`` and ``reports/figures/``.
``al report`` (scope ``all``) gathers the workspace and every DVC experiment (of any baseline
commit; ``--head-only``: of the current one) from their committed ``reports/rounds.csv`` and
``metrics.json`` and writes ``reports/compare/``: figures, ``index.html``, ``summary.md``, CSVs.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from al_core.artifacts import atomic_path, read_json, write_json
from al_core.curves import labels_to_reach, mean_confidence_band, sorted_class_counts
from al_core.errors import InputError
from al_core.samplers import SAMPLERS
from stages.common import FULL_DIR, REPORTS_DIR, Params, round_dir
from stages.report_pages import check_in_browser, markdown_table, write_pages

ROUNDS_CSV = REPORTS_DIR / "rounds.csv"
TABLE_MD = REPORTS_DIR / "table.md"
RUN_FIGURES = REPORTS_DIR / "figures"
COMPARE_DIR = REPORTS_DIR / "compare"
SUMMARY = "metrics.json"
REACH_FRACTIONS = (0.90, 0.95, 0.99, 1.00)
HISTOGRAM_ROUNDS = 4
# Where each metric can lie: the symmetric t-interval is clipped to it for display.
METRIC_BOUNDS = {"top1": (0.0, 1.0), "top5": (0.0, 1.0), "entropy": (0.0, 1.0), "imbalance_ratio": (1.0, np.inf)}


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


@dataclass(frozen=True)
class Experiment:
    """One finished run: its name, flattened params, per-round results and full-data probe."""

    name: str
    params: dict
    rounds: pl.DataFrame
    full: dict | None

    @property
    def seed(self):
        return self.params.get("seed")


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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


def workspace_experiment() -> Experiment | None:
    """The workspace's last ``report`` output, if it has one and ``dvc status`` finds it current."""
    if not ROUNDS_CSV.exists():
        return None
    status = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if status.returncode != 0 or json.loads(status.stdout or "{}"):
        print("report: leaving out the workspace: it has changes `dvc repro` has not run yet")
        return None
    summary = read_json(Path(SUMMARY)) if Path(SUMMARY).exists() else {}
    return Experiment("workspace", flatten(Params().data), pl.read_csv(ROUNDS_CSV), _full_from_summary(summary))


def _full_from_summary(summary: dict) -> dict | None:
    if "full_top1" not in summary:
        return None
    return {"top1": summary["full_top1"], "top5": summary.get("full_top5")}


def _dvc_experiment_revs(head_only: bool) -> list[dict]:
    """Name, rev, timestamp and params of every run ``dvc exp show --json`` lists, newest first.

    Without ``head_only`` this is ``--all-commits``: experiments stay in the report after their
    baseline commit is no longer HEAD.
    """
    command = ["dvc", "exp", "show", "--json"] + ([] if head_only else ["--all-commits"])
    try:
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise InputError(f"`{' '.join(command)}` failed: {getattr(error, 'stderr', error)}") from error
    found = []

    def visit(entry: dict) -> None:
        data = entry.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        rev = data.get("rev") or entry.get("rev")
        if rev and rev != "workspace" and params:
            found.append({"name": entry.get("name") or rev[:7], "rev": rev, "params": params,
                          "timestamp": data.get("timestamp") or ""})
        for experiment in entry.get("experiments") or []:
            for executed in experiment.get("revs") or []:
                visit(executed)

    for baseline in json.loads(output or "[]"):
        visit(baseline)
    return sorted(found, key=lambda entry: entry["timestamp"], reverse=True)


def _git_show(rev: str, path: str) -> str | None:
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def gather_experiments(head_only: bool = False) -> list[Experiment]:
    """The workspace plus every DVC experiment with a committed reports/rounds.csv.

    One run per parameter set (the params all runs have): the workspace's, else the newest. Runs
    with equal params are the same run (a baseline commit and the queued experiment that reproduced it) or a rerun with
    other code; counting them twice would fake extra seeds.
    """
    experiments = []
    workspace = workspace_experiment()
    if workspace is not None:
        experiments.append(workspace)
    for entry in tqdm(_dvc_experiment_revs(head_only), desc="report: reading experiments", unit="exp", leave=False):
        rounds_text = _git_show(entry["rev"], ROUNDS_CSV.as_posix())
        if rounds_text is None:
            continue
        summary_text = _git_show(entry["rev"], SUMMARY)
        full = _full_from_summary(json.loads(summary_text)) if summary_text else None
        experiments.append(Experiment(entry["name"], flatten(entry["params"]), pl.read_csv(io.StringIO(rounds_text)), full))
    shared = shared_keys(experiments)
    unique, seen = [], set()
    for experiment in experiments:
        key = json.dumps({k: experiment.params[k] for k in shared}, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(experiment)
    return unique


def shared_keys(experiments: list[Experiment]) -> list[str]:
    """Params every experiment has: a key added to params.yaml later cannot tell older runs apart."""
    if not experiments:
        return []
    return sorted(set.intersection(*(set(experiment.params) for experiment in experiments)))


def group_name(params: dict, varying: list[str]) -> str:
    """The sampler, plus every other param that differs between experiments (seed and schedule aside)."""
    extra = [f"{key}={params.get(key)}" for key in varying if key not in ("sampler", "seed") and not key.startswith("schedule.")]
    return ", ".join([str(params.get("sampler"))] + extra)


@dataclass(frozen=True)
class Comparison:
    """Tidy per-round results of several experiments, grouped by sampler (and varied params)."""

    rounds: pl.DataFrame  # experiment, group, seed, round_index, round, labels, metrics..., counts
    full: pl.DataFrame  # group, top1, top5 (mean over the group's experiments)
    groups: list[str]

    @classmethod
    def of(cls, experiments: list[Experiment]) -> "Comparison":
        if not experiments:
            raise InputError("no finished experiments found: run `dvc repro` or `dvc exp run -S sampler=...` first")
        keys = shared_keys(experiments)
        varying = [key for key in keys if len({json.dumps(e.params.get(key), default=str) for e in experiments}) > 1]
        frames, full_rows = [], []
        for experiment in experiments:
            group = group_name(experiment.params, varying)
            rounds = experiment.rounds.with_row_index("round_index").with_columns(
                pl.lit(experiment.name).alias("experiment"),
                pl.lit(group).alias("group"),
                pl.lit(str(experiment.seed)).alias("seed"),
                pl.col("round_index").cast(pl.Int64),
                pl.col("class_counts").cast(pl.String).str.split(" ").cast(pl.List(pl.Int64)).alias("counts"),
            )
            frames.append(rounds.select("experiment", "group", "seed", "round_index", "round", "labels", "top1", "top5",
                                        "imbalance_ratio", "entropy", "counts"))
            if experiment.full is not None:
                full_rows.append({"group": group, "top1": experiment.full.get("top1"), "top5": experiment.full.get("top5")})
        rounds = pl.concat(frames)
        order = {name: index for index, name in enumerate(SAMPLERS)}
        groups = sorted(rounds["group"].unique().to_list(), key=lambda g: (order.get(g.split(",")[0], len(order)), g))
        full = (pl.DataFrame(full_rows, schema={"group": pl.String, "top1": pl.Float64, "top5": pl.Float64})
                .group_by("group").agg(pl.col("top1").mean(), pl.col("top5").mean()).sort("group"))
        return cls(rounds=rounds, full=full, groups=groups)

    def bands(self, metric: str, x: str) -> pl.DataFrame:
        """Per group and ``x``: mean over seeds of ``metric`` and its 95% t-interval (clipped to
        the metric's range: accuracies and entropy in [0, 1], imbalance ratio >= 1)."""
        rows = []
        keep = ["round"] if x == "round_index" else []
        lowest, highest = METRIC_BOUNDS.get(metric, (-np.inf, np.inf))
        for key, part in self.rounds.group_by(["group", x] + keep, maintain_order=True):
            mean, low, high = mean_confidence_band(part[metric].to_numpy())
            low, high = max(low, lowest), min(high, highest)
            rows.append(dict(zip(["group", x] + keep, key)) | {"mean": mean, "low": low, "high": high, "seeds": part.height})
        return pl.DataFrame(rows).sort("group", x)

    def histograms(self, max_rounds: int = HISTOGRAM_ROUNDS) -> pl.DataFrame:
        """Sorted class counts for up to ``max_rounds`` rounds, evenly spaced, first and last included."""
        indices = sorted(self.rounds["round_index"].unique().to_list())
        picks = sorted({indices[int(i)] for i in np.round(np.linspace(0, len(indices) - 1, min(max_rounds, len(indices))))})
        rows = []
        for (group, round_index), part in self.rounds.filter(pl.col("round_index").is_in(picks)).group_by(["group", "round_index"]):
            counts = np.stack([np.asarray(c) for c in part["counts"].to_list()])
            rows.append({"group": group, "round_index": round_index, "round": part["round"][0],
                         "labels": int(part["labels"].mean()), "counts": sorted_class_counts(counts).tolist()})
        return pl.DataFrame(rows).sort("group", "round_index")

    def labels_needed(self) -> pl.DataFrame:
        """Labels each group needs for its mean top-1 to reach a fraction of the full-data top-1 (Table 3)."""
        top1 = self.bands("top1", "labels")
        rows = []
        for group in self.groups:
            curve = top1.filter(pl.col("group") == group).sort("labels")
            full = self.full.filter(pl.col("group") == group)
            best = curve.row(int(np.argmax(curve["mean"].to_numpy())), named=True)
            row = {"sampler": group, "seeds": int(curve["seeds"].max()),
                   "best top-1": f"{best['mean']:.4f} @ {best['labels']}"}
            full_top1 = full["top1"][0] if full.height else None
            row["full-data top-1"] = "-" if full_top1 is None else f"{full_top1:.4f}"
            for fraction in REACH_FRACTIONS:
                reached = None if full_top1 is None else labels_to_reach(curve["labels"].to_numpy(), curve["mean"].to_numpy(), fraction * full_top1)
                row[f"{fraction:.0%} of full"] = "-" if full_top1 is None else (str(reached) if reached else f"> {curve['labels'].max()}")
            rows.append(row)
        return pl.DataFrame(rows)

    def experiments_table(self) -> pl.DataFrame:
        finals = self.rounds.group_by("experiment", maintain_order=True).agg(
            pl.col("group").first().alias("sampler"), pl.col("seed").first(), pl.col("labels").last().alias("final labels"),
            pl.col("top1").last().alias("final top-1"), pl.col("top5").last().alias("final top-5"),
            pl.col("top1").mean().alias("mean top-1"), pl.col("imbalance_ratio").last().alias("final imbalance"),
            pl.col("entropy").last().alias("final entropy"),
        )
        return finals.sort("sampler", "seed")


def write_figures(comparison: Comparison, directory: Path) -> dict[str, list[Path]]:
    """learning_curves, balance and class_histograms (PNG + SVG) into ``directory``."""
    from stages import figures

    colors = figures.group_colors(comparison.groups)
    accuracy = {metric: comparison.bands(metric, "labels") for metric in ("top1", "top5")}
    balance = {metric: comparison.bands(metric, "round_index") for metric in ("imbalance_ratio", "entropy")}
    return {
        "learning_curves": figures.learning_curves(accuracy, comparison.full, colors, directory),
        "balance": figures.balance(balance, colors, directory),
        "class_histograms": figures.class_histograms(comparison.histograms(), colors, directory),
    }


def run_report_all(head_only: bool = False, out: Path = COMPARE_DIR, check: bool = False) -> Path:
    """Every experiment: figures, CSVs, summary.md and index.html in ``out``; returns index.html.

    ``check``: open index.html in headless Chromium, screenshot it to ``out/screenshot.png`` and
    fail unless every figure decoded."""
    experiments = gather_experiments(head_only)
    comparison = Comparison.of(experiments)
    out.mkdir(parents=True, exist_ok=True)
    figures_written = write_figures(comparison, out)
    tables = {"labels_needed": comparison.labels_needed(), "experiments": comparison.experiments_table()}
    for name, table in tables.items():
        with atomic_path(out / f"{name}.csv", suffix=".csv") as tmp:
            table.write_csv(tmp)
    with atomic_path(out / "rounds.csv", suffix=".csv") as tmp:
        comparison.rounds.with_columns(pl.col("counts").cast(pl.List(pl.String)).list.join(" ")).write_csv(tmp)
    index = write_pages(comparison, tables, figures_written, out)
    print(f"report: {len(experiments)} experiment(s), {len(comparison.groups)} sampler group(s) -> {index}")
    print(markdown_table(tables["labels_needed"]))
    if check:
        loaded, total = check_in_browser(index, out / "screenshot.png")
        if loaded != total:
            raise InputError(f"{index}: only {loaded} of {total} figures loaded in headless Chromium")
        print(f"report: headless Chromium shows all {total} figures ({out / 'screenshot.png'})")
    return index


def run_compare(head_only: bool = False) -> pl.DataFrame:
    """Print one row per experiment: top-1 at each label count, then final imbalance."""
    comparison = Comparison.of(gather_experiments(head_only))
    wide = (comparison.rounds.with_columns(pl.format("top1@{}", pl.col("labels")).alias("at"))
            .pivot(on="at", index=["experiment", "group", "seed"], values="top1", aggregate_function="first"))
    finals = comparison.experiments_table().select("experiment", pl.col("final imbalance"))
    table = wide.join(finals, on="experiment", how="left").rename({"group": "sampler"}).sort("sampler", "seed")
    print(markdown_table(table))
    return table
