"""The comparison report: curve statistics, grouping, figures, pages, and a headless-Chromium check."""

import math

import numpy as np
import polars as pl
import pytest

from al_core.curves import labels_to_reach, mean_confidence_band, sorted_class_counts, student_t_quantile
from al_core.errors import InputError
from reporting import report
from reporting.comparison import Comparison
from reporting.experiments import Experiment, Gathered, code_version, select_runs, this_campaign
from reporting.pages import check_in_browser, chromium_binary


@pytest.mark.parametrize("dof, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423)])
def test_student_t_quantiles_match_the_printed_table(dof, expected):
    assert student_t_quantile(0.975, dof) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_approaches_the_normal_one():
    assert student_t_quantile(0.975, 100_000) == pytest.approx(1.95996, abs=1e-4)
    with pytest.raises(InputError):
        student_t_quantile(0.4, 3)


def test_confidence_band():
    mean, low, high = mean_confidence_band(np.array([1.0, 2.0, 3.0]))
    half = 4.302652729749464 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_confidence_band(np.array([0.7])) == (0.7, 0.7, 0.7)


def test_labels_to_reach_and_sorted_counts():
    labels, accuracy = np.array([300, 100, 200]), np.array([0.9, 0.5, 0.8])
    assert labels_to_reach(labels, accuracy, 0.8) == 200
    assert labels_to_reach(labels, accuracy, 0.95) is None
    # Sorted per seed, then averaged: seeds whose rare classes differ keep the skewed shape.
    assert sorted_class_counts(np.array([[1, 9], [9, 1]])).tolist() == [1.0, 9.0]


def rounds_frame(sampler: str, top1: list[float], counts: list[list[int]]) -> pl.DataFrame:
    labels = [sum(c) for c in counts]
    return pl.DataFrame({
        "round": [f"r{i:02d}" for i in range(len(top1))],
        "sampler": [sampler] * len(top1),
        "labels": labels,
        "top1": top1,
        "top5": [min(1.0, t + 0.1) for t in top1],
        "imbalance_ratio": [max(c) / max(min(c), 1) for c in counts],
        "entropy": [0.9] * len(top1),
        "missing_classes": [sum(v == 0 for v in c) for c in counts],
        "class_counts": [" ".join(map(str, c)) for c in counts],
    })


def experiment(name, sampler, seed, top1, counts=None, full=0.8, code="c0de", **params):
    counts = counts or [[5 * (i + 1), 5 * (i + 1), 10 * (i + 1)] for i in range(len(top1))]
    return Experiment(name, {"sampler": sampler, "seed": seed, "budget": 10, **params},
                      rounds_frame(sampler, top1, counts), {"top1": full, "top5": 0.99}, code)


@pytest.fixture
def experiments():
    return [
        experiment("a", "random", 0, [0.50, 0.60, 0.70]),
        experiment("b", "random", 1, [0.52, 0.64, 0.72]),
        experiment("c", "base", 0, [0.50, 0.70, 0.80]),
        experiment("d", "base", 1, [0.54, 0.74, 0.82], full=0.82),
    ]


def test_comparison_groups_seeds_into_bands(experiments):
    comparison = Comparison.of(experiments)
    assert comparison.groups == ["random", "base"]  # the baselines first, then by name
    bands = comparison.bands("top1", "labels")
    row = bands.filter((pl.col("group") == "base") & (pl.col("labels") == 40)).row(0, named=True)
    expected = mean_confidence_band(np.array([0.70, 0.74]))
    assert (row["mean"], row["low"], row["high"], row["seeds"]) == pytest.approx((*expected, 2))


def test_labels_needed_uses_the_mean_curve_and_the_full_data_accuracy(experiments):
    table = Comparison.of(experiments).labels_needed()
    base = table.filter(pl.col("sampler") == "base").row(0, named=True)
    # full top-1 of base: mean(0.80, 0.82) = 0.81; mean curve 0.52, 0.72, 0.81.
    assert base["full-data top-1"] == "0.8100"
    assert base["90% of full"] == "60"  # 0.72 at 40 labels is just short of 0.9 * 0.81 = 0.729
    assert base["best top-1"] == "0.8100 @ 60"
    random = table.filter(pl.col("sampler") == "random").row(0, named=True)
    assert random["100% of full"] == "> 60"


def test_group_names_show_other_varied_params():
    runs = [experiment("a", "base", 0, [0.5, 0.6]), experiment("b", "base", 0, [0.5, 0.7], budget=20)]
    assert Comparison.of(runs).groups == ["base, budget=10", "base, budget=20"]


def test_histograms_pick_evenly_spaced_rounds_first_and_last():
    counts = [[i + 1, 2 * (i + 1)] for i in range(8)]
    comparison = Comparison.of([experiment("a", "margin", 0, [0.1 * i for i in range(8)], counts=counts)])
    histograms = comparison.histograms(max_rounds=4)
    assert histograms["round"].to_list() == ["r00", "r02", "r05", "r07"]
    assert histograms["counts"][-1].to_list() == [8.0, 16.0]


def test_one_run_per_code_and_params_the_first_seen_wins():
    newest = experiment("workspace", "base", 0, [0.5, 0.6])
    reproduction = experiment("queued", "base", 0, [0.5, 0.6])  # the experiment that reproduced the baseline
    other_seed = experiment("other", "base", 1, [0.4, 0.5])
    gathered = select_runs([newest, reproduction, other_seed], any_code=False)
    assert [e.name for e in gathered.experiments] == ["workspace", "other"]
    assert gathered.left_out == [("queued", "same code and params as workspace (a reproduction, not another seed)")]


def test_a_param_added_later_never_merges_distinct_runs():
    """The measured failure: 6 samplers x 2 seeds on long-tailed data plus the default, where
    `random, seed 0, imbalance_ratio 10` vanished because old commits lacked data.imbalance_ratio."""
    old = experiment("old-commit", "random", 0, [0.4, 0.5], code="old")  # before the key existed
    balanced = experiment("balanced", "random", 0, [0.5, 0.6], **{"data.imbalance_ratio": 1})
    long_tailed = experiment("long-tailed", "random", 0, [0.3, 0.4], **{"data.imbalance_ratio": 10})
    gathered = select_runs([balanced, long_tailed, old], any_code=False)
    assert [e.name for e in gathered.experiments] == ["balanced", "long-tailed"]
    assert gathered.left_out[0][0] == "old-commit" and "other code" in gathered.left_out[0][1]
    assert Comparison.of(gathered.experiments).groups == ["random, data.imbalance_ratio=1", "random, data.imbalance_ratio=10"]
    # Asked to, runs of other code are compared too, told apart by the key they lack and their code.
    everything = select_runs([balanced, long_tailed, old], any_code=True)
    assert len(everything.experiments) == 3 and not everything.left_out
    groups = Comparison.of(everything.experiments).groups
    assert len(groups) == 3 and "random, data.imbalance_ratio=(absent), code=old" in groups


def test_code_version_follows_the_code_of_result_stages_only():
    lock = """
schema: '2.0'
stages:
  select@r00:
    deps:
    - path: al_core/samplers
      md5: aaa.dir
    - path: runs/r00/head.npz
      md5: fff
  report:
    deps:
    - path: reporting
      md5: bbb.dir
"""
    version = code_version(lock)
    assert version == code_version(lock.replace("bbb", "ccc"))  # drawing code: same results
    assert version != code_version(lock.replace("aaa", "abc"))  # sampler code: other results
    assert version == code_version(lock.replace("fff", "eee"))  # data, not code
    assert code_version(None) == "unknown"


def test_report_lists_what_it_left_out(experiments, tmp_path, monkeypatch):
    gathered = Gathered(experiments=experiments, left_out=[("stale", "other code (version x, compared: y)")])
    monkeypatch.setattr(report, "gather_experiments", lambda all_commits=False, any_code=False: gathered)
    index = report.run_report_all(out=tmp_path / "compare")
    assert pl.read_csv(tmp_path / "compare" / "left_out.csv").rows() == [("stale", "other code (version x, compared: y)")]
    assert "Runs left out" in index.read_text()


def test_a_campaign_compares_only_its_own_runs():
    here = {"data.dataset": "features", "data.root": "embeddings", "labels.source": "annotations"}
    demo = experiment("demo", "base", 0, [0.5, 0.6], **{"data.dataset": "fashion_mnist", "labels.source": "oracle"})
    mine = experiment("workspace", "base", 0, [0.4, 0.5], **here)
    kept, left_out = this_campaign([mine, demo], here)
    assert [e.name for e in kept] == ["workspace"]
    assert left_out == [("demo", "not this campaign (data.dataset 'fashion_mnist', here 'features')")]
    assert this_campaign([mine, demo], {**here, "labels.source": "oracle"}) == ([mine, demo], [])  # a simulation: all


def test_every_run_left_out_names_why(monkeypatch):
    gathered = Gathered(experiments=[], left_out=[("exp-1", "its metrics.json at 0123456789 is damaged (x)")])
    monkeypatch.setattr(report, "gather_experiments", lambda all_commits=False, any_code=False: gathered)
    with pytest.raises(InputError, match="every run was left out \\(exp-1: its metrics.json at 0123456789 is damaged"):
        report.run_compare()


def test_no_experiments_is_a_clear_error():
    with pytest.raises(InputError, match="dvc exp run"):
        Comparison.of([])


@pytest.fixture
def written_report(experiments, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "gather_experiments", lambda all_commits=False, any_code=False: Gathered(experiments))
    return report.run_report_all(out=tmp_path / "compare")


def test_report_writes_figures_tables_and_pages(written_report):
    out = written_report.parent
    for stem in ("learning_curves", "balance", "class_histograms"):
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:1000]
    page = written_report.read_text()
    assert page.count("<img ") == 3 and "labels needed" in page.lower()
    summary = (out / "summary.md").read_text()
    assert "![Learning curves](learning_curves.png)" in summary
    assert pl.read_csv(out / "experiments.csv").height == 4


def test_figures_are_byte_stable(experiments, tmp_path):
    first = report.write_figures(Comparison.of(experiments), tmp_path / "one")
    second = report.write_figures(Comparison.of(experiments), tmp_path / "two")
    for paths_one, paths_two in zip(first.values(), second.values()):
        for one, two in zip(paths_one, paths_two):
            assert one.read_bytes() == two.read_bytes(), one.name


@pytest.mark.skipif(chromium_binary() is None, reason="Debian chromium not installed (test.sh installs it when run as root)")
def test_index_html_shows_every_figure_in_headless_chromium(written_report, tmp_path):
    screenshot = tmp_path / "page.png"
    assert check_in_browser(written_report, screenshot) == (3, 3)
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("L"))
    # A blank page is one colour; the figures' lines, bars and text give many distinct grey levels.
    assert len(np.unique(pixels)) > 50
    assert (pixels < 128).mean() > 0.005
    # A page whose figure is missing is caught.
    (written_report.parent / "balance.svg").unlink()
    assert check_in_browser(written_report) == (2, 3)
