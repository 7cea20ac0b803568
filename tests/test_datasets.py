"""Dataset readers (CIFAR-10 files, ImageFolder, manifests), subsets, image files, and prepare/embed on files."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from al_core.data import DATASETS, listed_index, long_tail_index
from al_core.data.images import ImageFiles, check_images, load_image
from al_core.errors import DatasetMissingError, InputError
from stages.cli import app

ROOT = Path(__file__).resolve().parents[1]


def write_png(path: Path, label: int, size=(40, 30), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 60, size=(size[1], size[0], 3)).astype(np.uint8)
    pixels[:, :, label % 3] = 200  # each class its own colour
    Image.fromarray(pixels).save(path)


def image_folder(root: Path, per_class=6, classes=("cat", "dog", "eel")) -> Path:
    for split, count in (("train", per_class), ("test", 2)):
        for label, name in enumerate(classes):
            for i in range(count):
                write_png(root / split / name / f"{i}.png", label, seed=i + 10 * label)
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_cifar10_batches(tmp_path, monkeypatch):
    """A tiny CIFAR-10 in the real format, read by torchvision (its published MD5s swapped for the fakes')."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import calculate_md5

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        batch = {"data": rng.integers(0, 255, size=(n, 3072)).astype(np.uint8), "labels": [int(v) for v in rng.integers(0, 10, size=n)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    md5 = {path.name: calculate_md5(str(path)) for path in folder.iterdir()}
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]})
    for root in (tmp_path, folder):
        dataset = DATASETS["cifar10"](root)
        assert dataset.train.images.shape == (20, 32, 32, 3) and len(dataset.test) == 3
        assert dataset.test.ids.tolist() == [20, 21, 22] and dataset.class_names[3] == "c3"
    first = pickle.loads((folder / "data_batch_1").read_bytes())["data"][0]
    assert dataset.train.images[0, 0, 1].tolist() == [first[1], first[1025], first[2049]]  # HWC from CHW rows
    with pytest.raises(DatasetMissingError, match="CIFAR10"):
        DATASETS["cifar10"](tmp_path / "nowhere")
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:-10])  # truncated: refused by its MD5
    with pytest.raises(DatasetMissingError, match="corrupted"):
        DATASETS["cifar10"](tmp_path)


def test_image_folder_and_its_errors(tmp_path):
    root = image_folder(tmp_path / "images")
    dataset = DATASETS["imagefolder"](root)
    assert dataset.class_names == ("cat", "dog", "eel")
    assert len(dataset.train) == 19 and len(dataset.test) == 6  # the broken file is still listed here
    assert dataset.train.labels[dataset.train.paths == str(root / "train/eel/0.png")].tolist() == [2]
    write_png(root / "val" / "fox" / "0.png", 0)
    with pytest.raises(InputError, match=r"class folders \['fox'\] are not among the 3 training classes"):
        DATASETS["imagefolder"](root)
    with pytest.raises(DatasetMissingError, match="train/<class>"):
        DATASETS["imagefolder"](tmp_path / "empty")


def test_manifest_names_ints_and_splits(tmp_path):
    for i in range(6):
        write_png(tmp_path / "img" / f"{i}.png", i % 2)
    rows = {"path": [f"img/{i}.png" for i in range(6)], "label": ["b", "a", "b", "a", "b", "a"],
            "split": ["train", "train", "train", "train", "val", "test"]}
    pl.DataFrame(rows).write_csv(tmp_path / "m.csv")
    dataset = DATASETS["manifest"](tmp_path / "m.csv")
    assert dataset.class_names == ("a", "b") and dataset.train.labels.tolist() == [1, 0, 1, 0]
    assert dataset.test.paths.tolist() == [str(tmp_path / "img/5.png")]
    assert dataset.val.paths.tolist() == [str(tmp_path / "img/4.png")]  # val rows: the validation set, as val/ folders
    with pytest.raises(InputError, match=r"labels \['b'\] are not among the 1 classes"):
        DATASETS["manifest"](tmp_path / "m.csv", classes=("a",))
    pl.DataFrame({"path": rows["path"], "label": [0, 1, 0, 1, 0, 1]}).write_parquet(tmp_path / "m.parquet")
    unsplit = DATASETS["manifest"](tmp_path / "m.parquet", test_fraction=0.34, split_seed=1)
    assert len(unsplit.test) == 2 and unsplit.class_names == ("0", "1")
    pl.DataFrame({"path": rows["path"], "label": [0, 1, 0, 1, 0, 7], "split": rows["split"]}).write_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="label 7 is outside the 2 classes"):
        DATASETS["manifest"](tmp_path / "bad.csv")


