"""The catalogue of bad inputs and faults: each one stops with one clear line, and loses nothing.

Every case starts from a copy of a finished tiny run (prepare, embed, init, full, rounds r00 and
r01), breaks one thing as a user would, runs the `al` command that meets it, and checks: exit
code 2, exactly one output line, starting with "error:" and saying what is wrong and where, and
every artifact of the run byte-identical afterwards (the broken file aside). The README's
"Errors and recovery" section lists what is covered. Faults of whole runs (kill -9 during
embed, an output edited in place under DVC) are in tests/test_pipeline.py; kill -9 during an
import in tests/test_campaign_history.py.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from typer.testing import CliRunner

from stages.cli import app
from tests.error_messages import check_message
from tests.fakes import write_fake_fashion_mnist
from tests.test_datasets import image_folder, write_png
from tests.test_pipeline import tiny_params

ROUNDS = {"r00": "init", "r01": "r00"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    data_root = write_fake_fashion_mnist(root / "fashion", n_train=300, n_test=80)
    work = root / "work"
    work.mkdir()
    params = tiny_params(data_root)
    params["schedule"] = dict(ROUNDS)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        for command in (["prepare"], ["embed"], ["init"], ["labels", "init"], ["full"], ["train", "r00", "init"],
                        ["select", "r00"], ["labels", "r00"], ["train", "r01", "r00"], ["evaluate", "r01"], ["select", "r01"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, result.output
    return work


def enter_copy(finished: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh copy of a finished run, made the working directory (each case breaks its own copy)."""
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def run(finished_run, tmp_path, monkeypatch):
    return enter_copy(finished_run, tmp_path, monkeypatch)


def snapshot() -> dict[str, str]:
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in ("data", "runs") if Path(folder).exists() for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def set_param(dotted: str, value) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def fails_cleanly(command: list[str], expected: str, broken: str | None = None) -> str:
    """Run ``al command``; check exit code 1, one line naming the fault, and no artifact changed."""
    before = snapshot()
    result = CliRunner().invoke(app, command)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, f"exit {result.exit_code}: {result.output}{result.exception!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], lines[0]
    after = snapshot()
    if broken is not None:
        before.pop(broken, None), after.pop(broken, None)
    assert after == before, "an artifact changed"
    check_message(lines[0])
    return lines[0]


def truncate(path: str) -> str:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return path


# --- params.yaml: wrong values are refused before any work, naming the key --------------------

PARAM_CASES = [
    ("budget", 0, ["select", "r01"], "budget must be > 0"),
    ("seed", -1, ["init"], "seed must be >= 0"),
    ("initial_size", 0, ["init"], "initial_size must be > 0"),
    ("backbone.processes", 0, ["embed"], "backbone.processes must be > 0"),
    ("backbone.image_size", 0, ["embed"], "backbone.image_size must be >= 8"),
    ("select.partitons", 3, ["select", "r01"], "select.partitons is not a setting of select"),
    ("select.vaal.stepz", 10, ["select", "r01"], "select.vaal.stepz is not an option of sampler 'vaal'"),
    ("select.bse.order", "sequential", ["select", "r01"], "select.bse is not a sampler"),
    ("select.base.order", "zigzag", ["select", "r01"], "select.base.order must be one of round_robin, sequential"),
    ("select.margin_clustering.clusters", 0, ["cluster"], "select.margin_clustering.clusters must be > 0"),
    ("select.margin_clustering.cluster_ids", [1, 2], ["select", "r01"], "select.margin_clustering.cluster_ids is not an option"),
    ("train.lr", "fast", ["train", "r01", "r00"], "train.lr must be number"),
    ("train.mode", "probe", ["train", "r01", "r00"], "train.mode must be one of linear, finetune"),
    ("train.momentum", 1.5, ["train", "r01", "r00"], "train.momentum must be in [0, 1)"),
    ("data.val_size", -5, ["prepare"], "data.val_size must be > 0"),
    ("data.imbalance_ratio", 0.5, ["prepare"], "data.imbalance_ratio must be >= 1"),
    ("full.max_epochs", -1, ["full"], "full.max_epochs must be >= 0"),
    ("labels.source", "humans", ["labels", "init"], "labels.source must be one of oracle, annotations"),
    ("finetune.schedule", "linear", ["train", "r01", "r00"], "finetune.schedule must be one of cosine, step"),
    ("sampler", "bayesian", ["select", "r01"], "unknown sampler 'bayesian'"),
]


