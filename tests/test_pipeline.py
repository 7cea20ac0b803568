"""The stages end to end on tiny data: in-process through the CLI, and once through DVC."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from stages.cli import app
from tests.fakes import write_fake_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = {"r00": "init", "r01": "r00", "r02": "r01"}


def tiny_params(data_root: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(initial_size=20, budget=15, schedule=dict(ROUNDS))
    params["data"].update(root=str(data_root), val_size=60)
    params["backbone"].update(name="resnet10t", checkpoint="none", image_size=32, batch_size=64)
    params["train"].update(max_epochs=15, patience=5)
    params["select"]["chunk_size"] = 37
    return params


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    data_root = write_fake_fashion_mnist(tmp_path / "fashion", n_train=300, n_test=80)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    (work / "params.yaml").write_text(yaml.safe_dump(tiny_params(data_root), sort_keys=False))
    monkeypatch.chdir(work)
    return work


def al(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def run_all_stages() -> None:
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    for round_name, previous in ROUNDS.items():
        al("labels", previous)
        al("train", round_name, previous)
        al("evaluate", round_name)
        al("select", round_name)


def test_stages_in_process(workspace, monkeypatch):
    run_all_stages()
    pool = pl.read_parquet("data/prepare/pool.parquet")
    assert pool["split"].value_counts().sort("split")["count"].to_list() == [240, 80, 60]  # pool, test, val
    features = np.load("data/embed/features.npy")
    assert features.shape == (380, 512) and features.dtype == np.float16

    labeled = pl.read_parquet("runs/r02/labeled.parquet")
    assert labeled.height == 20 + 15 + 15
    assert labeled["id"].n_unique() == labeled.height
    assert labeled["round"].to_list() == ["init"] * 20 + ["r00"] * 15 + ["r01"] * 15
    queried = pl.read_parquet("runs/r02/queried.parquet")
    assert queried.columns == ["id", "round", "sampler", "score", "rank"]
    assert queried.height == 15 and set(queried["id"]).isdisjoint(set(labeled["id"]))
    pool_ids = set(pool.filter(pl.col("split") == "pool")["id"])
    assert set(queried["id"]) <= pool_ids

    # The same seed gives byte-identical selection files.
    first = Path("runs/r01/queried.parquet").read_bytes()
    al("select", "r01")
    assert Path("runs/r01/queried.parquet").read_bytes() == first

    result = al("report", "--scope", "run")
    assert "| r02 | 50 |" in result.output
    summary = yaml.safe_load(Path("metrics.json").read_text())
    assert set(summary) == {"labels", "final_top1", "final_top5", "mean_top1", "final_imbalance", "full_top1", "full_top5",
                            "stop_labels"}
    for stem in ("learning_curves", "balance", "class_histograms"):
        assert Path(f"reports/figures/{stem}.png").stat().st_size > 1000
    assert summary["labels"] == 50
    # The fake classes are trivially separable by their bright band: learning must show.
    assert summary["full_top1"] > 0.5

    # checks.numerics reads the run's files and recomputes each BASE round in float64.
    from checks import numerics
    numerics.main(["--out", "numerics.json"])
    report = json.loads(Path("numerics.json").read_text())
    assert [row["round"] for row in report["rounds"]] == list(ROUNDS)
    for row in report["rounds"]:
        assert row["sampler"] == "base" and row["base_order"] == "round_robin" and row["picks"] == 15
        # The README's claim, every round: float64 distances on the float32 logits give the
        # pipeline's picks in the pipeline's order.
        assert row["float64_on_float32_logits"]["same_order"], row
        if row["float64"]["smallest_relative_gap_at_a_cutoff"] > 1e-3:  # no near-tie: float32 cannot matter
            assert row["float64"]["same_items"], row


def test_budget_larger_than_pool_takes_the_rest(workspace):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["budget"] = 10_000
    Path("params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("prepare", "embed", "init"):
        al(stage)
    al("labels", "init")
    al("train", "r00", "init")
    result = al("select", "r00")
    assert "exceeds the 220 unlabeled items left" in result.output
    assert pl.read_parquet("runs/r00/queried.parquet").height == 220


def test_errors_are_one_clear_line(workspace, tmp_path):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["data"]["root"] = str(tmp_path / "missing")
    Path("params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["prepare"])
    assert result.exit_code == 1
    assert "apt-get install dataset-fashion-mnist" in result.output

    params["data"]["root"] = str(tmp_path / "fashion")
    params["sampler"] = "bsae"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("prepare", "embed", "init"):
        al(stage)
    al("labels", "init")
    al("train", "r00", "init")
    result = CliRunner().invoke(app, ["select", "r00"])
    assert result.exit_code == 1
    assert "unknown sampler 'bsae'; known samplers: badge, balanced_random, balancing, base, confidence" in result.output

    result = CliRunner().invoke(app, ["evaluate", "r01"])
    assert result.exit_code == 1 and "runs/r01/head.npz does not exist" in result.output


def test_nan_features_are_reported(workspace):
    for stage in ("prepare", "embed", "init"):
        al(stage)
    al("labels", "init")
    al("train", "r00", "init")
    features = np.load("data/embed/features.npy")
    features[7, 0] = np.nan
    np.save("data/embed/features.npy", features)
    result = CliRunner().invoke(app, ["select", "r00"])
    assert result.exit_code == 1 and "features row 7 holds NaN or inf" in result.output


def test_a_half_written_temporary_file_is_ignored_and_a_finished_embed_cleans_up(workspace):
    al("prepare")
    al("embed")
    complete = np.load("data/embed/features.npy")
    shutil.rmtree("data/embed")
    partial_dirs = list(Path("data/.embed-partial").glob("*")) if Path("data/.embed-partial").exists() else []
    assert partial_dirs == []  # a finished run cleans up after itself
    Path("data/embed").mkdir()
    Path("data/embed/.features.npy.abc.npy").write_bytes(b"half")
    al("embed")
    np.testing.assert_array_equal(np.load("data/embed/features.npy"), complete)


def test_embed_killed_mid_run_resumes_from_its_finished_shards(workspace, monkeypatch):
    """kill -9 of `al embed` once two shards are done: the next run computes only the others, and
    its features equal an uninterrupted run's, bit for bit."""
    import signal
    import time

    from al_core import features as extraction

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["backbone"]["shard_size"] = 32  # 380 images: 12 shards
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    al("prepare")
    al("embed")
    complete = np.load("data/embed/features.npy")
    shutil.rmtree("data/embed")
    run = subprocess.Popen([sys.executable, "-m", "stages.cli", "embed"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(Path("data/.embed-partial").glob("*/shard_*[0-9].npy"))) < 2 and time.monotonic() < deadline:
        assert run.poll() is None, "embed finished before it could be killed"
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    finished = {path.name for path in Path("data/.embed-partial").glob("*/shard_*[0-9].npy")}
    assert 2 <= len(finished) < 12 and not Path("data/embed/features.npy").exists()
    written = []
    original = extraction.write_npy
    monkeypatch.setattr(extraction, "write_npy", lambda path, array: (written.append(Path(path).name), original(path, array)))
    al("embed")
    assert not finished & set(written)  # the finished shards were not computed again
    assert len(set(written)) == 12 - len(finished)
    assert np.load("data/embed/features.npy").tobytes() == complete.tobytes()


def test_schedule_command_rewrites_only_the_schedule(workspace):
    before = Path("params.yaml").read_text()
    al("schedule", "4")
    params = yaml.safe_load(Path("params.yaml").read_text())
    assert params["schedule"] == {"r00": "init", "r01": "r00", "r02": "r01", "r03": "r02"}
    assert params["budget"] == yaml.safe_load(before)["budget"]


def dvc_runner():
    """``(env, run)``: the environment with this Python's scripts (al, dvc) first on PATH, and a
    function that runs a command there and returns its output (failing the test on a non-zero exit)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    def run(*command):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    return env, run


def dvc_project(workspace: Path, run) -> None:
    """The workspace as a git + DVC project with the code dvc.yaml lists as each stage's dependencies."""
    for package in ("al_core", "stages", "pipeline", "reporting"):
        shutil.copytree(ROOT / package, workspace / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "annotations", workspace / "data" / "annotations")  # the (empty) annotation store
    shutil.copy(ROOT / ".dvcignore", workspace / ".dvcignore")
    for command in (("git", "init", "-q"), ("git", "config", "user.email", "test@example.com"),
                    ("git", "config", "user.name", "test"), ("dvc", "init", "-q")):
        run(*command)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for DVC")
def test_dvc_repro_then_experiment_reuses_embeddings(workspace):
    env, run = dvc_runner()
    dvc_project(workspace, run)
    shutil.copy(ROOT / ".dvc" / "config", workspace / ".dvc" / "config")  # the project's cache settings
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    out = run("dvc", "repro")
    assert "Running stage 'embed'" in out
    assert Path("metrics.json").exists()

    # A user trims the batch for annotators in place: the cache must not follow, and DVC must see it.
    batch = Path("runs/r02/queried.parquet")
    original = batch.read_bytes()
    pl.read_parquet(batch).head(3).write_parquet(batch)
    assert "modified" in run("dvc", "status", "select@r02")
    run("dvc", "repro")
    assert batch.read_bytes() == original
    run("git", "add", "-A")
    run("git", "commit", "-qm", "results of the default sampler")
    out = run("dvc", "exp", "run", "-S", "sampler=random")
    assert "Running stage 'embed'" not in out
    assert "Running stage 'train@r00'" not in out  # the first head does not depend on the sampler
    assert "Running stage 'select@r00'" in out
    summary = yaml.safe_load(Path("metrics.json").read_text())
    assert summary["labels"] == 50
    assert "sampler=random" in Path("reports/table.md").read_text()
    shown = run("dvc", "exp", "show", "--csv")
    assert "final_top1" in shown and "random" in shown
    # `al report` gathers the baseline commit (base) and the experiment (random, also the workspace).
    run("al", "report")
    experiments = pl.read_csv("reports/compare/experiments.csv")
    assert sorted(experiments["sampler"].to_list()) == ["base", "random"]
    assert Path("reports/compare/index.html").exists()
    compared = run("al", "compare")
    assert "top1@50" in compared
    # Nothing changed: the source stage runs (it always does) and nothing after it.
    out = run("dvc", "repro")
    assert "Running stage 'source'" in out and "Running stage 'prepare'" not in out and "Running stage 'embed'" not in out
    # The dataset replaced by another of the same shape (different images): never served stale.
    write_fake_fashion_mnist(workspace.parent / "fashion", n_train=300, n_test=80, seed=7)
    out = run("dvc", "repro")
    assert "Running stage 'prepare'" in out and "Running stage 'embed'" in out and "source: " in out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for DVC")
def test_dvc_repro_killed_during_select_recovers_the_same_outputs(workspace):
    """kill -9 of `dvc repro` (and its stage process) while select@r01 runs: the next `dvc repro`
    re-runs what is missing and every round's picks are the uninterrupted run's, byte for byte."""
    import signal
    import time

    env, run = dvc_runner()
    dvc_project(workspace, run)
    run("dvc", "repro")
    picks = {path: path.read_bytes() for path in sorted(Path("runs").glob("*/queried.parquet"))}
    assert len(picks) == 1 + len(ROUNDS)
    repro = subprocess.Popen(["dvc", "repro", "-f", "-s", "select@r01"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = ""
    while "Running stage 'select@r01'" not in seen:
        line = repro.stdout.readline()
        assert line, f"dvc repro ended before select@r01 ran: {seen}"
        seen += line
    time.sleep(1.0)  # inside the stage: its process is loading or selecting
    os.killpg(repro.pid, signal.SIGKILL)
    repro.wait()
    assert "select@r01" in run("dvc", "status")  # the kill left the stage unfinished
    out = run("dvc", "repro")
    assert "select@r01" in out
    assert {path: path.read_bytes() for path in picks} == picks
    assert run("dvc", "status").strip() == "source:\n\talways changed"  # nothing else pending
