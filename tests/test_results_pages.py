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
    text = " ".join(page("results/study.md").split())
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


def test_the_second_hosts_grid_table_and_counts_are_their_files():
    """benchmarks.md's table of the AVX512-BF16 host (`markdown_table(..., host="EPYC")` of its two
    grid files) and the sentence counting its cells within the targets."""
    from benchmarks.selection_grid import markdown_table

    before, now = _results("selection_grid_avx512_bf16_before_buffers.json"), _results("selection_grid_avx512_bf16.json")
    assert now["machine"]["bf16"] == "avx512_bf16" and all(row["same_picks_order_scores"] for row in now["rows"] + before["rows"])
    printed = markdown_table(before, now, host="EPYC").strip().splitlines()
    shown = [line for line in page("results/benchmarks.md").splitlines() if line.startswith(("| host |", "| EPYC |"))
             or line == "|---|---|---|---|---|---|---|---|"]
    assert len(printed) == 44 and shown == printed

    def counts(rows: list[dict]) -> tuple[int, int]:
        small = sum(row["ratio_to_bare"] <= 1.2 for row in rows if row["budget_fraction"] < 0.05)
        return small, sum(row["ratio_to_bare"] <= 1.5 for row in rows if row["budget_fraction"] == 0.1)

    (small, large), (small_before, large_before) = counts(now["rows"]), counts(before["rows"])
    flat = " ".join(page("results/benchmarks.md").split())
    assert _missing(flat, [f"{small} of the 28 cells at b/N = 0.1-1% within 1.2x of the bare product and {large} of the 14 at 10% "
                           f"within 1.5x ({small_before} and {large_before} before)",
                           f"commit {now['commit'][:7]}"]) == []


def _results(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / name).read_text())


def _missing(text: str, phrases: list[str]) -> list[str]:
    """The ``phrases`` not on the page (whitespace and line breaks compared as one space)."""
    flat = " ".join(text.split())
    return [phrase for phrase in phrases if " ".join(phrase.split()) not in flat]


def test_the_exact_selection_page_numbers_are_their_files():
    """Every figure of docs/explanation/exact-selection.md, from selection_exact.json (the 1.28M pool,
    exact selection), selection.json (the run before it), the partitioned and bfloat16 files,
    selection_scaling.json, refine_fractions_default.json and blas_blocking.json."""
    exact, before = _results("selection_exact.json"), _results("selection.json")

    def row(data: dict, sampler: str, source: str = "features") -> dict:
        [found] = [r for r in data["samplers"] if r["sampler"] == sampler and r["from"] == source]
        return found

    softmax_and_mase = ("mase", "margin", "confidence", "entropy")
    base = row(exact, "base")
    text = page("explanation/exact-selection.md")
    phrases = [f"written out as float16 logits, took {exact['bare_matmul_seconds']:.1f} s"]
    for name in ("base",) + softmax_and_mase:
        found, logits = row(exact, name), row(exact, name, "logits")
        [cells] = table_rows(text, name.upper() if name in ("base", "mase") else name)
        share = f"{100 * found['refined_fraction']:.1f}%" + (" of the pool" if name == "base" else "")
        assert cells[1:] == [f"{found['seconds']:.1f} s", f"{found['x_bare_matmul']:.2f}x", f"{found['refined_rows']:,} ({share})",
                             f"{logits['seconds']:.1f} s"], name
    phrases.append(f"No sampler held more than {max(r['peak_anonymous_rss_gib'] for r in exact['samplers'] if r['from'] == 'features'):.2f} "
                   f"GiB of resident memory beyond the memory-mapped inputs "
                   f"({max(r['peak_anonymous_rss_gib'] for r in exact['samplers'] if r['from'] == 'logits'):.2f} GiB from logits)")
    phrases.append(f"it would take about {exact['naive_extrapolated_seconds']:,.0f} s: about "
                   f"{exact['naive_extrapolated_seconds'] / base['seconds']:.0f}x BASE's time from features")
    phrases.append(f"whose bare product was {exact['bare_matmul_seconds'] / before['bare_matmul_seconds']:.1f}x as fast")
    logits_seconds = [row(before, name, "logits")["seconds"] for name in ("base",) + softmax_and_mase]
    phrases.append("bare {:.1f} s; BASE {:.1f} s ({:.2f}x), MASE {:.1f}, margin {:.1f}, confidence {:.1f}, entropy {:.1f}; from logits "
                   "{:.1f}-{:.1f} s; naive {:,.0f} s; {:.0f}x".format(
                       before["bare_matmul_seconds"], row(before, "base")["seconds"], row(before, "base")["x_bare_matmul"],
                       *(row(before, name)["seconds"] for name in softmax_and_mase), min(logits_seconds), max(logits_seconds),
                       before["naive_extrapolated_seconds"], before["naive_extrapolated_seconds"] / row(before, "base")["seconds"]))
    costs = [row(exact, name)["x_bare_matmul"] - row(before, name)["x_bare_matmul"] for name in softmax_and_mase]
    phrases.append(f"exactness costs BASE about {base['x_bare_matmul'] - row(before, 'base')['x_bare_matmul']:.1f}x of a bare product "
                   f"more than its old BLAS-only path")
    phrases.append(f"the softmax samplers and MASE about {min(costs):.1f}-{max(costs):.1f}x")
    clustering = before["clustering"]
    phrases.append(f"margin_clustering took {row(before, 'margin_clustering')['seconds']:.1f} s from features, "
                   f"{row(before, 'margin_clustering', 'logits')['seconds']:.1f} s from logits, plus {clustering['seconds']:.0f} s once "
                   f"for clustering the pool (K = {clustering['codebook_size']})")
    for name in ("badge", "coreset"):
        [part] = _results(f"selection_partitioned_{name}.json")["samplers"]
        phrases.append(f"`partitioned_{name}` (p = 10) {'took ' if name == 'badge' else ''}{part['seconds']:.0f} s with "
                       f"{part['peak_anonymous_rss_gib']:.1f} GiB")
    refused = re.search(r"would take ([\d.]+ GiB)", row(before, "balancing")["refused"]).group(1)
    phrases.append(f"`balancing` refuses the full pool ({refused} needed)")

    bf16 = {run["sampler"]: run for run in _results("selection_bf16_filter_avx2.json")["runs"]}
    scaling = {run["sampler"]: run for run in _results("selection_scaling.json")["runs"] if run["n"] == 128000}
    share = {name: 100 * run["notes"]["refined_rows"] / run["notes"]["streamed_rows"] for name, run in bf16.items()}
    float32_share = {name: 100 * run["notes"]["refined_rows"] / run["notes"]["streamed_rows"] for name, run in scaling.items()}
    seconds = [run["seconds"] for run in bf16.values()]
    assert share["margin"] == share["confidence"] == 100.0
    phrases.append(f"the streaming samplers took {min(seconds):.0f}-{max(seconds):.0f} s with it, against a "
                   f"{bf16['base']['bare_product_seconds']:.1f} s bare float32 product")
    phrases.append(f"it left {share['base']:.0f}% of the rows to the exact logits for BASE and {share['mase']:.0f}% for MASE "
                   f"(float32: {float32_share['base']:.0f}% and {float32_share['mase']:.0f}%), and every row for margin and confidence")
    runs = _results("refine_fractions_default.json")["runs"]
    low_precision = [100 * run["refined_fraction"] for run in runs if run["precision"] == "bfloat16" and run["sampler"] != "entropy"]
    assert all(run["refined_fraction"] == 1.0 for run in runs if run["precision"] == "bfloat16" and run["sampler"] == "entropy")
    float32_fractions = [100 * run["refined_fraction"] for run in runs if run["precision"] == "float32"]
    phrases.append(f"{min(low_precision):.0f}-{max(low_precision):.0f}% for MASE/BASE/margin/confidence and every row for entropy "
                   f"(float32: {min(float32_fractions):.1f}-{max(float32_fractions):.1f}%)")

    blocking = {run["pool"]: run for run in _results("blas_blocking.json")["runs"]}
    assert all(run[key]["rows"] == 0.0 for run in blocking.values()
               for key in ("blocks_of_8000_vs_8192", "blocks_of_3_vs_8192", "reversed_rows_vs_blocks_of_8192"))
    assert all(run["one_row_at_a_time_vs_blocks_of_8192"]["rows"] == 1.0 for run in blocking.values())
    changed = sorted(100 * run["one_row_at_a_time_vs_blocks_of_8192"]["logits"] for run in blocking.values())
    phrases.append(f"every row changed: {changed[0]:.0f}% of the logits on one pool, {changed[1]:.0f}% on the other")
    rarity = sorted(float(f"{1 / run['exact_logits_undecided']['share']:.2g}") for run in blocking.values())
    phrases.append(f"about 1 in {rarity[0]:,.0f} and 1 in {rarity[1]:,.0f} on the two benchmark pools")
    assert _missing(page("explanation/exact-selection.md"), phrases) == []


