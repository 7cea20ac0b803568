"""data.dataset: features: users who bring their own embeddings start from an N x d array + a table."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from al_core.data import DATASETS
from al_core.errors import InputError
from tests.fakes import enter_workspace, invoke_al

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 6


def write_feature_dataset(folder: Path, n_train=400, n_test=90, d=24, dtype=np.float32, seed=0, with_paths=True) -> Path:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = rng.integers(0, CLASSES, size=n)
    centers = rng.normal(scale=3.0, size=(CLASSES, d))
    features = (centers[labels] + rng.normal(size=(n, d))).astype(dtype)
    split = np.where(rng.permutation(n) < n_test, "test", "train")  # test rows interleaved with train rows
    ids = rng.permutation(10 * n)[:n].astype(np.int64)  # arbitrary unique ids, not row numbers
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "features.npy", features)
    table = {"id": ids, "label": labels.astype(np.int64), "split": split}
    if with_paths:
        table["path"] = [f"/images/{i}.jpg" for i in ids]
    pl.DataFrame(table).write_parquet(folder / "items.parquet")
    return folder


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    data = write_feature_dataset(tmp_path / "embeddings")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(initial_size=30, budget=20, schedule={"r00": "init", "r01": "r00"})
    params["data"].update(dataset="features", root=str(data), val_size=50)
    params["train"].update(max_epochs=10, patience=5)
    params["select"]["chunk_size"] = 41
    enter_workspace(tmp_path, params, monkeypatch)
    return data


al = invoke_al


def test_pipeline_runs_on_precomputed_features(workspace):
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    table = pl.read_parquet("data/prepare/pool.parquet")
    source = np.load(workspace / "features.npy")
    items = pl.read_parquet(workspace / "items.parquet")
    features = np.load("data/embed/features.npy")
    # Row i of features.npy is the user's row for the table's item i, in float16.
    assert features.dtype == np.float16 and features.shape == (items.height, 24)
    assert np.array_equal(features, source[table["feature_row"].to_numpy()].astype(np.float16))
    assert np.array_equal(items["id"].to_numpy()[table["feature_row"].to_numpy()], table["id"].to_numpy())
    assert table.filter(pl.col("split") == "test").height == 90
    assert json.loads(Path("data/embed/meta.json").read_text())["backbone"] is None
    for round_name, previous in (("r00", "init"), ("r01", "r00")):
        al("labels", previous)
        al("train", round_name, previous)
        al("evaluate", round_name)
        al("select", round_name)
    queried = pl.read_parquet("runs/r01/queried.parquet")
    assert queried.height == 20
    # The user's paths travel with the batch, for the annotators.
    assert queried["path"].to_list() == [f"/images/{i}" + ".jpg" for i in queried["id"].to_list()]
    top1 = json.loads(Path("runs/r01/metrics.json").read_text())["top1"]
    assert top1 > 0.5 and top1 == recomputed_top1("r01")


def test_finetuning_needs_images(workspace):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["train"]["mode"] = "finetune"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("prepare", "embed", "init"):
        al(stage)
    al("labels", "init")
    result = al("train", "r00", "init", expect=1)
    assert "data.dataset features holds no images" in result.output


def test_names_in_labels_and_float16_input(tmp_path):
    folder = write_feature_dataset(tmp_path / "f16", dtype=np.float16, with_paths=False)
    items = pl.read_parquet(folder / "items.parquet")
    items.with_columns(pl.format("class_{}", pl.col("label")).alias("label")).write_csv(folder / "items.csv")
    (folder / "items.parquet").unlink()
    dataset = DATASETS["features"](folder)
    assert dataset.class_names == tuple(f"class_{c}" for c in range(CLASSES))
    assert dataset.train.paths is None and len(dataset.train) + len(dataset.test) == items.height


@pytest.mark.parametrize("damage, message", [
    (lambda f, t: np.save(f, np.zeros((3, 4), np.float32)), "has 490 rows but"),
    (lambda f, t: np.save(f, np.zeros((490, 4), np.int32)), "must be an \\(N, d\\) float16 or float32 array"),
    (lambda f, t: f.write_text("not numpy"), "is not a readable .npy array"),
    (lambda f, t: t.with_columns(pl.lit(7, pl.Int64).alias("id")).write_parquet(t_path(f)), "id 7 appears more than once"),
    (lambda f, t: t.with_columns(pl.lit("holdout").alias("split")).write_parquet(t_path(f)), "split holds \\['holdout'\\]"),
    (lambda f, t: t.drop("label").write_parquet(t_path(f)), "lacks column\\(s\\) \\['label'\\]"),
    (lambda f, t: t.with_columns(pl.lit("train").alias("split")).write_parquet(t_path(f)), "needs train rows and test rows"),
])
def test_bad_inputs_are_named(tmp_path, damage, message):
    folder = write_feature_dataset(tmp_path / "bad")
    damage(folder / "features.npy", pl.read_parquet(folder / "items.parquet"))
    with pytest.raises(InputError, match=message):
        DATASETS["features"](folder)


def t_path(features_file: Path) -> Path:
    return features_file.parent / "items.parquet"


def test_a_non_finite_row_is_named_with_its_id(workspace):
    source = np.load(workspace / "features.npy")
    source[5, 2] = 1e6  # beyond float16's range: inf after the conversion
    np.save(workspace / "features.npy", source)
    al("prepare")
    result = al("embed", expect=1)
    item = pl.read_parquet(workspace / "items.parquet")["id"][5]
    assert f"row 5 (id {item}) holds NaN or inf" in result.output
    assert not Path("data/embed/features.npy").exists()


def test_missing_folder_says_what_it_expects(workspace, tmp_path):
    with pytest.raises(Exception, match="must hold features.npy"):
        DATASETS["features"](tmp_path / "nowhere")


def test_empty_id_cell_and_float_labels(tmp_path):
    folder = write_feature_dataset(tmp_path / "csv", with_paths=False)
    items = pl.read_parquet(folder / "items.parquet")
    (folder / "items.parquet").unlink()
    as_floats = items.with_columns(pl.col("label").cast(pl.Float64))  # labels written 2.0: classes 0..5, not "2.0"
    as_floats.write_csv(folder / "items.csv")
    dataset = DATASETS["features"](folder)
    assert dataset.class_names == tuple(str(c) for c in range(CLASSES))
    assert np.array_equal(np.concatenate([dataset.train.labels, dataset.test.labels]).sort(), items["label"].to_numpy().copy().sort())
    text = (folder / "items.csv").read_text().splitlines()
    text[4] = "," + text[4].split(",", 1)[1]  # row 4 of the table loses its id
    (folder / "items.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match="items.csv: row 4 has no id; every row needs one"):
        DATASETS["features"](folder)
    as_floats.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(2.5).otherwise(pl.col("label")).alias("label")).write_csv(folder / "items.csv")
    with pytest.raises(InputError, match="row 3 has label 2.5; expected an integer"):
        DATASETS["features"](folder)


def recomputed_top1(round_name: str) -> float:
    """The round's test top-1 from its saved head and the stored features, as a reader would check it."""
    table = pl.read_parquet("data/prepare/pool.parquet")
    features = np.load("data/embed/features.npy").astype(np.float32)
    head = np.load(f"runs/{round_name}/head.npz")
    test = (table["split"] == "test").to_numpy()
    assert test.sum() >= 30
    logits = features[test] @ head["weight"].astype(np.float32).T + head["bias"].astype(np.float32)
    return float((logits.argmax(axis=1) == table["label"].to_numpy()[test]).mean())