def test_long_tail_profile():
    labels = np.repeat(np.arange(10), 100)
    kept = long_tail_index(labels, 10, 10.0, seed=0)
    counts = np.bincount(labels[kept], minlength=10)
    assert counts[0] == 100 and counts[9] == 10
    assert counts.tolist() == [int(100 * 10 ** (-c / 9)) for c in range(10)]
    assert long_tail_index(labels, 10, 1.0, seed=0).size == 1000
    with pytest.raises(InputError, match="imbalance_ratio must be >= 1"):
        long_tail_index(labels, 10, 0.5, seed=0)


def test_file_list_keeps_named_items(tmp_path):
    dataset = DATASETS["imagefolder"](image_folder(tmp_path / "images"))
    (tmp_path / "list.txt").write_text("train/cat/1.png 0\ntrain/eel/0.png 2\n")
    kept = listed_index(dataset.train, tmp_path / "list.txt", tmp_path / "images")
    assert [Path(p).name for p in dataset.train.paths[kept]] == ["1.png", "0.png"]
    (tmp_path / "list.txt").write_text("train/cat/99.png\n")
    with pytest.raises(InputError, match="1 entries are not in the training set"):
        listed_index(dataset.train, tmp_path / "list.txt", tmp_path / "images")


def test_image_files_decode_crop_and_report(tmp_path):
    write_png(tmp_path / "a.png", 0, size=(64, 32))
    (tmp_path / "b.png").write_bytes(b"garbage")
    assert load_image(tmp_path / "a.png", 28).shape == (28, 28, 3)
    assert list(check_images([str(tmp_path / "a.png"), str(tmp_path / "b.png")], progress=False)) == [1]
    files = ImageFiles([str(tmp_path / "a.png"), str(tmp_path / "b.png")], 16)
    batch = files[0:2]
    assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.uint8
    assert batch[1].max() == 0 and list(files.failed) == [1]


def test_prepare_and_embed_an_image_folder(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "images")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dataset="imagefolder", root=str(root), val_size=3)
    params["initial_size"] = 5
    params["backbone"].update(name="resnet10t", checkpoint="none", image_size=32, batch_size=4)
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(work)
    for command in ("prepare", "embed", "init"):
        result = CliRunner().invoke(app, [command])
        assert result.exit_code == 0, result.output + repr(result.exception)
    table = pl.read_parquet("data/prepare/pool.parquet")
    assert table.columns == ["id", "label", "split", "path"] and table.height == 24
    assert not Path("data/prepare/images.npy").exists()
    skipped = pl.read_csv("data/prepare/skipped.csv")
    assert skipped["path"].to_list() == [str(root / "train/dog/broken.jpg")]
    features = np.load("data/embed/features.npy")
    assert features.shape[0] == 24 and np.isfinite(features).all()
    # The batch for annotators names each image's file, as the pool table does.
    queried = pl.read_parquet("runs/init/queried.parquet")
    assert queried.columns == ["id", "round", "sampler", "score", "rank", "path"] and queried.height == 5
    expected = queried.select("id").join(table.select("id", "path"), on="id", how="left")["path"]
    assert queried["path"].to_list() == expected.to_list()
    assert all(Path(path).is_file() for path in queried["path"])


def test_val_is_the_validation_set_in_every_layout(tmp_path):
    from al_core.data import DATASETS
    from al_core.errors import DatasetMissingError

    root = image_folder(tmp_path / "labeled")
    (root / "train" / "dog" / "broken.jpg").unlink()
    for label, name in enumerate(("cat", "dog", "eel")):
        write_png(root / "val" / name / "0.png", label, seed=77 + label)
    dataset = DATASETS["imagefolder"](root)
    assert len(dataset.val) == 3 and all("/val/" in path for path in dataset.val.paths)  # validation, not test
    assert all("/test/" in path for path in dataset.test.paths) and len(dataset.train) == 18
    ids = np.concatenate([dataset.train.ids, dataset.val.ids, dataset.test.ids])
    assert np.unique(ids).size == ids.size
    shutil.move(root / "test", tmp_path / "elsewhere")  # the ImageNet layout: train/ and val/ only
    with pytest.raises(DatasetMissingError, match="val/ is the validation set here; the test set goes in test/"):
        DATASETS["imagefolder"](root)