def _numbers(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", text)  # not the digits of names such as r00


def _shows(shown: str, value: float) -> bool:
    """``shown`` (e.g. "1.7", "1,271") is ``value`` rounded to the digits it shows (either way at a half)."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown.replace(",", "")) - value) <= 0.5 * 10.0**-decimals + 1e-9


def _cell_matches(cell: str, values: list[float]) -> bool:
    """The numbers of a table cell are ``values``; a range "a-b" whose ends look the same is shown once."""
    shown = _numbers(cell)
    if len(shown) == len(values) - 1 and len(values) >= 2 and _shows(shown[0], values[0]) and _shows(shown[0], values[1]):
        shown = [shown[0]] + shown
    return len(shown) == len(values) and all(_shows(a, b) for a, b in zip(shown, values))


def test_the_pipeline_table_is_its_two_results_files():
    """benchmarks.md's 1.28M pipeline table and the sentences under it, from pipeline_scale.json
    (then) and pipeline_scale_exact.json (now)."""
    text = page("results/benchmarks.md")
    runs = [_results("pipeline_scale.json"), _results("pipeline_scale_exact.json")]

    def seconds(run: dict, prefix: str) -> list[float]:
        return [stage["seconds"] for stage in run["stages"] if stage["stage"].startswith(prefix)]

    def memory(run: dict, *prefixes: str) -> float:
        return max(stage["peak_rss_anon_gib"] for stage in run["stages"] if stage["stage"].startswith(prefixes))

    def span(values: list[float]) -> list[float]:
        return [min(values), max(values)]

    def select(run: dict) -> list[float]:
        later = [value for stage in run["stages"] if stage["stage"].startswith("select") and stage["stage"] != "select r00"
                 for value in [stage["seconds"]]]
        return span(later) + seconds(run, "select r00")

    expected = {
        "`prepare`": [seconds(run, "prepare") for run in runs] + [[memory(run, "prepare") for run in runs]],
        "`embed`": [seconds(run, "embed") for run in runs] + [[memory(run, "embed") for run in runs]],
        "`init`, `labels@*`": [span(seconds(run, "init") + seconds(run, "labels")) for run in runs]
                              + [[memory(run, "init", "labels") for run in runs]],
        "`train@rK`": [span(seconds(run, "train")) for run in runs] + [[memory(run, "train") for run in runs]],
        "`select@rK`": [select(run) for run in runs] + [[memory(run, "select") for run in runs]],
        "`evaluate@rK`": [span(seconds(run, "evaluate")) for run in runs] + [[memory(run, "evaluate") for run in runs]],
        "`full`": [[runs[0]["full"]["seconds_per_epoch"], *seconds(runs[0], "full"), runs[0]["full"]["epochs_run"]],
                   [runs[1]["full"]["seconds_per_epoch"], *seconds(runs[1], "full")], [memory(run, "full") for run in runs]],
        "`report`": [seconds(run, "report") for run in runs] + [[memory(run, "report") for run in runs]],
        "all of `dvc repro`": [[run["dvc_repro_seconds"], run["dvc_repro_seconds"] / 60, run["dvc_overhead_seconds"]] for run in runs],
    }
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.split("### The whole pipeline")[1].split("\n## ")[0].splitlines() if line.startswith("| ")}
    for first, values in expected.items():
        [cells] = [cells for name, cells in rows.items() if name.startswith(first)]
        for cell, wanted in zip(cells[1:len(values) + 1], values, strict=True):
            assert _cell_matches(cell, wanted), (first, cell, wanted)
    [cluster] = [cells for name, cells in rows.items() if name.startswith("`cluster`")]
    assert _cell_matches(cluster[1], seconds(runs[0], "cluster")) and _cell_matches(cluster[3], [memory(runs[0], "cluster")])

    def round_minutes(run: dict) -> list[float]:
        minutes = [sum(stage["seconds"] for stage in run["stages"] if stage["stage"].split(" ")[:2] in
                       (["train", name], ["select", name], ["evaluate", name])) / 60 for name in ("r00", "r01", "r02")]
        return span(minutes)

    now, then = (" ".join(_numbers(part)[:2]) for part in
                 re.search(r"a round \(train \+ evaluate \+ select\) takes ([\d.-]+) minutes on the AVX-512 host \(([\d.-]+) on",
                           text).groups())
    assert _cell_matches(now, round_minutes(runs[1])) and _cell_matches(then, round_minutes(runs[0]))
    largest = max(stage["peak_rss_anon_gib"] for run in runs for stage in run["stages"])
    assert f"no stage holds more than {largest:.1f} GiB" in " ".join(text.split())
    assert f"up to ~{50 * runs[0]['full']['seconds_per_epoch'] / 3600:.1f} h at {runs[0]['full']['seconds_per_epoch']:.0f} s an epoch" in " ".join(text.split())
    assert f"The first round's selection ({seconds(runs[0], 'select r00')[0]:.0f} s, {seconds(runs[1], 'select r00')[0]:.0f} s)" in text
    assert f"held {runs[1]['dvc_cache_gib']:.1f} GiB beside the outputs" in " ".join(text.split())
    first = _results("pipeline_scale_exact_2026-12-06_first.json")
    later = seconds(first, "select r01") + seconds(first, "select r02")
    assert (f"took {first['dvc_repro_seconds']:.0f} s in all: select {min(later):.0f}-{max(later):.0f} s "
            f"({seconds(first, 'select r00')[0]:.0f} s in r00), `full` {first['full']['seconds_per_epoch']:.0f} s per epoch, "
            "with the same final metrics") in " ".join(text.split())
    assert first["final_metrics"] == runs[1]["final_metrics"]
    rates = [result["images_per_second"] for name in ("extraction.json", "extraction_avx512.json")
             for result in _results(name)["results"] if result["image_size"] == 224]
    assert f"runs at {min(rates):.0f}-{max(rates):.0f} img/s at 224 px" in " ".join(text.split())


def test_the_selection_grid_sentences_are_its_files():
    """The prose under benchmarks.md's selection grid, from selection_grid.json and
    selection_grid_before.json, and the 200k paragraph from selection_issue_table_200k.json."""
    flat = " ".join(page("results/benchmarks.md").split())
    now, before = _results("selection_grid.json")["rows"], _results("selection_grid_before.json")["rows"]
    assert f"Every one of the {len(now)} selections equals the exact reference" in flat
    assert all(row["same_picks_order_scores"] for row in now)
    bare = [row["bare_product_seconds"] for row in now]
    assert f"the bare product took {min(bare):.2f}-{max(bare):.2f} s for the same pool" in flat

    def ratios(rows: list[dict], samplers: tuple[str, ...], fractions: tuple[float, ...], stream: str | None = None) -> str:
        found = [row["ratio_to_bare"] for row in rows if row["sampler"].split(" ")[0] in samplers and row["budget_fraction"] in fractions
                 and stream in (None, row.get("filter", "float32"))]
        return f"{min(found):.2f}-{max(found):.2f}x"

    assert f"so it scores almost no row on all classes ({ratios(now, ('mase',), (0.1,))} at 10%)" in flat
    assert max(row["refined_fraction"] for row in now if row["sampler"] == "mase" and row["budget_fraction"] == 0.1) < 0.001
    small, softmax = (0.001, 0.01), ("margin", "confidence", "mase", "margin_clustering")
    night = _results("selection_grid_2026-12-06_night.json")["rows"]
    assert f"so they add their whole cost: {ratios(night, softmax + ('entropy',), small)} for margin, confidence, entropy, MASE " \
           f"and margin_clustering, {ratios(night, ('base',), small)} for BASE (the night run)" in flat
    assert {row["filter"] for row in now if row["sampler"] == "entropy"} == {"float32"}
    assert f"streaming bfloat16 they took {ratios(now, softmax, small, 'bfloat16')} of it, BASE {ratios(now, ('base',), small, 'bfloat16')}; " \
           f"streaming float32 at those budgets, {ratios(now, softmax + ('entropy',), small, 'float32')}, BASE " \
           f"{ratios(now, ('base',), small, 'float32')}" in flat
    assert f"BASE at 10% ({ratios(now, ('base',), (0.1,))})" in flat
    noon = _results("selection_grid_2026-12-06_noon.json")["rows"]

    def cell(rows: list[dict], fraction: float, sampler: str) -> tuple[str, str]:
        [row] = [row for row in rows if row["pool"] == "imagenet" and row["budget_fraction"] == fraction and row["sampler"] == sampler]
        return f"{100 * row['partial_rows'] / row['streamed_rows']:.1f}%", f"{row['ratio_to_bare']:.2f}x"

    (a, a_x), (b, b_x) = cell(noon, 0.1, "margin"), cell(now, 0.1, "margin")
    (c, c_x), (e, e_x) = cell(noon, 0.01, "margin_clustering"), cell(now, 0.01, "margin_clustering")
    assert (f"margin at b/N = 10% scored {b} of the rows from two classes' exact logits against {a} in the noon run ({b_x} against "
            f"{a_x}), margin_clustering at 1% {e} against {c} ({e_x} against {c_x})") in flat
    between = _results("selection_grid_2026-12-02.json")
    assert between["date"] == "2026-12-02" and len(between["rows"]) == len(now) == len(before)

    def within(rows: list[dict]) -> tuple[int, int, int, int]:
        small = [row["ratio_to_bare"] for row in rows if row["budget_fraction"] in (0.001, 0.01)]
        large = [row["ratio_to_bare"] for row in rows if row["budget_fraction"] == 0.1]
        return sum(r <= 1.2 for r in small), len(small), sum(r <= 1.5 for r in large), len(large)

    (small_in, small, large_in, large), then = within(now), within(night)
    assert (f"Against the night run, {small_in} of the {small} cells at b/N = 0.1-1% are within 1.2x of the bare product "
            f"({then[0]} then) and {large_in} of the {large} at 10% within 1.5x ({then[2]} then)") in flat

    issue = {row["sampler"]: row for row in _results("selection_issue_table_200k.json")["rows"]}
    bare = [row["bare_product_seconds"] for row in issue.values()]
    assert f"the bare product took {min(bare):.2f}-{max(bare):.2f} s within the run" in flat
    base, margin, mase = issue["base"], issue["margin"], issue["mase"]
    assert (f"base {base['ratio_to_bare']:.2f}x the bare product ({base['seconds']:.1f} s, {100 * base['refined_fraction']:.1f}% of the "
            f"rows scored exactly), margin {margin['ratio_to_bare']:.2f}x ({margin['seconds']:.1f} s, {100 * margin['refined_fraction']:.1f}%), "
            f"mase {mase['ratio_to_bare']:.2f}x ({mase['seconds']:.1f} s; {100 * mase['refined_fraction']:.2f}% of the rows on all their "
            f"exact logits") in flat


def test_the_default_run_samplers_table_is_its_runs():
    """default-run.md's samplers table: each row from the run it names (the study's balanced cells,
    the sequential BASE cells of benchmarks/default_run_base_sequential.yaml, reports/rounds.csv),
    and the sentences under it from the same rows."""
    text = page("results/default-run.md")
    cells = {"base (round-robin, default)": ROOT / "reports" / "rounds.csv",
             "base (round-robin), seed 1": ROOT / "reports/study/runs/balanced/base/seed1/rounds.csv",
             "base (sequential, authors' code)": ROOT / "benchmarks/results/default_run_base_sequential/balanced_sequential/base/seed0/rounds.csv",
             "base (sequential), seed 1": ROOT / "benchmarks/results/default_run_base_sequential/balanced_sequential/base/seed1/rounds.csv"}
    names = [line.split("|")[1].strip() for line in text.split("## Samplers on the default")[1].splitlines()
             if line.startswith("| ") and not line.startswith("| sampler")]
    finals = {}
    for name in names:
        match = re.fullmatch(r"([a-z_]+)(?:, seed (\d))?", name)
        path = cells.get(name) or ROOT / f"reports/study/runs/balanced/{match.group(1)}/seed{match.group(2) or 0}/rounds.csv"
        rounds = pl.read_csv(path)
        [row] = table_rows(text, name)
        assert row[1:9] == [f"{value:.4f}" for value in rounds["top1"]], name
        assert row[9] == f"{rounds['imbalance_ratio'][-1]:.3g}", name
        finals[name] = (rounds["top1"][-1], rounds["imbalance_ratio"][-1])
    assert len(names) == 13
    flat = " ".join(text.split())
    uncertainty = [finals[name][1] for name in ("confidence", "margin", "entropy", "mase", "margin, seed 1")]
    assert f"(imbalance {min(uncertainty):.1f}-{max(uncertainty):.1f} after 800 labels)" in flat
    sequential = "base (sequential, authors' code)"
    assert (f"({finals['base (round-robin, default)'][1]:.2f} and {finals['base (round-robin), seed 1'][1]:.2f} for seeds 0 and 1 in the "
            f"paper's round-robin order, {finals[sequential][1]:.2f} and {finals['base (sequential), seed 1'][1]:.2f} "
            "in the sequential one)") in flat

    def mean(first: str, second: str) -> str:
        return f"{(finals[first][0] + finals[second][0]) / 2:.3f}"

    assert (f"(mean of two seeds at 800 labels: base round-robin {mean('base (round-robin, default)', 'base (round-robin), seed 1')}, "
            f"base sequential {mean(sequential, 'base (sequential), seed 1')}, margin {mean('margin', 'margin, seed 1')}, "
            f"random {mean('random', 'random, seed 1')})") in flat
    assert f"near-perfect balance ({finals['balancing'][1]:.2f})" in flat


def test_the_default_run_costs_are_their_file():
    """default-run.md's table of stage times, from pipeline_default.json (the default dvc repro, timed)."""
    text = page("results/default-run.md")
    run = _results("pipeline_default.json")

    def stages(*prefixes: str) -> list[dict]:
        return [stage for stage in run["stages"] if stage["stage"].startswith(prefixes)]

    def row(*prefixes: str) -> list[list[float]]:
        found = stages(*prefixes)
        seconds = [stage["seconds"] for stage in found]
        return [[min(seconds), max(seconds)] if len(found) > 1 else seconds, [max(stage["peak_rss_anon_gib"] for stage in found)]]

    [embed] = stages("embed")
    expected = {"`prepare`": row("prepare"), "`embed`": [[embed["seconds"], 70000 / embed["seconds"]], [embed["peak_rss_anon_gib"]]],
                "`init`, `labels@*`": row("init", "labels"), "`train@rK`": row("train"), "`select@rK`": row("select"),
                "`evaluate@rK`": row("evaluate"), "`full`": row("full"), "`report`": row("report")}
    section = text.split("## What it costs")[1].split("\n## ")[0]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ")}
    for first, values in expected.items():
        [cells] = [cells for name, cells in rows.items() if name.startswith(first)]
        for cell, wanted in zip(cells[1:], values, strict=True):
            assert _cell_matches(cell, wanted), (first, cell, wanted)
    minutes, seconds = divmod(round(run["dvc_repro_seconds"]), 60)
    [total] = [cells for name, cells in rows.items() if name.startswith("all of")]
    assert total[1] == f"{run['dvc_repro_seconds']:.0f} s ({minutes} min {seconds} s), of which DVC itself {run['dvc_overhead_seconds']:.0f} s"
    assert f"everything but `embed` takes about {(run['dvc_repro_seconds'] - embed['seconds']) / 60:.1f} minutes" in " ".join(section.split())
    rates = {name: {result["image_size"]: result["images_per_second"] for result in _results(name)["results"]}
             for name in ("extraction.json", "extraction_avx512.json")}
    flat = " ".join(section.split())
    assert f"ran at {rates['extraction.json'][96]} img/s at 96 px and {rates['extraction.json'][224]} img/s at 224 px" in flat
    assert f"at {rates['extraction_avx512.json'][96]} and {rates['extraction_avx512.json'][224]} img/s on a 2-core AVX-512 host" in flat
    assert "| `embed`: 70,000 images" in section and run["shape"] == {"dataset": "fashion_mnist", "initial_size": 100, "budget": 100,
                                                                       "rounds": 8, "sampler": "base"}


