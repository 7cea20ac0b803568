"""Report commands: this run's results (the ``report`` stage) and the comparison of every experiment.

``al report --scope run`` (the ``report`` stage, ``stages/report.py``) reads ``runs/*/metrics.json``
and writes ``metrics.json``, ``reports/rounds.csv``, ``reports/table.md`` and ``reports/figures/``.
``al report`` (scope ``all``) gathers the workspace and the DVC experiments ``dvc exp show``
lists (the current commit's; ``--all-commits``: of every commit; see ``reporting.experiments`` for which runs are
compared) and writes ``reports/compare/``: figures, ``index.html``, CSVs (``left_out.csv``: every
run not compared, and why).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from al_core.artifacts import atomic_path
from al_core.errors import InputError
from pipeline.artifacts import REPORTS_DIR
from reporting.comparison import Comparison
from reporting.experiments import Gathered, gather_experiments
from pipeline.tables import markdown_table
from reporting.pages import check_in_browser, write_pages

COMPARE_DIR = REPORTS_DIR / "compare"


def write_figures(comparison: Comparison, directory: Path) -> dict[str, list[Path]]:
    """learning_curves, balance and class_histograms (PNG + SVG) into ``directory``."""
    from reporting import figures

    colors = figures.group_colors(comparison.groups)
    accuracy = {metric: comparison.bands(metric, "labels") for metric in ("top1", "top5")}
    balance = {metric: comparison.bands(metric, "round_index") for metric in ("imbalance_ratio", "entropy")}
    return {
        "learning_curves": figures.learning_curves(accuracy, comparison.full, colors, directory),
        "balance": figures.balance(balance, colors, directory),
        "class_histograms": figures.class_histograms(comparison.histograms(), colors, directory),
    }


def left_out_table(gathered: Gathered) -> pl.DataFrame:
    return pl.DataFrame(gathered.left_out, schema={"run": pl.String, "why": pl.String}, orient="row")


def compared(gathered: Gathered) -> Comparison:
    """The comparison of the gathered runs; when every run was left out, an error naming why (the damaged file)."""
    if not gathered.experiments and gathered.left_out:
        reasons = "; ".join(f"{name}: {why}" for name, why in gathered.left_out[:3])
        raise InputError(f"no finished experiments to compare, every run was left out ({reasons})")
    return Comparison.of(gathered.experiments)


def run_report_all(all_commits: bool = False, out: Path = COMPARE_DIR, check: bool = False, any_code: bool = False) -> Path:
    """Every experiment: figures, CSVs and index.html in ``out``; returns index.html.

    ``check``: open index.html in headless Chromium, screenshot it to ``out/screenshot.png`` and
    fail unless every figure decoded. ``any_code``: compare runs of other code versions too."""
    gathered = gather_experiments(all_commits, any_code)
    experiments = gathered.experiments
    comparison = compared(gathered)
    out.mkdir(parents=True, exist_ok=True)
    figures_written = write_figures(comparison, out)
    tables = {"labels_needed": comparison.labels_needed(), "experiments": comparison.experiments_table(),
              "left_out": left_out_table(gathered)}
    for name, table in tables.items():
        with atomic_path(out / f"{name}.csv", suffix=".csv") as tmp:
            table.write_csv(tmp)
    with atomic_path(out / "rounds.csv", suffix=".csv") as tmp:
        comparison.rounds.with_columns(pl.col("counts").cast(pl.List(pl.String)).list.join(" ")).write_csv(tmp)
    index = write_pages(comparison, tables, figures_written, out)
    print(f"report: {len(experiments)} experiment(s), {len(comparison.groups)} sampler group(s) -> {index}")
    for name, why in gathered.left_out:
        print(f"report: left out {name}: {why}")
    print(markdown_table(tables["labels_needed"]))
    if check:
        loaded, total = check_in_browser(index, out / "screenshot.png")
        if loaded != total:
            raise InputError(f"{index}: only {loaded} of {total} figures loaded in headless Chromium")
        print(f"report: headless Chromium shows all {total} figures ({out / 'screenshot.png'})")
    return index


def run_compare(all_commits: bool = False, any_code: bool = False) -> pl.DataFrame:
    """Print one row per experiment: top-1 at each label count, then final imbalance."""
    gathered = gather_experiments(all_commits, any_code)
    comparison = compared(gathered)
    for name, why in gathered.left_out:
        print(f"compare: left out {name}: {why}")
    wide = (comparison.rounds.with_columns(pl.format("top1@{}", pl.col("labels")).alias("at"))
            .pivot(on="at", index=["experiment", "group", "seed"], values="top1", aggregate_function="first"))
    finals = comparison.experiments_table().select("experiment", pl.col("final imbalance"))
    table = wide.join(finals, on="experiment", how="left").rename({"group": "sampler"}).sort("sampler", "seed")
    print(markdown_table(table))
    return table
