"""The study: a tiny grid run end to end (resumable, reproducible) and its paired statistics."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from al_core.errors import InputError
from pipeline.study import load_grid, run_study
from stages.experiment import run_prepare_and_embed, run_experiment
from reporting.study import area_under_curve, paired_differences, run_study_report, summary
from tests.fakes import write_fake_fashion_mnist
from tests.test_pipeline import tiny_params


@pytest.fixture
def study(tmp_path, monkeypatch):
    data_root = write_fake_fashion_mnist(tmp_path / "fashion", n_train=300, n_test=80)
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(tiny_params(data_root), sort_keys=False))
    grid = work / "reports" / "study" / "grid.yaml"
    grid.parent.mkdir(parents=True)
    grid.write_text(yaml.safe_dump({"datasets": {"tiny": {}}, "samplers": ["random", "margin"], "seeds": [0, 1]}))
    monkeypatch.chdir(work)
    return work


def test_study_runs_resumes_reproduces_and_reports(study, capsys):
    grid = Path("reports/study/grid.yaml")
    results = Path("reports/study/runs")
    assert run_study(run_prepare_and_embed, run_experiment, grid) == ["tiny/random/seed0", "tiny/margin/seed0", "tiny/random/seed1", "tiny/margin/seed1"]
    out = capsys.readouterr().out
    assert "study: [1/4] tiny/random/seed0: final top-1" in out and "study: [4/4]" in out
    cell = results / "tiny" / "margin" / "seed1"
    assert sorted(p.name for p in cell.iterdir()) == ["cell.json", "metrics.json", "rounds.csv", "selections.csv"]
    assert pl.read_csv(cell / "selections.csv").height == 20 + 3 * 15  # s0, then 3 rounds of 15
    assert json.loads((cell / "cell.json").read_text())["machine"]["cpu"]
    # Resumable: finished cells are never run again; a cell whose results vanished (a killed run) is.
    assert run_study(run_prepare_and_embed, run_experiment, grid) == []
    before = {name: (cell / name).read_bytes() for name in ("rounds.csv", "metrics.json", "selections.csv")}
    (cell / "rounds.csv").unlink()
    assert run_study(run_prepare_and_embed, run_experiment, grid) == ["tiny/margin/seed1"]
    assert {name: (cell / name).read_bytes() for name in before} == before  # byte-identical again
    # Seeds differ (s0 and head training), so their selections do.
    other = pl.read_csv(results / "tiny" / "margin" / "seed0" / "selections.csv")
    assert other["id"].to_list() != pl.read_csv(cell / "selections.csv")["id"].to_list()

    summary_path = run_study_report(grid, results, Path("reports/study"))
    text = summary_path.read_text()
    assert "4 of 4 cells" in text and "## tiny" in text and "![study](study.png)" in text
    assert (summary_path.parent / "study.png").read_bytes()[:4] == b"\x89PNG"
    paired = pl.read_csv(summary_path.parent / "paired_differences.csv")
    assert paired["sampler"].unique().to_list() == ["margin"] and paired["n"].to_list() == [2, 2, 2]
    with pytest.raises(InputError, match="no cell 'tiny/base/seed0'"):
        run_study(run_prepare_and_embed, run_experiment, grid, only=["tiny/base/seed0"])


def test_area_under_curve_is_the_mean_top1_over_the_label_range():
    assert area_under_curve(np.array([100, 200, 300]), np.array([0.5, 0.7, 0.7])) == pytest.approx((0.6 + 0.7) / 2)
    assert area_under_curve(np.array([300, 100, 200]), np.array([0.7, 0.5, 0.7])) == pytest.approx(0.65)


def cells_frame(gains: dict[str, list[float]], seeds=5) -> pl.DataFrame:
    """random's curve per seed plus each sampler's paired gain (same every round) with seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        base = 0.5 + 0.02 * rng.standard_normal(3).cumsum()
        for sampler, (gain, noise) in {"random": (0.0, 0.0), **gains}.items():
            top1 = base + gain + noise * rng.standard_normal(3)
            for index in range(3):
                rows.append({"dataset": "d", "sampler": sampler, "seed": seed, "round_index": index, "round": f"r0{index}",
                             "labels": 100 * (index + 1), "top1": float(top1[index]), "imbalance_ratio": 2.0, "entropy": 0.9,
                             "full_top1": 0.9, "code": "x"})
    return pl.DataFrame(rows)


def test_paired_differences_flag_only_what_the_seeds_support():
    cells = cells_frame({"better": (0.05, 0.005), "noisy": (0.005, 0.05), "worse": (-0.05, 0.005)})
    paired = paired_differences(cells)
    flags = {sampler: set(paired.filter(pl.col("sampler") == sampler)["vs_random"]) for sampler in ("better", "noisy", "worse")}
    assert flags == {"better": {"better"}, "noisy": {"within noise"}, "worse": {"worse"}}
    table = summary(cells)
    assert dict(zip(table["sampler"], table["vs random"])) == {"better": "better", "noisy": "within noise", "random": "-", "worse": "worse"}
    assert set(table["labels to 99% of full"]) == {"not reached"}


def test_bad_grid_is_named(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"datasets": {"d": {}}, "samplers": ["bayes"], "seeds": [0]}))
    with pytest.raises(InputError, match=r"unknown sampler\(s\) \['bayes'\]"):
        load_grid(grid)
    grid.write_text(yaml.safe_dump({"datasets": {"d": {}}, "samplers": ["random"], "seeds": [-1]}))
    with pytest.raises(InputError, match="seeds must be a list of non-negative integers"):
        load_grid(grid)