def test_the_image_size_sentence_is_its_file():
    flat = " ".join(page("results/default-run.md").split())
    sizes = {size["image_size"]: size for size in _results("image_size.json")["sizes"]}
    shown = re.search(r"reaches ([\d.]+)% test top-1 at 64 px \((\d+) img/s\), ([\d.]+)% at 96 px \((\d+) img/s\) and ([\d.]+)% at 128 px "
                      r"\((\d+) img/s\); 128 px would take ~(\d+) min to embed 70,000 images", flat).groups()
    wanted = [value for px in (64, 96, 128) for value in (100 * sizes[px]["test_top1"], sizes[px]["images_per_second"])]
    assert all(_shows(a, b) for a, b in zip(shown, wanted + [70000 / sizes[128]["images_per_second"] / 60], strict=True))


def test_the_selection_scaling_table_is_its_files():
    """fine-tuning.md's table of selection time against N and processes, from selection_scaling*.json."""
    text = page("how-to/fine-tuning.md")
    runs = [*_results("selection_scaling.json")["runs"], *_results("selection_scaling_5m.json")["runs"]]
    assert all(run["sharded_equal_to_one_process"] for run in runs)
    for n in sorted({run["n"] for run in runs}):
        mine = {run["sampler"]: run for run in runs if run["n"] == n}
        [cells] = [cells for cells in (line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("| "))
                   if cells[0].strip().startswith(f"{n:,}")]
        cells = [cell.strip() for cell in cells]
        assert cells[1] == f"{mine['base']['bare_product_seconds']:.1f} s"
        for column, sampler in ((2, "base"), (3, "mase"), (4, "margin")):
            run = mine.get(sampler)
            assert cells[column] == (f"{run['seconds']:.1f} s ({run['x_bare_product']:.2f}x)" if run else "-"), (n, sampler)
        two = [f"{mine[sampler]['seconds_2_processes']:.1f}" if sampler in mine else "-" for sampler in ("base", "mase", "margin")]
        assert cells[5] in (" / ".join(two) + " s", f"{two[0]} s / {two[1]} / {two[2]}")
    per_row = {run["n"]: (run["bare_product_seconds"] / run["n"] * 1e6, run["microseconds_per_row"]) for run in runs if run["sampler"] == "base"}
    flat = " ".join(text.split())
    product = [per_row[n][0] for n in (1281167, 5000000)]
    assert f"{min(product):.0f}-{max(product):.0f} us for the product and {per_row[5000000][1]:.0f}-{per_row[1281167][1]:.0f} us for BASE" in flat
    hours = [1e8 * per_row[n][1] / 1e6 / 3600 for n in (5000000, 1281167)]
    assert f"about {hours[0]:.1f}-{hours[1]:.1f} h for BASE" in flat
    assert f"the product alone about {1e8 * min(product) / 1e6 / 60:.0f}-{1e8 * max(product) / 1e6 / 60:.0f} min" in flat