@pytest.mark.parametrize("key, value, command, expected", PARAM_CASES, ids=[case[0] for case in PARAM_CASES])
def test_bad_param(run, key, value, command, expected):
    set_param(key, value)
    fails_cleanly(command, expected)


def test_bad_image_size_leaves_no_partial_folder(run):
    set_param("backbone.image_size", 0)
    partial = set(Path("data").glob(".embed-partial/*"))
    fails_cleanly(["embed"], "backbone.image_size must be >= 8")
    assert set(Path("data").glob(".embed-partial/*")) == partial


def test_yaml_syntax_error(run):
    Path("params.yaml").write_text(Path("params.yaml").read_text().replace("budget: 15", "budget: [15"))
    fails_cleanly(["select", "r01"], "params.yaml is not valid YAML at line")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu(run):
    set_param("backbone.device", "cuda")
    fails_cleanly(["embed"], "backbone.device is 'cuda' but torch sees no CUDA GPU")


@pytest.mark.parametrize("schedule", [{"r00": "init", "r01": "r07"}, {"r00": "r01", "r01": "r00"}], ids=["missing round", "cycle"])
def test_schedule_that_is_not_a_chain(run, schedule):
    # Under `dvc repro` DVC's own message comes first (it builds the graph before any stage runs);
    # every `al` command names the schedule.
    set_param("schedule", schedule)
    fails_cleanly(["train", "r01", "r00"], "params.yaml: schedule.r0")


# --- artifacts: damaged, duplicated, missing, not finite ---------------------------------------

def test_truncated_parquet(run):
    fails_cleanly(["select", "r00"], "runs/r00/labeled.parquet is not a readable Parquet file",
                  broken=truncate("runs/r00/labeled.parquet"))


def test_truncated_features(run):
    fails_cleanly(["select", "r01"], "data/embed/features.npy is not a readable .npy array",
                  broken=truncate("data/embed/features.npy"))


def test_truncated_head(run):
    fails_cleanly(["select", "r01"], "runs/r01/head.npz is not a readable .npz archive", broken=truncate("runs/r01/head.npz"))


def test_missing_artifact(run):
    Path("runs/r01/head.npz").unlink()
    fails_cleanly(["select", "r01"], "runs/r01/head.npz does not exist; run the stage that writes it first",
                  broken="runs/r01/head.npz")


def test_duplicated_id_in_a_batch(run):
    path = "runs/r00/queried.parquet"
    queried = pl.read_parquet(path)
    pl.concat([queried, queried.head(1)]).write_parquet(path)
    fails_cleanly(["train", "r01", "r00"], f"{path} lists id {queried['id'][0]} more than once", broken=path)


def write_features_with_nan(row: int) -> str:
    features = np.load("data/embed/features.npy")
    features[row, 0] = np.nan
    np.save("data/embed/features.npy", features)
    return "data/embed/features.npy"


def test_nan_in_a_test_row_names_the_test_item(run):
    table = pl.read_parquet("data/prepare/pool.parquet")
    row = int(np.flatnonzero(table["split"].to_numpy() == "test")[3])
    fails_cleanly(["evaluate", "r01"], f"the features of test item id {table['id'][row]} hold NaN or inf",
                  broken=write_features_with_nan(row))


def test_nan_in_a_labeled_row_names_the_item(run):
    table = pl.read_parquet("data/prepare/pool.parquet")
    labeled_id = pl.read_parquet("runs/r00/labeled.parquet")["id"][0]
    row = int(np.flatnonzero(table["id"].to_numpy() == labeled_id)[0])
    fails_cleanly(["train", "r01", "r00"], f"features row {row} (item id {labeled_id}) of the training set holds NaN",
                  broken=write_features_with_nan(row))


def test_nan_in_an_unlabeled_pool_row(run):
    labeled = set(pl.read_parquet("runs/r01/labeled.parquet")["id"].to_list())
    table = pl.read_parquet("data/prepare/pool.parquet")
    row = next(i for i, (item, split) in enumerate(zip(table["id"], table["split"])) if split == "pool" and item not in labeled)
    fails_cleanly(["select", "r01"], f"features row {row} holds NaN or inf", broken=write_features_with_nan(row))


