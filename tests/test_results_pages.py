"""The numbers on the results pages are those of their files: a page edited by hand, or a file re-made
without the page, fails here. Each test names the page and the file it reads."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def page(path: str) -> str:
    return (DOCS / path).read_text()


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of every markdown table row of ``text`` whose first cell is ``first_cell``."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_the_first_run_page_shows_the_committed_table():
    shown = re.search(r"```text\n(.*?)```", page("tutorials/first-run.md"), flags=re.S).group(1)
    assert shown.strip() == (ROOT / "reports" / "table.md").read_text().strip()


def test_the_default_run_page_shows_the_committed_run():
    text = page("results/default-run.md")
    rounds = pl.read_csv(ROOT / "reports" / "rounds.csv")
    metrics = json.loads((ROOT / "metrics.json").read_text())
    [row] = table_rows(text, "base (round-robin, default)")
    assert row[1:9] == [f"{value:.4f}" for value in rounds["top1"]]
    assert float(row[9]) == metrics["final_imbalance"]
    full = re.search(r"reaches \*\*([\d.]+)% top-1, ([\d.]+)% top-5\*\*", text)
    assert (float(full.group(1)), float(full.group(2))) == (round(metrics["full_top1"] * 100, 1), round(metrics["full_top5"] * 100, 1))


def _interval(text: str) -> list[float]:
    return [float(number) for number in re.findall(r"[+-]?\d+\.\d+", text)]


def test_the_study_page_table_is_the_study_summary():
    text = page("results/study.md")
    summary = pl.read_csv(ROOT / "reports" / "study" / "summary.csv")
    checked = 0
    for record in summary.iter_rows(named=True):
        name = record["sampler"] + (" (oracle)" if record["sampler"] == "balanced_random" else "")
        [row] = table_rows(text, name)
        offset = 1 if record["dataset"] == "balanced" else 4
        difference, verdict, imbalance = row[offset:offset + 3]
        if record["auc - random"] == "-":
            assert difference == verdict == "-"
        else:
            shown, exact = _interval(difference), _interval(record["auc - random"])
            assert all(abs(a - b) <= 0.0005 + 1e-9 for a, b in zip(shown, exact, strict=True)), (name, record["dataset"])
            assert verdict == record["vs random"]
        exact_imbalance = _interval(record["imbalance_ratio"])[0]
        assert float(imbalance) == float(f"{exact_imbalance:.3g}"), (name, record["dataset"])
        checked += 1
    assert checked == 22


def test_the_study_page_cost_is_that_of_the_cells():
    text = page("results/study.md")
    seconds = {"balanced": [], "long_tailed": []}
    for path in (ROOT / "reports" / "study" / "runs").glob("*/*/*/cell.json"):
        seconds[path.parts[-4]].append(json.loads(path.read_text())["seconds"])
    every = seconds["balanced"] + seconds["long_tailed"]
    assert len(every) == 110
    assert f"a cell {min(every)}-{max(every)} s" in text
    assert f"(median {statistics.median(seconds['balanced']):.0f} s balanced, {statistics.median(seconds['long_tailed']):.0f} s long-tailed;" in text
    assert f"{round(sum(seconds['balanced'])):,} s for the 55 balanced cells" in text
    assert f"{round(sum(seconds['long_tailed'])):,} s for the 55 long-tailed ones" in text


def test_the_head_table_is_the_head_benchmark():
    text = page("results/benchmarks.md")
    results = ROOT / "benchmarks" / "results"
    for name in ("head_800x1280x10.json", "head_2000x1280x10.json"):
        data = json.loads((results / name).read_text())
        [row] = [cells for cells in (line.strip("|").split("|") for line in text.splitlines() if f"`{name}`" in line)]
        sgd, lbfgs = row[1], row[2]
        assert sgd.strip().startswith(f"{data['sgd']['seconds']:.2f} s") and f"{data['sgd']['val_top1']:.4f}" in sgd
        assert lbfgs.strip().startswith(f"{data['lbfgs']['seconds']:.2f} s, {data['lbfgs']['val_top1']:.4f}")
        assert f"({data['lbfgs']['evaluations']} evaluations, l2 {data['lbfgs']['l2']:g})" in lbfgs


def test_the_selection_grid_table_is_its_two_results_files():
    """benchmarks.md's before/after table, as `python -m benchmarks.selection_grid --table` prints it
    from selection_grid_before.json (before) and selection_grid.json (now)."""
    from benchmarks.selection_grid import markdown_table

    results = ROOT / "benchmarks" / "results"
    before = json.loads((results / "selection_grid_before.json").read_text())
    now = json.loads((results / "selection_grid.json").read_text())
    printed = markdown_table(before, now).strip().splitlines()
    shown = [line for line in page("results/benchmarks.md").splitlines() if line.startswith("| pool |") or
             re.match(r"\| (realistic|imagenet) \| [\d.]+% \|", line) or line == "|---|---|---|---|---|---|---|"]
    assert len(printed) == 44 and shown == printed