def test_the_interval_passes_table_is_its_file():
    text = page("results/benchmarks.md")
    data = _results("interval_passes.json")
    for row in data["scores"]:
        [cells] = table_rows(text, row["score"])
        assert cells[1:] == [f"{row['slice_ms']:.1f} ms", f"{row['runs_ms']:.1f} ms ({row['runs_over_slice']:.2f}x)"]
    assert f"the float32 product of those rows took {data['product_ms_same_rows']:.0f} ms on two threads" in " ".join(text.split())
    assert f"| score intervals | one slice of {data['rows']:,} rows | runs of {data['run_rows']} rows |" in text


T_975_4 = 2.7764451051977987  # Student's t, 97.5% quantile, 4 degrees of freedom (5 seeds): a t-table value


def _auc(rounds: pl.DataFrame) -> float:
    """The study's AUC: trapezoid area under top-1 against labels, divided by the labels between."""
    labels, top1 = rounds["labels"].to_numpy().astype(float), rounds["top1"].to_numpy()
    return float(((top1[1:] + top1[:-1]) / 2 * (labels[1:] - labels[:-1])).sum() / (labels[-1] - labels[0]))


def _paired(dataset: str, first: str, second: str) -> tuple[float, float, float]:
    """Mean and 95% t-interval of the per-seed AUC difference first - second, from the study's cells."""
    runs = ROOT / "reports" / "study" / "runs" / dataset
    differences = [_auc(pl.read_csv(runs / first / f"seed{seed}" / "rounds.csv")) - _auc(pl.read_csv(runs / second / f"seed{seed}" / "rounds.csv"))
                   for seed in range(5)]
    mean, half = statistics.mean(differences), T_975_4 * statistics.stdev(differences) / 5 ** 0.5
    return mean, mean - half, mean + half


def test_the_study_page_claims_are_the_study_files():
    """The numbers in study.md's verdicts on the paper's claims: imbalance from summary.csv, paired
    AUC differences recomputed from the 110 cells."""
    flat = " ".join(page("results/study.md").split()).split("What this evidence says")[1]
    summary = pl.read_csv(ROOT / "reports" / "study" / "summary.csv")
    imbalance = {(row["dataset"], row["sampler"]): _interval(row["imbalance_ratio"])[0] for row in summary.iter_rows(named=True)}

    def shown(dataset: str, sampler: str) -> str:
        return f"{imbalance[dataset, sampler]:.1f}"

    assert f"partitioned core-set is the most imbalanced on both datasets ({shown('balanced', 'partitioned_coreset')} and " \
           f"{shown('long_tailed', 'partitioned_coreset')})".lower() in flat.lower()
    assert all(imbalance[dataset, "partitioned_coreset"] == max(v for (d, _), v in imbalance.items() if d == dataset)
               for dataset in ("balanced", "long_tailed"))
    assert f"on balanced data confidence ({shown('balanced', 'confidence')}) ties with margin_clustering " \
           f"({shown('balanced', 'margin_clustering')})" in flat
    assert f"on long-tailed data its labeled set ({shown('long_tailed', 'confidence')}) is less imbalanced than random's " \
           f"({shown('long_tailed', 'random')})" in flat
    label_free = [v for (d, s), v in imbalance.items() if d == "long_tailed" and s not in ("base", "balanced_random", "balancing")]
    assert f"({shown('long_tailed', 'base')}, against {min(label_free):.1f}-{max(label_free):.1f} for every other sampler that does not " \
           f"read labels, random {shown('long_tailed', 'random')})" in flat
    assert f"random is more balanced ({shown('balanced', 'random')} vs {shown('balanced', 'base')})" in flat
    spread = [imbalance[d, s] for d in ("balanced", "long_tailed") for s in ("margin", "mase", "partitioned_badge")]
    assert f"their labeled sets are {min(spread):.0f}-{max(spread):.0f}x imbalanced" in flat

    def interval(values: tuple[float, float, float]) -> str:
        return f"{values[0]:+.3f} [{values[1]:+.3f}, {values[2]:+.3f}]"

    assert f"(paired AUC {interval(_paired('balanced', 'base', 'random'))} and {interval(_paired('long_tailed', 'base', 'random'))})" in flat
    assert (f"(paired AUC, base - margin: {interval(_paired('balanced', 'base', 'margin'))} balanced, "
            f"{interval(_paired('long_tailed', 'base', 'margin'))} long-tailed)") in flat
    for dataset in ("balanced", "long_tailed"):  # the independent recomputation agrees with summary.csv's "auc - random"
        [row] = summary.filter((pl.col("dataset") == dataset) & (pl.col("sampler") == "base")).iter_rows(named=True)
        assert all(abs(a - b) < 6e-5 for a, b in zip(_interval(row["auc - random"]), _paired(dataset, "base", "random")))


