"""The selection benchmark runs end to end at a tiny shape (its numbers are not checked here); every
results file says where, how, when and at which commit it was measured."""

import json
import sys
from pathlib import Path

import pytest

from benchmarks import selection


def test_selection_benchmark_tiny(tmp_path, monkeypatch):
    out = tmp_path / "result.json"
    monkeypatch.setattr(sys, "argv", [
        "selection", "--n", "3000", "--d", "16", "--c", "10", "--labeled", "100", "--budget", "50",
        "--chunk-size", "512", "--naive-slice", "500", "--workdir", str(tmp_path / "work"), "--out", str(out),
    ])
    selection.main()
    report = json.loads(out.read_text())
    assert report["shape"]["n"] == 3000 and report["pool"] == "imagenet"
    names = {(row["sampler"], row["from"]) for row in report["samplers"]}
    assert ("base", "features") in names and ("base", "logits") in names and ("random", "features") in names
    assert all(row["selected"] == 50 for row in report["samplers"])


def test_selection_scaling_benchmark_tiny(tmp_path, monkeypatch):
    from benchmarks import selection_scaling

    out = tmp_path / "scaling.json"
    monkeypatch.setattr("sys.argv", [
        "selection_scaling", "--sizes", "3000", "--d", "16", "--c", "10", "--labeled", "100", "--budget", "50",
        "--chunk-size", "512", "--samplers", "base", "--pool", "realistic", "--workdir", str(tmp_path), "--out", str(out)])
    selection_scaling.main()
    report = json.loads(out.read_text())
    run = report["runs"][0]
    assert run["sharded_equal_to_one_process"] is True and run["notes"]["filter"] == "float32"
    assert report["pool"] == "realistic"


def test_selection_grid_benchmark_tiny(tmp_path, monkeypatch):
    from benchmarks import realistic_pool, selection_grid

    monkeypatch.setattr(selection_grid, "WORK", tmp_path)
    monkeypatch.setattr(realistic_pool, "WORK", tmp_path)
    monkeypatch.setattr(selection_grid, "build_realistic_pool",
                        lambda *args, **kwargs: realistic_pool.build_realistic_pool(*args, work=tmp_path, **kwargs))
    out = tmp_path / "grid.json"
    monkeypatch.setattr("sys.argv", ["selection_grid", "--n", "2000", "--d", "16", "--c", "10", "--fractions", "0.02",
                                     "--out", str(out), "--figure", str(tmp_path / "grid.png")])
    selection_grid.main()
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 * len(selection_grid.SAMPLERS) and all(row["same_picks_order_scores"] for row in rows)
    realistic = next(row for row in rows if row["pool"] == "realistic")
    assert 0.5 <= realistic["median_top1_probability"] <= 0.8  # the head is not saturated


def test_pipeline_scale_benchmark_tiny(tmp_path, monkeypatch):
    """The whole pipeline under dvc repro on a tiny realistic pool: its feature table has the
    train and test splits prepare expects."""
    from benchmarks import pipeline_scale

    out = tmp_path / "pipeline.json"
    monkeypatch.setattr("sys.argv", [
        "pipeline_scale", "--n", "3000", "--test", "300", "--d", "16", "--c", "10", "--val", "200", "--initial", "100",
        "--budget", "50", "--rounds", "1", "--pool", "realistic", "--workdir", str(tmp_path / "work"), "--out", str(out)])
    pipeline_scale.main()
    report = json.loads(out.read_text())
    assert report["pool"] == "realistic" and report["shape"]["train_rows"] == 3000
    assert any(row["stage"].startswith("select") for row in report["stages"])


