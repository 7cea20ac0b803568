"""embed under torchrun: two CPU processes (gloo) give the single-process features, row for row."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from stages.cli import app
from tests.fakes import write_fake_fashion_mnist
from tests.test_pipeline import tiny_params


def test_two_process_embed_equals_one_process(tmp_path, monkeypatch):
    data_root = write_fake_fashion_mnist(tmp_path / "fashion", n_train=150, n_test=40)
    params = tiny_params(data_root)
    params["backbone"].update(shard_size=32, batch_size=16)
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["prepare"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    # One thread per process in both runs: CPU kernels' sums depend on the thread count.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")

    def embed():
        result = subprocess.run([sys.executable, "-m", "stages.cli", "embed"], env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout + result.stderr

    embed()
    single = Path("data/embed/features.npy").read_bytes()
    params["backbone"]["processes"] = 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = embed()
    assert "starting 2 processes" in output
    assert Path("data/embed/features.npy").read_bytes() == single
    meta = yaml.safe_load(Path("data/embed/meta.json").read_text())
    assert meta["processes"] == 2
    assert not any(Path("data/.embed-partial").iterdir())  # rank 0 cleaned up the shards
    assert np.load("data/embed/features.npy").shape[0] == 190


def test_two_process_select_equals_one_process(tmp_path, monkeypatch):
    data_root = write_fake_fashion_mnist(tmp_path / "fashion", n_train=300, n_test=60)
    params = tiny_params(data_root)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")

    def write(sampler: str, processes: int) -> None:
        params.update(sampler=sampler)
        params["select"]["processes"] = processes
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    write("base", 1)
    for command in (["prepare"], ["embed"], ["init"], ["labels", "init"], ["train", "r00", "init"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output + repr(result.exception)

    def select() -> tuple[bytes, str]:
        result = subprocess.run([sys.executable, "-m", "stages.cli", "select", "r00"], env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return Path("runs/r00/queried.parquet").read_bytes(), result.stdout + result.stderr

    for sampler in ("base", "random"):  # random does not shard: rank 0 selects alone
        write(sampler, 1)
        single, _ = select()
        write(sampler, 2)
        sharded, output = select()
        assert "starting 2 processes" in output
        assert sharded == single, sampler
