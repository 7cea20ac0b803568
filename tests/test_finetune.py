"""End-to-end fine-tuning: the training loop, its augmentation, and train.mode finetune in the stages."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from al_core.backbones import load_backbone
from al_core.errors import InputError
from al_core.finetune import FinetuneConfig, augment, finetune
from stages.cli import app
from tests.fakes import write_fake_fashion_mnist
from tests.test_pipeline import tiny_params


def banded_images(n=48, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    images = rng.integers(0, 60, size=(n, 16, 16)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 4 * label + 2: 4 * label + 5, :] = 250
    return images, labels


def run_finetune(seed=0, **config):
    backbone, preprocessing, _ = load_backbone("resnet10t", "none")
    images, labels = banded_images()
    train, val = np.arange(0, 32), np.arange(32, 48)
    return finetune(backbone, images, train, labels[train], val, labels[val], num_classes=3, image_size=16,
                    preprocessing=preprocessing, config=FinetuneConfig(batch_size=8, epochs=3, lr=0.05, **config),
                    seed=seed, progress=False)


def test_finetune_trains_the_network_and_is_deterministic():
    first, second = run_finetune(), run_finetune()
    assert first.weight.shape == (3, first.backbone.num_features) and first.bias.shape == (3,)
    np.testing.assert_array_equal(first.weight, second.weight)
    untouched, _, _ = load_backbone("resnet10t", "none")
    # The convolutions' weights (BatchNorm's running statistics move on any training-mode forward pass,
    # even with the backbone frozen): the backbone itself was trained, not only the head.
    trained, before = first.backbone.state_dict(), untouched.state_dict()
    convolutions = [name for name, value in before.items() if name.endswith("weight") and value.ndim == 4]
    assert len(convolutions) >= 10
    assert all(not torch.equal(trained[name], before[name]) for name in convolutions)
    assert 1 <= first.history["epochs_run"] <= 3 and len(first.history["val_curve"]) == first.history["epochs_run"]


def test_step_schedule_and_bad_configs():
    assert run_finetune(schedule="step", step_epochs=1, augment=False).history["epochs_run"] >= 1
    with pytest.raises(InputError, match="finetune.schedule"):
        FinetuneConfig(schedule="linear")
    with pytest.raises(InputError, match="finetune.lr must be positive"):
        FinetuneConfig(lr=0)


def test_augment_keeps_shape_and_follows_its_generator():
    batch = torch.rand(4, 3, 12, 12)
    one = augment(batch, torch.Generator().manual_seed(1))
    two = augment(batch, torch.Generator().manual_seed(1))
    assert one.shape == batch.shape and torch.equal(one, two)
    assert not torch.equal(one, augment(batch, torch.Generator().manual_seed(2)))


@pytest.fixture
def finetune_workspace(tmp_path, monkeypatch):
    data_root = write_fake_fashion_mnist(tmp_path / "fashion", n_train=160, n_test=40)
    params = tiny_params(data_root)
    params["train"]["mode"] = "finetune"
    params["finetune"].update(epochs=2, batch_size=16, lr=0.05)
    params["backbone"].update(shard_size=64, batch_size=32)
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(work)
    for command in (["prepare"], ["embed"], ["init"], ["labels", "init"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output + repr(result.exception)
    return work, params


def test_finetune_mode_gives_each_round_its_own_features(finetune_workspace):
    for command in (["train", "r00", "init"], ["evaluate", "r00"], ["select", "r00"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output + repr(result.exception)
    own = np.load("runs/r00/model/features.npy")
    frozen = np.load("data/embed/features.npy")
    assert own.shape == frozen.shape and not np.array_equal(own, frozen)
    meta = yaml.safe_load(Path("runs/r00/model/meta.json").read_text())
    assert meta["mode"] == "finetune" and meta["epochs_run"] >= 1
    metrics = yaml.safe_load(Path("runs/r00/metrics.json").read_text())
    assert metrics["labels"] == 20 and 0 <= metrics["top1"] <= 1


def test_finetune_under_torchrun_with_two_processes(finetune_workspace):
    work, params = finetune_workspace
    params["backbone"]["processes"] = 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "stages.cli", "train", "r00", "init"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert np.load("runs/r00/model/features.npy").shape[0] == 200
    assert np.load("runs/r00/head.npz")["weight"].shape[0] == 10