def test_gpu_benchmark_runs_its_code_path_on_the_cpu(tmp_path, monkeypatch):
    """benchmarks/gpu.sh's script, every part, at a tiny shape on torch's CPU device: the same calls
    a GPU run makes (fast products through torch, the head trained there, extraction)."""
    from benchmarks import gpu

    out = tmp_path / "gpu.json"
    monkeypatch.setattr("sys.argv", [
        "gpu", "--device", "cpu", "--n", "3000", "--d", "32", "--c", "10", "--samplers", "base,margin", "--budget", "40",
        "--labeled", "200", "--probe-epochs", "1", "--images", "96", "--image-size", "48", "--batch-size", "32",
        "--workdir", str(tmp_path / "work"), "--out", str(out)])
    gpu.main()
    report = json.loads(out.read_text())
    assert set(report["parts_seconds"]) == {"selection", "training", "extraction"}
    for row in report["selection"]["samplers"]:
        assert all(row[label]["same_as_cpu"] for label in ("device_float32", "device_bfloat16")), row
    assert report["training"]["full_probe"]["rows"] == 3000 and report["training"]["full_probe"]["epochs_run"] == 1
    assert [row["precision"] for row in report["extraction"]["results"]] == ["bfloat16", "float32"]


def test_every_results_file_names_its_machine_command_date_and_commit():
    """What a reader needs to weigh a figure; files from before the stamp say what was not recorded."""
    files = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "results").glob("*.json"))
    assert len(files) > 20
    missing = {path.name: [key for key in ("machine", "command", "date", "commit") if key not in json.loads(path.read_text())]
               for path in files}
    assert {name: keys for name, keys in missing.items() if keys} == {}


def test_blas_blocking_and_interval_passes_benchmarks_tiny(tmp_path, monkeypatch):
    """The two benchmarks behind the exact-selection page's re-blocking figures and the
    interval-passes table run at a tiny shape."""
    from benchmarks import blas_blocking, interval_passes

    out = tmp_path / "blocking.json"
    monkeypatch.setattr("sys.argv", ["blas_blocking", "--n", "600", "--d", "64", "--c", "12", "--workdir", str(tmp_path), "--out", str(out)])
    blas_blocking.main()
    runs = json.loads(out.read_text())["runs"]
    assert [run["pool"] for run in runs] == ["realistic", "imagenet"]
    assert all(0 <= run["exact_logits_undecided"]["share"] <= 1 for run in runs)
    out = tmp_path / "passes.json"
    monkeypatch.setattr("sys.argv", ["interval_passes", "--n", "5000", "--d", "32", "--c", "20", "--repeats", "1",
                                     "--workdir", str(tmp_path), "--out", str(out)])
    interval_passes.main()
    scores = json.loads(out.read_text())["scores"]
    assert [row["score"] for row in scores] == ["margin", "confidence", "entropy", "mase", "base"]


def test_conversion_benchmark_tiny(tmp_path, monkeypatch):
    """The float16 conversion benchmark runs at a tiny shape (blocks large enough for torch's path)
    and records every measurement of each method."""
    from benchmarks import conversion

    out = tmp_path / "conversion.json"
    monkeypatch.setattr("sys.argv", ["conversion", "--n", "12000", "--d", "64", "--c", "10", "--repeats", "2",
                                     "--workdir", str(tmp_path), "--out", str(out)])
    conversion.main()
    measured = json.loads(out.read_text())["measured"]
    assert sorted(measured) == sorted(["convert_numpy_one_thread_s", "convert_numpy_two_threads_s", "convert_as_float32_s",
                                       "bare_product_numpy_two_threads_s", "bare_product_as_float32_s"])
    assert all(len(values) == 2 and all(value > 0 for value in values) for values in measured.values())


def test_pipeline_scale_default_workspace_keeps_the_projects_params(tmp_path):
    """--pool default times the project's own run: its workspace's params.yaml is params.yaml as it is."""
    import argparse

    import yaml

    from benchmarks import pipeline_scale

    pipeline_scale.make_workspace(tmp_path / "work", None, argparse.Namespace())
    root = Path(__file__).resolve().parents[1]
    assert yaml.safe_load((tmp_path / "work" / "params.yaml").read_text()) == yaml.safe_load((root / "params.yaml").read_text())
    assert (tmp_path / "work" / ".dvc").is_dir() and (tmp_path / "work" / "dvc.yaml").read_text() == (root / "dvc.yaml").read_text()