def write_unlabeled_features(folder: Path, n_pool=120, n_val=30, n_test=30, d=16, seed=1) -> tuple[Path, dict[int, str]]:
    """Embeddings of an unlabeled pool (pool rows without labels, their item's file in path) beside
    labeled val and test rows; returns the folder and each pool item's true class (the annotators')."""
    rng = np.random.default_rng(seed)
    names = ("ant", "bee", "cow")
    n = n_pool + n_val + n_test
    labels = rng.integers(0, len(names), size=n)
    centers = rng.normal(scale=4.0, size=(len(names), d))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "features.npy", (centers[labels] + rng.normal(size=(n, d))).astype(np.float32))
    split = np.array(["pool"] * n_pool + ["val"] * n_val + ["test"] * n_test)[rng.permutation(n)]
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    label_names = [None if s == "pool" else names[c] for s, c in zip(split, labels)]
    paths = [f"https://images.example.org/{i}.jpg" for i in ids]
    pl.DataFrame({"id": ids, "label": label_names, "split": split, "path": paths},
                 schema={"id": pl.Int64, "label": pl.String, "split": pl.String, "path": pl.String}).write_csv(folder / "items.csv")
    return folder, {int(i): names[c] for i, c, s in zip(ids, labels, split) if s == "pool"}


def test_a_campaign_on_unlabeled_embeddings(tmp_path, monkeypatch):
    folder, truth = write_unlabeled_features(tmp_path / "embeddings")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(initial_size=12, budget=10, schedule={"r00": "init", "r01": "r00"})
    params["data"].update(dataset="features", root=str(folder))
    params["train"].update(max_epochs=10, patience=5)
    params["labels"]["source"] = "annotations"
    enter_workspace(tmp_path, params, monkeypatch)
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    table = pl.read_parquet("data/prepare/pool.parquet")
    assert (table.filter(pl.col("split") == "pool")["label"] == -1).all() and table.filter(pl.col("split") == "val").height == 30
    for round_name, previous in (("r00", "init"), ("r01", "r00")):
        assert "awaiting annotators" in al("labels", previous).output
        al("export", previous, "--format", "csv", "--out", "annotate")
        batch = pl.read_csv(f"annotate/{previous}.csv")
        assert all(path == f"https://images.example.org/{i}.jpg" for i, path in zip(batch["id"], batch["path"]))  # URLs travel
        pl.DataFrame({"id": batch["id"], "path": batch["path"], "label": [truth[i] for i in batch["id"]]}).write_csv("answers.csv")
        assert f"{batch.height} new annotations" in al("import", "answers.csv").output
        al("labels", previous)
        al("train", round_name, previous)
        al("evaluate", round_name)
        al("select", round_name)
    labeled = pl.read_parquet("runs/r01/labeled.parquet")
    assert labeled.height == 22 and all(("ant", "bee", "cow")[label] == truth[i] for i, label in labeled.select("id", "label").rows())
    assert json.loads(Path("runs/r01/metrics.json").read_text())["top1"] == recomputed_top1("r01")
    al("report", "--scope", "run")