# --- checkpoints ---------------------------------------------------------------------------------

def test_text_file_as_checkpoint(run, tmp_path):
    (tmp_path / "weights.pth").write_text("these are not weights\n")
    set_param("backbone.checkpoint", str(tmp_path / "weights.pth"))
    fails_cleanly(["embed"], "is not a torch.save file")


def test_truncated_checkpoint(run, tmp_path):
    torch.save({"conv.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "weights.pth")
    set_param("backbone.checkpoint", truncate(str(tmp_path / "weights.pth")))
    fails_cleanly(["embed"], "is not a readable PyTorch checkpoint (truncated")


def test_missing_checkpoint(run, tmp_path):
    set_param("backbone.checkpoint", str(tmp_path / "nowhere.pth"))
    fails_cleanly(["embed"], "nowhere.pth does not exist")


def test_packaged_weights_for_another_architecture(run):
    set_param("backbone.checkpoint", "packaged:efficientnet_lite0")  # backbone.name is resnet10t
    fails_cleanly(["embed"], "holds the weights of timm's 'efficientnet_lite0', not of backbone.name 'resnet10t'")


def test_unknown_timm_model(run):
    set_param("backbone.name", "resnet_9000")
    fails_cleanly(["embed"], "timm has no model named 'resnet_9000'")


# --- datasets ------------------------------------------------------------------------------------

def test_missing_dataset(run, tmp_path):
    set_param("data.root", str(tmp_path / "missing"))
    fails_cleanly(["prepare"], "apt-get install dataset-fashion-mnist")


def test_manifest_listing_an_image_twice(run, tmp_path):
    for i in range(8):
        write_png(tmp_path / "img" / f"{i}.png", i % 2, seed=i)
    paths = [f"img/{i}.png" for i in range(8)] + ["img/3.png"]
    pl.DataFrame({"path": paths, "label": [i % 2 for i in range(8)] + [0],
                  "split": ["train"] * 6 + ["test"] * 3}).write_csv(tmp_path / "manifest.csv")
    set_param("data.dataset", "manifest")
    set_param("data.root", str(tmp_path / "manifest.csv"))
    fails_cleanly(["prepare"], "img/3.png twice (rows 4 and 9)")


def test_empty_class_folder(run, tmp_path):
    root = image_folder(tmp_path / "folder")
    (root / "train" / "yak").mkdir()
    set_param("data.dataset", "imagefolder")
    set_param("data.root", str(root))
    fails_cleanly(["prepare"], "train/yak holds no images")


def test_class_without_training_items(run, tmp_path):
    for i in range(8):
        write_png(tmp_path / "img" / f"{i}.png", i % 2, seed=i)
    pl.DataFrame({"path": [f"img/{i}.png" for i in range(8)], "label": [i % 2 for i in range(8)],
                  "split": ["train"] * 6 + ["test"] * 2}).write_csv(tmp_path / "manifest.csv")
    set_param("data.dataset", "manifest")
    set_param("data.root", str(tmp_path / "manifest.csv"))
    set_param("data.classes", ["0", "1", "2"])
    fails_cleanly(["prepare"], "class(es) ['2'] have no training items")


def test_feature_table_that_does_not_match_its_array(run, tmp_path):
    folder = tmp_path / "embeddings"
    folder.mkdir()
    np.save(folder / "features.npy", np.zeros((5, 4), np.float32))
    pl.DataFrame({"id": [0, 1, 2], "label": [0, 1, 0], "split": ["train", "train", "test"]}).write_parquet(folder / "items.parquet")
    set_param("data.dataset", "features")
    set_param("data.root", str(folder))
    fails_cleanly(["prepare"], "items.parquet has 3 rows but")


def test_a_malformed_command_line_exits_2_and_bad_input_1(tmp_path, monkeypatch):
    """A script can tell them apart: click's usage errors exit 2, the data or settings at fault 1."""
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["export"]).exit_code == 2  # missing ROUND
    assert CliRunner().invoke(app, ["samplers", "--bogus"]).exit_code == 2
    result = CliRunner().invoke(app, ["campaign"])  # no params.yaml here
    assert result.exit_code == 1 and result.output.startswith("error: ")