def test_selection_breakdown_benchmark_tiny(tmp_path, monkeypatch):
    """The per-part timing of a selection runs at a tiny shape, names every part, and leaves the
    library's functions as they were."""
    from al_core.samplers import pool as pool_module
    from benchmarks import selection_breakdown

    stream = pool_module.Pool.map_unlabeled_bounds
    out = tmp_path / "breakdown.json"
    monkeypatch.setattr("sys.argv", ["selection_breakdown", "--n", "3000", "--d", "32", "--c", "20", "--repeats", "1",
                                     "--samplers", "base,mase", "--fractions", "0.01", "--workdir", str(tmp_path), "--out", str(out)])
    selection_breakdown.main()
    runs = json.loads(out.read_text())["runs"]
    assert [run["sampler"] for run in runs] == ["base", "mase"]
    for run in runs:
        assert {"product_wall_s", "convert_wall_s", "bound_cpu_s", "score_cpu_s", "consumer_cpu_s", "stream_wall_s"} <= set(run)
        assert run["budget"] == 30 and run["exact_rows"] + run["partial_rows"] > 0
    assert runs[0]["exact_rows"] >= 30  # BASE reports its picks' scores from their exact logits
    assert pool_module.Pool.map_unlabeled_bounds is stream
    table = selection_breakdown.compare([out], [out]).splitlines()
    assert len(table) == 4 and table[2].startswith("| base | 1.0% | ")
    from al_core.errors import InputError

    with pytest.raises(InputError, match="no such results file"):
        selection_breakdown.compare([tmp_path / "missing.json"], [out])
    (tmp_path / "other.json").write_text('{"runs": [{"sampler": "base"}]}')
    with pytest.raises(InputError, match="a run lacks consumer_cpu_s"):
        selection_breakdown.compare([tmp_path / "other.json"], [out])


def test_stream_precision_benchmark_tiny(tmp_path, monkeypatch):
    """Both streams run at every budget (the share rule lifted, then restored) and pick the same
    items; every repeat of each is recorded."""
    from al_core.samplers import boundary, pool
    from benchmarks import stream_precision

    out = tmp_path / "stream_precision.json"
    monkeypatch.setattr("sys.argv", ["stream_precision", "--n", "3000", "--d", "16", "--c", "10", "--fractions", "0.1",
                                     "--samplers", "margin,base", "--workdir", str(tmp_path), "--out", str(out)])
    shares = pool.COARSE_MAX_SHARE, boundary.BASE_COARSE_MAX_SHARE
    stream_precision.main()
    rows = json.loads(out.read_text())["rows"]
    assert [row["sampler"] for row in rows] == ["margin", "base"]
    assert all(row["same_picks_order_scores"] and len(row["bfloat16_s"]) == 2 for row in rows)
    assert all(row["bfloat16_notes"]["filter"] == "bfloat16" and row["float32_notes"]["filter"] == "float32" for row in rows)
    assert (pool.COARSE_MAX_SHARE, boundary.BASE_COARSE_MAX_SHARE) == shares