def test_the_readme_shows_lines_of_the_committed_table():
    shown = re.search(r"```text\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    table = (ROOT / "reports" / "table.md").read_text().splitlines()
    rows = [line for line in shown.splitlines() if line.startswith("|")]
    footer = " ".join(line for line in shown.splitlines() if line.strip() and not line.startswith("|") and line != "...")
    assert len(rows) >= 3 and all(row in table for row in rows)
    assert footer == table[-1]


def test_the_head_prose_is_the_head_benchmark():
    flat = " ".join(page("results/benchmarks.md").split())
    large = _results("head_30000x2048x1000_max_iter_10.json")
    small = [_results(name)["lbfgs"]["evaluations"] for name in ("head_800x1280x10.json", "head_2000x1280x10.json")]
    per_evaluation = large["lbfgs"]["seconds"] / large["lbfgs"]["evaluations"]
    assert all(900 <= count <= 1100 for count in small) and "makes about a thousand small evaluations" in flat
    assert f"one evaluation takes about {per_evaluation:.1f} s on 2 CPU cores" in flat
    assert 1000 * per_evaluation > 1800 and "a converged fit of about a thousand evaluations would take over half an hour" in flat
    assert f"far over twice SGD's {large['sgd']['seconds']:.0f} s" in flat


def test_the_selection_breakdown_figures_are_their_files():
    """benchmarks.md's before/after paragraph: medians of benchmarks/results/selection_breakdown/."""
    import statistics

    folder = ROOT / "benchmarks" / "results" / "selection_breakdown"
    values: dict[tuple, list[float]] = {}
    for side in ("before", "after"):
        for path in sorted(folder.glob(f"{side}_*.json")):
            for run in json.loads(path.read_text())["runs"]:
                for field in ("x_bare_product", "consumer_cpu_s"):
                    values.setdefault((side, run["sampler"], run["fraction"], field), []).append(run[field])

    def median(side: str, sampler: str, fraction: float, field: str = "x_bare_product") -> float:
        return statistics.median(values[(side, sampler, fraction, field)])

    assert len(values[("before", "base", 0.1, "x_bare_product")]) == len(values[("after", "base", 0.1, "x_bare_product")]) == 4
    phrases = [f"{name} {median('before', sampler, 0.1):.2f}x -> {median('after', sampler, 0.1):.2f}x"
               for name, sampler in (("margin", "margin"), ("MASE", "mase"), ("BASE", "base"))]
    main_thread = {side: sorted(median(side, sampler, 0.1, "consumer_cpu_s") for sampler in ("base", "mase", "margin"))
                   for side in ("before", "after")}
    phrases.append(f"own CPU time {main_thread['before'][0]:.2f}-{main_thread['before'][-1]:.2f} s -> "
                   f"{main_thread['after'][0]:.2f}-{main_thread['after'][-1]:.2f} s")
    phrases.append(f"at 1%: BASE {median('before', 'base', 0.01):.2f}x -> {median('after', 'base', 0.01):.2f}x")
    small = {side: sorted(median(side, sampler, 0.001) for sampler in ("base", "mase", "margin")) for side in ("before", "after")}
    phrases.append(f"({small['before'][0]:.2f}-{small['before'][-1]:.2f}x before, {small['after'][0]:.2f}-{small['after'][-1]:.2f}x after)")
    assert _missing(page("results/benchmarks.md"), phrases) == []


def test_the_conversion_figures_are_their_file():
    """exact-selection.md's float16 conversion sentence: medians of benchmarks/results/conversion.json."""
    medians = _results("conversion.json")["medians"]
    phrase = (f"it took {medians['convert_as_float32_s']:.2f} s against {medians['convert_numpy_two_threads_s']:.2f} s for numpy's "
              f"cast on two threads, and the bare product {medians['bare_product_as_float32_s']:.2f} s against "
              f"{medians['bare_product_numpy_two_threads_s']:.2f} s")
    assert _missing(page("explanation/exact-selection.md"), [phrase]) == []


def test_the_second_selection_breakdown_figures_are_their_files():
    """benchmarks.md's paragraph on the changes after the stream: medians of
    benchmarks/results/selection_breakdown/exact_logits_and_walk/ (four measurements per cell and side)."""
    import statistics

    folder = ROOT / "benchmarks" / "results" / "selection_breakdown" / "exact_logits_and_walk"
    values: dict[tuple, list[float]] = {}
    for side in ("before", "after"):
        for path in sorted(folder.glob(f"{side}_*.json")):
            for run in json.loads(path.read_text())["runs"]:
                values.setdefault((side, run["sampler"], run["fraction"], "outside"), []).append(run["total_wall_s"] - run["stream_wall_s"])
                values.setdefault((side, run["sampler"], run["fraction"], "ratio"), []).append(run["x_bare_product"])

    def median(side: str, sampler: str, field: str) -> float:
        found = values[(side, sampler, 0.1, field)]
        assert len(found) == 4
        return statistics.median(found)

    phrases = [f"fell from {median('before', 'base', 'outside'):.2f} to {median('after', 'base', 'outside'):.2f} s for BASE and from "
               f"{median('before', 'margin', 'outside'):.2f} to {median('after', 'margin', 'outside'):.2f} s for margin",
               f"(BASE {median('before', 'base', 'ratio'):.2f}x -> {median('after', 'base', 'ratio'):.2f}x, margin "
               f"{median('before', 'margin', 'ratio'):.2f}x -> {median('after', 'margin', 'ratio'):.2f}x at 10%)"]
    assert _missing(page("results/benchmarks.md"), phrases) == []


def test_the_stream_precision_table_is_its_file():
    """exact-selection.md's float32 / bfloat16 stream table and its sentences, from stream_precision.json."""
    data = _results("stream_precision.json")
    text = page("explanation/exact-selection.md")
    assert data["machine"]["bf16"] == "amx_bf16" and all(row["same_picks_order_scores"] for row in data["rows"])
    names = ("margin", "confidence", "mase", "margin_clustering", "base")
    for fraction in (0.001, 0.01, 0.1):
        [cells] = table_rows(text, f"{100 * fraction:g}%")
        expected = []
        for name in names:
            [row] = [row for row in data["rows"] if row["sampler"] == name and row["budget_fraction"] == fraction]
            expected.append(f"{row['float32_ratio_to_bare']:.2f}x / {row['bfloat16_ratio_to_bare']:.2f}x")
        assert cells[1:] == expected, fraction
    bare = [min(row["bare_product_s"]) for row in data["rows"]]
    [margin] = [row for row in data["rows"] if row["sampler"] == "margin" and row["budget_fraction"] == 0.1]
    share = 100 * margin["bfloat16_notes"]["narrowed_rows"] / margin["bfloat16_notes"]["streamed_rows"]
    flat = " ".join(text.split())
    assert _missing(flat, [f"the bare product took {min(bare):.2f}-{max(bare):.2f} s within the run",
                           f"for margin, {share:.0f}% of the pool at b/N = 10%"]) == []
    from al_core.samplers import pool
    assert f"at most {100 * pool.COARSE_MAX_SHARE:g}% of the pool" in flat and f"at least {pool.AUTO_BFLOAT16_WORK:.0e}".replace("+", "") in flat.replace("+", "")


def test_the_second_hosts_stream_precision_figures_are_their_files():
    """exact-selection.md's sentences on the AVX512-BF16 host: its stream_precision figures, and why
    the rule still stops the bfloat16 stream at COARSE_MAX_SHARE: the runs with a rule that kept it
    up to 10% (the grid of 18751d1 against b357415's, MASE's near-uniform run against float32's)."""
    from al_core.samplers import pool

    def cell(data: dict, name: str, fraction: float) -> str:
        [row] = [row for row in data["rows"] if row["sampler"] == name and row["budget_fraction"] == fraction]
        assert row["same_picks_order_scores"]
        return f"{row['float32_ratio_to_bare']:.2f}x / {row['bfloat16_ratio_to_bare']:.2f}x"

    def grid(name: str, sampler: str) -> dict:
        [row] = [row for row in _results(name)["rows"] if row["pool"] == "imagenet" and row["sampler"] == sampler
                 and row["budget_fraction"] == 0.1]
        assert row["same_picks_order_scores"]
        return row

    def uniform(name: str) -> dict:
        [row] = [row for row in _results(name)["rows"] if row["sampler"] == "mase"]
        assert row["same_picks_order_scores_as_exact"] and all(row["same_picks_order_scores_at_chunk_sizes"].values())
        return row

    amd = _results("stream_precision_avx512_bf16.json")
    assert amd["machine"]["bf16"] == "avx512_bf16" and amd["coarse_max_share_in_the_code"] == pool.COARSE_MAX_SHARE
    wide, narrow = "selection_grid_avx512_bf16_18751d1.json", "selection_grid_avx512_bf16_b357415.json"
    margin, margin32 = grid(wide, "margin"), grid(narrow, "margin")
    confidence, confidence32 = grid(wide, "confidence"), grid(narrow, "confidence")
    assert (margin["filter"], confidence["filter"], margin32["filter"], confidence32["filter"]) == ("bfloat16", "bfloat16", "float32", "float32")
    mase16, mase32 = uniform("near_uniform_avx512_bf16_mase_bfloat16.json"), uniform("near_uniform_avx512_bf16.json")
    assert (mase16["filter"], mase32["filter"]) == ("bfloat16", "float32")
    open_share = 100 * margin["narrowed_rows"] / margin["streamed_rows"]
    flat = " ".join(page("explanation/exact-selection.md").split())
    assert _missing(flat, [
        f"float32 / bfloat16 at b/N = 10%: margin {cell(amd, 'margin', 0.1)}, confidence {cell(amd, 'confidence', 0.1)}, "
        f"MASE {cell(amd, 'mase', 0.1)}; at 1%, Cluster-Margin {cell(amd, 'margin_clustering', 0.01)} and BASE {cell(amd, 'base', 0.01)}.",
        f"are at most {100 * pool.COARSE_MAX_SHARE:g}% of the pool (`COARSE_MAX_SHARE`)",
        f"bfloat16 stream left {open_share:.0f}% of the rows open and took {margin['ratio_to_bare']:.2f}x the bare product against "
        f"{margin32['ratio_to_bare']:.2f}x, confidence {confidence['ratio_to_bare']:.2f}x against {confidence32['ratio_to_bare']:.2f}x",
        f"on the near-uniform pool MASE took {mase16['ratio_to_bare']:.2f}x against {mase32['ratio_to_bare']:.2f}x"]) == []


def test_the_base_stream_rule_figures_are_their_grid_files():
    """exact-selection.md's sentence on BASE's bfloat16 stream, from the midday grid (BASE with a
    bfloat16 stream up to 2% of the pool) and the night grid (float32 streams)."""
    def base(name: str, fraction: float) -> dict:
        [row] = [row for row in _results(name)["rows"] if row["pool"] == "realistic" and row["sampler"] == "base"
                 and row["budget_fraction"] == fraction]
        return row

    midday = [base("selection_grid_2026-12-06_midday.json", f) for f in (0.001, 0.01)]
    night = [base("selection_grid_2026-12-06_night.json", f) for f in (0.001, 0.01)]
    assert [row["filter"] for row in midday] == ["bfloat16", "bfloat16"] and "filter" not in night[0]
    assert _missing(page("explanation/exact-selection.md"), [
        f"its walk scored {100 * midday[0]['refined_fraction']:.1f}% of the realistic pool's rows exactly at b/N = 0.1% "
        f"({100 * night[0]['refined_fraction']:.1f}% after a float32 stream) and {100 * midday[1]['refined_fraction']:.1f}% at 1% "
        f"({100 * night[1]['refined_fraction']:.1f}%), and took {midday[0]['ratio_to_bare']:.2f}x and {midday[1]['ratio_to_bare']:.2f}x "
        f"the bare product against {night[0]['ratio_to_bare']:.2f}x and {night[1]['ratio_to_bare']:.2f}x"]) == []


def test_the_base_narrowing_sentence_is_its_grid_files():
    """exact-selection.md's sentence on BASE's walk narrowing rows after a bfloat16 stream, from the
    two grid runs of BASE at b/N = 0.1% and 0.2% (the code before and after)."""
    def rows(name: str) -> dict:
        found = {(row["pool"], row["budget_fraction"], row["sampler"]): row for row in _results(name)["rows"]}
        assert all(row["same_picks_order_scores"] and row["filter"] == "bfloat16" for row in found.values())
        return found

    now, before = rows("selection_grid_avx512_bf16_base_narrowing.json"), rows("selection_grid_avx512_bf16_base_narrowing_before.json")

    def refined(found: dict, pool: str) -> list[str]:
        counts = [{found[(pool, fraction, sampler)]["refined_rows"] for sampler in ("base", "base (sequential)")} for fraction in (0.001, 0.002)]
        assert all(len(count) == 1 for count in counts)  # both orders score the same rows here
        return [f"{count.pop():,}" for count in counts]

    spread = lambda found: f"{min(r['ratio_to_bare'] for r in found.values()):.2f}-{max(r['ratio_to_bare'] for r in found.values()):.2f}x"  # noqa: E731
    text = " ".join(page("explanation/exact-selection.md").split())
    (a, b), (c, d) = refined(now, "realistic"), refined(before, "realistic")
    (e, f), (g, h) = refined(now, "imagenet"), refined(before, "imagenet")
    assert _missing(text, [
        f"it scored {a} and {b} rows of the realistic pool exactly instead of {c} and {d}, and {e} and {f} of the "
        f"ImageNet-shaped pool instead of {g} and {h}",
        f"{spread(now)} the bare product against {spread(before)}"]) == []


def test_the_float32_bound_sentence_is_its_file():
    """exact-selection.md's sentence on how loose the float32 bound is and what slicing the product
    would cost, from float32_bound.json."""
    runs = {run["pool"]: run for run in _results("float32_bound.json")["runs"]}
    real, imagenet = runs["realistic"], runs["imagenet"]

    def cost(k: int) -> str:
        return f"{real['slowdown'][f'sliced_{k}']:.2f}x and {imagenet['slowdown'][f'sliced_{k}']:.2f}x"

    assert [round(1 / real["bound_factor"][f"sliced_{k}"]) for k in (512, 1024, 256)] == [4, 2, 8]
    cells = {(row["pool"], row["sampler"], row["budget_fraction"]): row for row in _results("float32_bound.json")["selections"]}
    assert all(row["same_picks_order_scores"] and row["width"] == 512 for row in cells.values())
    margin, clustering = cells[("imagenet", "margin", 0.1)], cells[("imagenet", "margin_clustering", 0.01)]
    realistic = [cells[key] for key in (("realistic", "margin", 0.1), ("realistic", "confidence", 0.1), ("realistic", "entropy", 0.001))]
    slower = [row["seconds"]["sliced"] - row["seconds"]["whole"] for row in realistic]
    assert all(row["seconds"]["sliced"] > row["seconds"]["whole"] for row in cells.values())  # "it did not pay"
    assert _missing(" ".join(page("explanation/exact-selection.md").split()), [
        f"it was {real['bound_over_error']['0.5']:.0f} times the row's largest real error at the median row "
        f"({real['bound_over_error']['0.01']:.0f} at the 1st percentile), and {imagenet['bound_over_error']['0.5']:.0f} times",
        f"4x tighter at K = 512, for a product {cost(512)} as long as the whole one on those rows "
        f"(2x at K = 1024 for {cost(1024)}; 8x at K = 256 for {cost(256)})",
        f"margin at b/N = 10% on the ImageNet-shaped pool scored {margin['refined_rows']['sliced']:,} rows exactly instead of "
        f"{margin['refined_rows']['whole']:,} but took {margin['seconds']['sliced']:.2f} s instead of {margin['seconds']['whole']:.2f} s, "
        f"margin_clustering at 1% there {clustering['refined_rows']['sliced']:,} rows instead of {clustering['refined_rows']['whole']:,} "
        f"in {clustering['seconds']['sliced']:.2f} s instead of {clustering['seconds']['whole']:.2f} s",
        f"entropy at 0.1% took {min(slower):.2f}-{max(slower):.2f} s longer"]) == []


def test_the_exact_logits_slicing_sentence_is_its_file():
    """exact-selection.md's sentence on slicing the float64 product, from exact_logits.json."""
    data = _results("exact_logits.json")
    pools = {entry["pool"]: entry for entry in data["pools"]}
    assert data["in_the_code"]["EXACT_K_BLOCK"] is None
    one, sliced = "one product (K = d), sums of 32", "K = 512, sums of 32"
    for entry in pools.values():
        assert all(setting["same_logits"] for setting in entry["settings"].values())

    def cell(pool: str, name: str) -> dict:
        return pools[pool]["settings"][name]

    change = {pool: cell(pool, sliced)["seconds"] / cell(pool, one)["seconds"] - 1 for pool in pools}
    assert change["realistic"] > 0 > change["imagenet"]
    flat = " ".join(page("explanation/exact-selection.md").split())
    assert (f"slices of 512 left {cell('realistic', sliced)['undecided_elements']:,} and {cell('imagenet', sliced)['undecided_elements']:,} "
            f"elements undecided instead of {cell('realistic', one)['undecided_elements']:,} and {cell('imagenet', one)['undecided_elements']:,}, "
            f"but took {cell('realistic', sliced)['seconds']:.3f} s and {cell('imagenet', sliced)['seconds']:.3f} s against "
            f"{cell('realistic', one)['seconds']:.3f} s and {cell('imagenet', one)['seconds']:.3f} s for one product (the fastest of five "
            f"alternating runs; the float64 product alone {pools['realistic']['float64_product_s']:.3f} s and "
            f"{pools['imagenet']['float64_product_s']:.3f} s): {100 * change['realistic']:.0f}% slower on the realistic pool, "
            f"{-100 * change['imagenet']:.0f}% faster on the other") in flat


def test_the_near_uniform_table_is_its_file():
    """benchmarks.md's near-uniform table, from near_uniform.json."""
    data = _results("near_uniform.json")
    text = page("results/benchmarks.md")
    streamed = data["pool"]["n"] - data["pool"]["labeled"]
    assert data["pool"]["pool"] == "uniform" and f"Its median top-1 softmax probability is {data['pool']['median_top1_probability']:.3f}" \
        in " ".join(text.split())
    shown = {cells[1]: cells[2:] for cells in table_rows(text, "uniform")}
    assert sorted(shown) == sorted(row["sampler"] for row in data["rows"])
    for row in data["rows"]:
        partial = f" (+{100 * row['partial_rows'] / streamed:.1f}%)" if row["partial_rows"] else ""
        assert shown[row["sampler"]] == [f"{row['ratio_to_bare']:.2f}x", f"{100 * row['refined_rows'] / streamed:.1f}%{partial}",
                             "yes" if row["same_picks_order_scores_as_exact"] else "no",
                             "yes" if all(row["same_picks_order_scores_at_chunk_sizes"].values()) else "no"]


def test_the_near_uniform_sentences_are_their_files():
    """benchmarks.md's prose under the near-uniform table, from near_uniform.json and
    near_uniform_before_gap.json (margin on the code before its intervals followed the gap)."""
    now, before = _results("near_uniform.json"), _results("near_uniform_before_gap.json")
    streamed = now["pool"]["n"] - now["pool"]["labeled"]
    rows = {row["sampler"]: row for row in now["rows"]}
    assert rows["mase"]["ratio_to_bare"] <= 1.5 < min(rows["base"]["ratio_to_bare"], rows["margin"]["ratio_to_bare"])
    assert all(0.15 < rows[name]["refined_rows"] / streamed < 0.2 for name in ("base", "margin"))  # "about a sixth"
    [old] = before["rows"]
    assert before["commit"].startswith("ccc9ec5") and old["sampler"] == "margin" and old["same_picks_order_scores_as_exact"]
    assert _missing(page("results/benchmarks.md"), [
        f"margin scored {100 * old['refined_rows'] / streamed:.1f}% of the rows exactly and took {old['ratio_to_bare']:.2f}x the bare "
        f"product, against {100 * rows['margin']['refined_rows'] / streamed:.1f}% and {rows['margin']['ratio_to_bare']:.2f}x now"]) == []


def _near_uniform_on_the_second_host(name: str, commit: str, same_rows_as: str) -> dict:
    """The rows of near-uniform results ``name`` (AVX512-BF16 host, ``commit``), by sampler, checked:
    every selection exact and the same at the other chunk sizes, and the same rows scored exactly
    as in ``same_rows_as``."""
    data, other = _results(name), _results(same_rows_as)
    rows = {row["sampler"]: row for row in data["rows"]}
    assert data["machine"]["bf16"] == "avx512_bf16" and data["commit"].startswith(commit)
    assert all(row["same_picks_order_scores_as_exact"] and all(row["same_picks_order_scores_at_chunk_sizes"].values()) for row in rows.values())
    assert [(row["sampler"], row["refined_rows"], row["partial_rows"]) for row in data["rows"]] == \
        [(row["sampler"], row["refined_rows"], row["partial_rows"]) for row in other["rows"]]  # "the same rows scored exactly"
    return rows


def _ratios(rows: dict, separator: str) -> str:
    return separator.join(f"{label} {rows[name]['ratio_to_bare']:.2f}x" for label, name in (("BASE", "base"), ("margin", "margin"), ("MASE", "mase")))


def test_the_second_hosts_near_uniform_sentence_is_its_file():
    """benchmarks.md's near-uniform figures on the AVX512-BF16 host, from near_uniform_avx512_bf16.json."""
    rows = _near_uniform_on_the_second_host("near_uniform_avx512_bf16.json", "1304d7c", "near_uniform.json")
    assert _missing(page("results/benchmarks.md"), [_ratios(rows, ", ") + " the bare product"]) == []


def test_the_second_hosts_later_near_uniform_sentence_is_its_file():
    """benchmarks.md's near-uniform figures after the conversion buffers, from near_uniform_avx512_bf16_725cd48.json."""
    rows = _near_uniform_on_the_second_host("near_uniform_avx512_bf16_725cd48.json", "725cd48", "near_uniform_avx512_bf16.json")
    assert all(row["ratio_to_bare"] > 1.5 for row in rows.values())  # "all three still above the 1.5x"
    assert _missing(page("results/benchmarks.md"), [_ratios(rows, ", ") + ", again the same rows scored exactly"]) == []


def test_the_grid_runs_counts_and_entropy_sentence_are_their_files():
    """benchmarks.md: the cells within target in the runs of f956273 and 8bbe3f0, and entropy's
    rows scored exactly against the run of f956273 (realistic pool)."""
    flat = " ".join(page("results/benchmarks.md").split())

    def within(rows: list[dict]) -> tuple[int, int]:
        return (sum(row["ratio_to_bare"] <= 1.2 for row in rows if row["budget_fraction"] in (0.001, 0.01)),
                sum(row["ratio_to_bare"] <= 1.5 for row in rows if row["budget_fraction"] == 0.1))

    first, second = within(_results("selection_grid_2026-12-06_f956273.json")["rows"]), within(_results("selection_grid_2026-12-06_8bbe3f0.json")["rows"])
    assert f"the run of f956273 counted {first[0]} and {first[1]}, the run of 8bbe3f0 {second[0]} and {second[1]}" in flat

    def entropy(name: str, fraction: float) -> dict:
        [row] = [row for row in _results(name)["rows"] if row["pool"] == "realistic" and row["sampler"] == "entropy"
                 and row["budget_fraction"] == fraction]
        return row

    (a, b), (c, d) = [[entropy(name, fraction) for name in ("selection_grid.json", "selection_grid_2026-12-06_f956273.json")]
                      for fraction in (0.001, 0.01)]
    assert (f"it scored {100 * a['refined_fraction']:.2f}% of the rows exactly at b/N = 0.1% against {100 * b['refined_fraction']:.2f}% "
            f"in the run of f956273, and {100 * c['refined_fraction']:.2f}% at 1% against {100 * d['refined_fraction']:.2f}% "
            f"({a['ratio_to_bare']:.2f}x and {c['ratio_to_bare']:.2f}x the bare product against {b['ratio_to_bare']:.2f}x "
            f"and {d['ratio_to_bare']:.2f}x)") in flat


def test_the_pipeline_rerun_on_the_amd_host_is_its_two_files():
    """benchmarks.md: the 1.28M run of 0b46797 and of f4e482c, one after the other on one AMD host."""
    text = " ".join(page("results/benchmarks.md").split())
    runs = [_results("pipeline_scale_exact_avx512_bf16.json"), _results("pipeline_scale_exact_avx512_bf16_f4e482c.json")]
    assert [run["commit"][:7] for run in runs] == ["0b46797", "f4e482c"] and all(run["machine"]["bf16"] == "avx512_bf16" for run in runs)
    assert all(run["final_metrics"] == _results("pipeline_scale_exact.json")["final_metrics"] for run in runs)
    select = [{stage["stage"]: stage["seconds"] for stage in run["stages"] if stage["stage"].startswith("select")} for run in runs]
    later = [[seconds for name, seconds in found.items() if name != "select r00"] for found in select]
    train = [stage["seconds"] for stage in runs[0]["stages"] if stage["stage"].startswith("train")]
    assert (f"{runs[0]['dvc_repro_seconds']:.0f} s against {runs[1]['dvc_repro_seconds']:.0f} s in all, "
            f"select {min(later[0]):.1f}-{max(later[0]):.1f} s ({select[0]['select r00']:.1f} s in r00) "
            f"against {min(later[1]):.1f}-{max(later[1]):.1f} s ({select[1]['select r00']:.1f} s in r00)") in text
    assert (f"`train` {min(train):.1f}-{max(train):.1f} s, `full` {runs[0]['full']['seconds_per_epoch']:.0f} s per epoch") in text


def test_the_margin_clustering_rerun_sentence_is_its_file():
    """benchmarks.md: margin_clustering's cells after its membership rounds, against the grid's."""
    text = " ".join(page("results/benchmarks.md").split())
    after = {(row["pool"], row["budget_fraction"]): row for row in _results("selection_grid_avx512_bf16_margin_clustering.json")["rows"]}
    before = {(row["pool"], row["budget_fraction"]): row for row in _results("selection_grid_avx512_bf16.json")["rows"]
              if row["sampler"] == "margin_clustering"}
    assert after.keys() == before.keys() and all(row["same_picks_order_scores"] for row in after.values())
    partial = [key for key in after if key[1] < 0.1]  # 10 x b below the whole pool: membership is ranked
    assert all(after[key]["refined_rows"] < before[key]["refined_rows"] for key in partial)
    assert all(after[key]["refined_rows"] == before[key]["refined_rows"] for key in after if key not in partial)
    real, image = after["realistic", 0.01], after["imagenet", 0.01]
    assert (f"at 1% {real['refined_rows']:,} instead of {before['realistic', 0.01]['refined_rows']:,} (realistic) and "
            f"{image['refined_rows']:,} instead of {before['imagenet', 0.01]['refined_rows']:,} (ImageNet-shaped)") in text
    assert (f"their ratios, {real['ratio_to_bare']:.2f}x and {image['ratio_to_bare']:.2f}x, are the table's within the host's noise "
            f"({before['realistic', 0.01]['ratio_to_bare']:.2f}x and {before['imagenet', 0.01]['ratio_to_bare']:.2f}x)") in text
    assert _results("selection_grid_avx512_bf16_margin_clustering.json")["commit"].startswith("0c80494")


def test_the_earlier_pipeline_run_sentence_is_its_file():
    """benchmarks.md: the 1.28M run that stood before this afternoon's selection changes."""
    run = _results("pipeline_scale_exact_2026-12-06_abdb814.json")
    select = {stage["stage"]: stage["seconds"] for stage in run["stages"] if stage["stage"].startswith("select")}
    later = [seconds for name, seconds in select.items() if name != "select r00"]
    assert run["commit"].startswith("abdb814") and run["final_metrics"] == _results("pipeline_scale_exact.json")["final_metrics"]
    assert (f"(`pipeline_scale_exact_2026-12-06_abdb814.json`) took {run['dvc_repro_seconds']:.0f} s: select {min(later):.0f}-"
            f"{max(later):.0f} s ({select['select r00']:.0f} s in r00)") in " ".join(page("results/benchmarks.md").split())


def test_the_entropy_threshold_sentence_is_its_file():
    """benchmarks.md: entropy with and without the stream's threshold, alternating in one run."""
    text = " ".join(page("results/benchmarks.md").split())
    results = _results("entropy_threshold.json")
    cells = {(row["pool"], row["budget_fraction"]): row for row in results["rows"]}
    assert all(row["same_picks_order_scores"] for row in cells.values()) and results["commit"].startswith("c32fc71")

    def pair(key):
        return f"{cells[key]['threshold']['ratio_to_bare']:.2f}x against {cells[key]['no threshold']['ratio_to_bare']:.2f}x"

    real = cells["realistic", 0.001]
    assert (f"at 0.1% {pair(('realistic', 0.001))} (realistic, process CPU {real['threshold']['cpu_seconds']:.2f} s against "
            f"{real['no threshold']['cpu_seconds']:.2f} s) and {pair(('imagenet', 0.001))} (ImageNet-shaped); at 1% "
            f"{pair(('realistic', 0.01))} and {pair(('imagenet', 0.01))}") in text
    assert real["threshold"]["cpu_seconds"] < real["no threshold"]["cpu_seconds"]


def test_the_end_of_session_grid_sentence_is_its_file():
    """benchmarks.md: the whole grid re-run at 91cfdac, counted and quoted from its file."""
    text = " ".join(page("results/benchmarks.md").split())
    results = _results("selection_grid_avx512_bf16_91cfdac.json")
    rows, table = results["rows"], _results("selection_grid_avx512_bf16.json")["rows"]
    assert results["commit"].startswith("91cfdac") and all(row["same_picks_order_scores"] for row in rows) and len(rows) == 42

    def within(runs, small):
        cells = [row for row in runs if (row["budget_fraction"] < 0.1) == small]
        return sum(row["ratio_to_bare"] <= (1.2 if small else 1.5) for row in cells), len(cells)

    bare = [row["bare_product_seconds"] for row in rows]
    assert f"the bare product took {min(bare):.2f}-{max(bare):.2f} s within the run" in text
    (now_small, of_small), (now_big, of_big) = within(rows, True), within(rows, False)
    assert (f"{now_small} of the {of_small} cells at b/N = 0.1-1% within 1.2x of the bare product ({within(table, True)[0]} "
            f"in the table's run) and {now_big} of the {of_big} at 10% within 1.5x ({within(table, False)[0]})") in text

    def span(pick):
        values = [row["ratio_to_bare"] for row in rows if pick(row)]
        return f"{min(values):.2f}-{max(values):.2f}x"

    assert f"all four cells at 0.1-1% ({span(lambda r: r['sampler'] == 'entropy' and r['budget_fraction'] < 0.1)})" in text
    assert f"BASE at 1% ({span(lambda r: r['sampler'].startswith('base') and r['budget_fraction'] == 0.01)}" in text
    assert f"at 10%: BASE ({span(lambda r: r['sampler'].startswith('base') and r['budget_fraction'] == 0.1)})" in text
    over = {(row["pool"], row["budget_fraction"], row["sampler"]) for row in rows
            if row["ratio_to_bare"] > (1.2 if row["budget_fraction"] < 0.1 else 1.5) and not row["sampler"].startswith("base")}
    assert over == {("imagenet", 0.01, "margin_clustering"), ("imagenet", 0.1, "margin"), ("imagenet", 0.1, "confidence")}
    cell = {(row["pool"], row["budget_fraction"], row["sampler"]): row["ratio_to_bare"] for row in rows}
    assert (f"margin_clustering at 1% on the ImageNet-shaped pool ({cell['imagenet', 0.01, 'margin_clustering']:.2f}x)") in text
    assert (f"margin ({cell['imagenet', 0.1, 'margin']:.2f}x) and confidence ({cell['imagenet', 0.1, 'confidence']:.2f}x)") in text


def test_the_list_growth_pipeline_runs_are_their_two_files():
    """benchmarks.md: the 1.28M runs just before and just after BASE's lists grew at the pace of the walk."""
    text = " ".join(page("results/benchmarks.md").split())
    runs = [_results("pipeline_scale_exact_avx512_bf16_c17392e.json"), _results("pipeline_scale_exact_avx512_bf16_4be4b01.json")]
    assert [run["commit"][:7] for run in runs] == ["c17392e", "4be4b01"] and all(run["machine"]["bf16"] == "avx512_bf16" for run in runs)
    assert all(run["final_metrics"] == _results("pipeline_scale_exact.json")["final_metrics"] for run in runs)
    stages = [{stage["stage"]: stage for stage in run["stages"]} for run in runs]
    later = [[stage["seconds"] for name, stage in found.items() if name.startswith("select") and name != "select r00"] for found in stages]
    train = [[stage["seconds"] for name, stage in found.items() if name.startswith("train")] for found in stages]
    assert (f"{runs[0]['dvc_repro_seconds']:.0f} s against {runs[1]['dvc_repro_seconds']:.0f} s in all, select "
            f"{stages[0]['select r00']['seconds']:.1f} s against {stages[1]['select r00']['seconds']:.1f} s in r00 (the pool streamed "
            f"three times against twice) and {min(later[0]):.1f}-{max(later[0]):.1f} s against {min(later[1]):.1f}-{max(later[1]):.1f} s "
            f"after, with the same final metrics and {stages[0]['select r00']['peak_rss_anon_gib']:.2f} against "
            f"{stages[1]['select r00']['peak_rss_anon_gib']:.2f} GiB at most in r00's select") in text
    assert (f"`train` took {min(train[1]):.1f}-{max(train[1]):.1f} s against {min(train[0]):.1f}-{max(train[0]):.1f} s") in text
    assert f"twice ({stages[1]['select r00']['seconds']:.1f} s in the AMD run above)" in text