def test_exact_logits_and_near_uniform_benchmarks_tiny(tmp_path, monkeypatch):
    """The benchmarks behind the exact-logits slicing sentence and the near-uniform table run at a
    tiny shape: every slicing gives the same logits; every sampler's picks are exact and the same at
    the other chunk size."""
    from benchmarks import exact_logits, near_uniform

    out = tmp_path / "exact.json"
    monkeypatch.setattr("sys.argv", ["exact_logits", "--n", "3000", "--d", "64", "--c", "12", "--rows", "300", "--repeats", "1",
                                     "--workdir", str(tmp_path), "--out", str(out)])
    exact_logits.main()
    pools = json.loads(out.read_text())["pools"]
    assert [entry["pool"] for entry in pools] == ["realistic", "imagenet"]
    assert all(setting["same_logits"] for entry in pools for setting in entry["settings"].values())
    out = tmp_path / "uniform.json"
    monkeypatch.setattr("sys.argv", ["near_uniform", "--n", "3000", "--d", "32", "--c", "20", "--budget", "300", "--repeats", "1",
                                     "--chunk-sizes", "700", "--workdir", str(tmp_path), "--out", str(out)])
    near_uniform.main()
    rows = json.loads(out.read_text())["rows"]
    assert [row["sampler"] for row in rows] == ["base", "margin", "mase"]
    assert all(row["same_picks_order_scores_as_exact"] and row["same_picks_order_scores_at_chunk_sizes"] == {"700": True} for row in rows)


def test_float32_bound_benchmark_tiny(tmp_path, monkeypatch):
    """The benchmark runs at a tiny shape, the filter's bound held on every row, and its sliced
    product is the product: within gamma_(K + d/K - 1) ||x|| max ||w_c|| (plus the roundings the
    filter's bound adds) of the exact logits. Real errors lie far below such bounds, so this
    catches a wrong product (a piece of d left out), not a loose bound."""
    import numpy as np

    from al_core import linear
    from al_core.linear import accumulation_factor, reference_logits, row_norms
    from benchmarks import float32_bound
    from benchmarks.realistic_pool import build_named_pool

    out = tmp_path / "bound.json"
    monkeypatch.setattr(sys, "argv", ["float32_bound", "--n", "3000", "--d", "256", "--c", "40", "--rows", "1000", "--slices", "16,64,100",
                                      "--repeats", "1", "--selections", "imagenet:margin:0.1,realistic:margin_clustering:0.05",
                                      "--selection-width", "64", "--selection-repeats", "1", "--workdir", str(tmp_path), "--out", str(out)])
    widths = []  # the selections' sliced runs must stream through the sliced product
    product = float32_bound.sliced_product
    monkeypatch.setattr(float32_bound, "sliced_product",
                        lambda block, weight, bias, width, columns=None: widths.append(width) or product(block, weight, bias, width, columns))
    float32_bound.main()
    assert widths.count(64) > widths.count(16)
    report = json.loads(out.read_text())
    assert [run["pool"] for run in report["runs"]] == ["realistic", "imagenet"]
    assert all(run["bound_over_error"]["0.01"] >= 1.0 for run in report["runs"])
    assert report["runs"][0]["bound_factor"]["sliced_100"] == round(accumulation_factor(100 + 3 - 1, linear.UNIT_ROUNDOFF_32)
                                                                    / accumulation_factor(256, linear.UNIT_ROUNDOFF_32), 4)
    selections = report["selections"]
    assert [(row["pool"], row["sampler"]) for row in selections] == [("imagenet", "margin"), ("realistic", "margin_clustering")]
    assert all(row["same_picks_order_scores"] and row["refined_rows"]["sliced"] <= row["refined_rows"]["whole"] for row in selections)
    with pytest.raises(ValueError, match="BASE"):
        float32_bound.parse_cells("imagenet:base:0.1")
    features, weight, bias, _ = build_named_pool("realistic", tmp_path, 3000, 256, 40, 0)
    block = np.asarray(features[:1000], dtype=np.float32)
    exact = reference_logits(block, weight, bias).astype(np.float64)
    for width in (16, 64, 100):  # 100: a last piece of 56 columns
        sliced = float32_bound.sliced_product(block, weight, bias, width).astype(np.float64)
        gamma = accumulation_factor(width + -(-256 // width) - 1, linear.UNIT_ROUNDOFF_32)
        allowed = gamma * row_norms(block) * row_norms(weight).max() + 2.01 * linear.UNIT_ROUNDOFF_32 * np.abs(sliced).max(axis=1)
        assert (np.abs(sliced - exact).max(axis=1) <= allowed).all(), width
