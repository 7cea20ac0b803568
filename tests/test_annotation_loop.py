"""Labeling real images: an unlabeled pool, rounds that wait for annotators, exports and imports.

The annotators here are the test itself (it knows each file's class from its name); the same
loop against a real Label Studio server is tests/test_label_studio.py.
"""

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from al_core.annotations import UNUSABLE
from tests.fakes import enter_workspace, invoke_al
from tests.test_datasets import write_png
from tests.test_pipeline import tiny_params

CLASSES = ("cat", "dog", "eel")


def unlabeled_folder(root: Path, pool_per_class=20) -> Path:
    """pool/ of unlabeled files (their class hidden in the name, for the test's annotators) beside
    labeled val/<class>/ and test/<class>/."""
    for label, name in enumerate(CLASSES):
        for i in range(pool_per_class):
            write_png(root / "pool" / f"{name}_{i:02d}.png", label, seed=100 + i + 37 * label)
        for split, count in (("val", 4), ("test", 5)):
            for i in range(count):
                write_png(root / split / name / f"{i}.png", label, seed=1000 * (split == "test") + i + 10 * label)
    return root


def truth(path: str) -> str:
    return Path(path).name.split("_")[0]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    data = unlabeled_folder(tmp_path / "images")
    params = tiny_params(data)
    params.update(initial_size=9, budget=6, schedule={"r00": "init", "r01": "r00"})
    params["data"].update(dataset="imagefolder")
    params["labels"].update(source="annotations")
    enter_workspace(tmp_path, params, monkeypatch)
    return data


def al(*args, expect=0) -> str:
    return invoke_al(*args, expect=expect).output


def label_csv(export: Path, out: Path, skip: int = 0) -> Path:
    """The annotators' answers for an exported CSV batch (the first ``skip`` left unlabeled)."""
    batch = pl.read_csv(export)
    pl.DataFrame({"id": batch["id"][skip:], "label": [truth(p) for p in batch["path"][skip:]]}).write_csv(out)
    return out


def test_rounds_wait_for_annotators_and_continue_with_their_labels(workspace, tmp_path):
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    table = pl.read_parquet("data/prepare/pool.parquet")
    assert (table.filter(pl.col("split") == "pool")["label"] == -1).all()
    assert json.loads(Path("data/full/metrics.json").read_text())["skipped"].startswith("the pool is unlabeled")
    assert "9 awaiting annotators" in al("labels", "init")
    message = al("train", "r00", "init", expect=1)
    assert "9 of the 9 items queried in round init await labels" in message and "al export init" in message

    # s0 goes out as a CSV; all but one come back; then the last one.
    al("export", "init", "--out", str(tmp_path / "out"))  # random picks have no score: null, not NaN, in JSON
    assert all(task["data"]["score"] is None for task in json.loads((tmp_path / "out" / "init.tasks.json").read_text()))
    al("export", "init", "--format", "csv", "--out", str(tmp_path / "out"))
    answers = label_csv(tmp_path / "out" / "init.csv", tmp_path / "init_labels.csv", skip=1)
    assert "8 new annotations of 8 items" in al("import", str(answers))
    assert "nothing new, 8 annotations stored already" in al("import", str(answers))  # the same file twice: a no-op
    al("labels", "init")
    assert "1 of the 9 items queried in round init await labels" in al("train", "r00", "init", expect=1)
    al("import", str(label_csv(tmp_path / "out" / "init.csv", tmp_path / "rest.csv")))
    al("labels", "init")
    al("train", "r00", "init")
    al("evaluate", "r00")
    al("select", "r00")
    al("labels", "r00")

    # r00's batch goes to Label Studio; its JSON export comes back: one task annotated twice
    # (a reviewer's correction, later), one marked unusable, one skipped (cancelled).
    al("export", "r00", "--out", str(tmp_path / "out"))
    tasks = json.loads((tmp_path / "out" / "r00.tasks.json").read_text())
    config = (tmp_path / "out" / "config.xml").read_text()
    assert all(f'<Choice value="{name}"/>' in config for name in (*CLASSES, UNUSABLE))
    assert len(tasks) == 6 and tasks[0]["data"]["image"].startswith("/data/local-files/?d=pool/")
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"][0] in CLASSES
    exported = []
    for index, task in enumerate(tasks):
        right = truth(task["data"]["path"])
        if index == 0:
            annotations = [("dog" if right != "dog" else "cat", "2026-11-25T10:00:00Z", False), (right, "2026-11-25T12:00:00Z", False)]
        elif index == 1:
            annotations = [(UNUSABLE, "2026-11-25T10:00:00Z", False)]
        elif index == 2:
            annotations = [(right, "2026-11-25T10:00:00Z", True)]
        else:
            annotations = [(right, "2026-11-25T10:00:00Z", False)]
        exported.append({"id": index + 1, "data": task["data"], "annotations": [
            {"id": 10 * index + k, "completed_by": k + 1, "was_cancelled": cancelled, "created_at": time, "updated_at": time,
             "lead_time": 4.0 + index,
             "result": [] if cancelled else [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [name]}}]}
            for k, (name, time, cancelled) in enumerate(annotations)]})
    (tmp_path / "export.json").write_text(json.dumps(exported))
    report = al("import", str(tmp_path / "export.json"))
    assert "1 cancelled or empty" in report and "annotators disagree on 1 of these items" in report
    assert "1 items skipped or cancelled without a label" in report
    al("labels", "r00")
    assert "1 of the 6 items queried in round r00 await labels" in al("train", "r01", "r00", expect=1)
    skipped = tasks[2]["data"]
    (tmp_path / "late.csv").write_text(f"id,label\n{skipped['item_id']},{truth(skipped['path'])}\n")
    al("import", str(tmp_path / "late.csv"))
    al("labels", "r00")
    al("train", "r01", "r00")
    labeled = pl.read_parquet("runs/r01/labeled.parquet")
    unusable = tasks[1]["data"]["item_id"]
    corrected = labeled.filter(pl.col("id") == tasks[0]["data"]["item_id"])["label"][0]
    assert CLASSES[corrected] == truth(tasks[0]["data"]["path"])  # the later annotation won
    assert labeled.filter(pl.col("id") == unusable)["label"].to_list() == [-1]
    al("evaluate", "r01")
    metrics = json.loads(Path("runs/r01/metrics.json").read_text())
    assert metrics["labels"] == 9 + 6 - 1  # the unusable item is not a label
    al("select", "r01")
    assert unusable not in pl.read_parquet("runs/r01/queried.parquet")["id"].to_list()
    al("report", "--scope", "run")
    al("campaign")
    campaign = {row["round"]: row for row in pl.read_csv("reports/campaign.csv").iter_rows(named=True)}
    assert (campaign["init"]["sent"], campaign["init"]["labeled"], campaign["init"]["awaiting"]) == (9, 9, 0)
    r00 = campaign["r00"]
    assert (r00["sent"], r00["labeled"], r00["unusable"], r00["disagreements"]) == (6, 6, 1, 1)
    assert r00["won"] == f"{tasks[0]['data']['item_id']}:{truth(tasks[0]['data']['path'])}"
    assert r00["median_lead_time_s"] == 7.0  # median over the items (4, 5, 7, 8, 9 s; the skipped one has none)
    assert "Stopping signal" in Path("reports/campaign.md").read_text()

    # A label for an item no round queried: accepted, reported, kept in the store (used when a
    # later round queries the item). An item of a batch that already has a label is not exported.
    table = pl.read_parquet("data/prepare/pool.parquet").filter(pl.col("split") == "pool")
    queried = set().union(*(pl.read_parquet(f"runs/{r}/queried.parquet")["id"].to_list() for r in ("init", "r00", "r01")))
    spare = table.filter(~pl.col("id").is_in(list(queried))).row(0, named=True)
    (tmp_path / "spare.csv").write_text(f"path,label\n{spare['path']},{truth(spare['path'])}\n")
    assert "1 items never queried (kept" in al("import", str(tmp_path / "spare.csv"))
    first = pl.read_parquet("runs/r01/queried.parquet").row(0, named=True)
    (tmp_path / "early.csv").write_text(f"id,label\n{first['id']},{truth(first['path'])}\n")
    al("import", str(tmp_path / "early.csv"))
    message = al("export", "r01", "--format", "csv", "--out", str(tmp_path / "out"))
    assert "left out: 1 labeled in the store already" in message
    assert first["id"] not in pl.read_csv(tmp_path / "out" / "r01.csv")["id"].to_list()
    # A second export of the round never overwrites the first (perhaps imported into Label Studio already).
    before = (tmp_path / "out" / "r01.csv").read_bytes()
    assert "r01-2.csv" in al("export", "r01", "--format", "csv", "--out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "r01.csv").read_bytes() == before


def test_oracle_samplers_and_simulation_need_labels(workspace):
    for stage in ("prepare", "embed", "init"):
        al(stage)
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["labels"]["source"] = "oracle"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert "the pool has no labels to simulate annotation with" in al("labels", "init", expect=1)


def test_export_of_in_memory_images_is_refused(tmp_path, monkeypatch):
    from tests.fakes import write_fake_fashion_mnist

    enter_workspace(tmp_path, tiny_params(write_fake_fashion_mnist(tmp_path / "fashion", n_train=200, n_test=40)), monkeypatch)
    for stage in ("prepare", "embed", "init"):
        al(stage)
    assert "annotators need image files" in al("export", "init", expect=1)


def test_a_labeled_seed_set_replaces_the_random_s0(workspace):
    # images/seed/<class>/* : labeled already; they join the pool and are s0, no annotator needed.
    for label, name in enumerate(CLASSES):
        for i in range(2):
            write_png(workspace / "seed" / name / f"{i}.png", label, seed=500 + i + 7 * label)
    for stage in ("prepare", "embed"):
        al(stage)
    assert "the seed set's 6 labeled items are s0" in al("init")
    s0 = pl.read_parquet("runs/init/queried.parquet")
    assert s0.height == 6 and all("/seed/" in path for path in s0["path"])
    assert "6 of 6 queries labeled (annotations)" in al("labels", "init")
    al("train", "r00", "init")
    assert pl.read_parquet("runs/r00/labeled.parquet")["label"].sort().to_list() == [0, 0, 1, 1, 2, 2]
    al("select", "r00")
    assert not any("/seed/" in path for path in pl.read_parquet("runs/r00/queried.parquet")["path"])


def test_a_manifest_with_unlabeled_pool_rows(tmp_path):
    from al_core.data import DATASETS

    rows = []
    for label, name in enumerate(CLASSES):
        for i in range(3):
            for split, value in (("pool", ""), ("val", name), ("test", name)):
                path = tmp_path / split / f"{name}_{i}.png"
                write_png(path, label, seed=i)
                rows.append({"path": str(path.relative_to(tmp_path)), "label": value, "split": split})
    rows[0]["label"] = CLASSES[0]  # one pool row labeled already: the seed set
    pl.DataFrame(rows).write_csv(tmp_path / "manifest.csv")
    dataset = DATASETS["manifest"](tmp_path / "manifest.csv")
    assert dataset.class_names == CLASSES and dataset.unlabeled_pool
    assert (dataset.train.labels == -1).sum() == 8 and dataset.train.labels.max() == 0
    assert len(dataset.val) == 9 and len(dataset.test) == 9
    rows[1]["label"], rows[1]["split"] = "", "val"
    pl.DataFrame(rows).write_csv(tmp_path / "broken.csv")
    with pytest.raises(Exception, match="row 2 \\(val\\) has no label; only pool rows may be unlabeled"):
        DATASETS["manifest"](tmp_path / "broken.csv")


def test_without_a_labeled_test_set_rounds_still_train_select_and_report(workspace):
    import shutil

    shutil.rmtree(workspace / "test")
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    batch = pl.read_parquet("runs/init/queried.parquet")
    pl.DataFrame({"id": batch["id"], "label": [truth(p) for p in batch["path"]]}).write_csv("s0.csv")
    al("import", "s0.csv")
    al("labels", "init")
    al("train", "r00", "init")
    assert "no labeled test set" in al("evaluate", "r00")
    al("select", "r00")
    assert pl.read_parquet("runs/r00/queried.parquet").height == 6
    metrics = json.loads(Path("runs/r00/metrics.json").read_text())
    assert metrics["top1"] is None and metrics["labels"] == 9
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["schedule"] = {"r00": "init"}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    al("report", "--scope", "run")
    summary = json.loads(Path("metrics.json").read_text())
    assert summary == {"labels": 9, "final_imbalance": round(metrics["imbalance_ratio"], 3), "stop_labels": None}
    assert Path("reports/figures/learning_curves.png").exists() and "| r00 | 9 |" in Path("reports/table.md").read_text()


def test_a_round_can_go_on_without_items_still_unlabeled(workspace, tmp_path):
    for stage in ("prepare", "embed", "init"):
        al(stage)
    al("export", "init", "--format", "csv", "--out", str(tmp_path / "out"))
    al("import", str(label_csv(tmp_path / "out" / "init.csv", tmp_path / "most.csv", skip=2)))  # two annotators absent
    al("labels", "init")
    assert "or go on without them: labels.awaiting: return or set_aside" in al("train", "r00", "init", expect=1)
    missing = pl.read_csv(tmp_path / "out" / "init.csv")["id"][:2].to_list()
    params = yaml.safe_load(Path("params.yaml").read_text())

    params["labels"]["awaiting"] = "return"  # back in the pool: a later round may query them again
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert "2 of the 9 items queried in round init still await labels" in al("train", "r00", "init")
    assert set(missing).isdisjoint(pl.read_parquet("runs/r00/labeled.parquet")["id"].to_list())

    params["labels"]["awaiting"] = "set_aside"  # kept out of the pool and out of training
    Path("params.yaml").write_text(yaml.safe_dump(params))
    al("train", "r00", "init")
    labeled = pl.read_parquet("runs/r00/labeled.parquet")
    assert labeled.filter(pl.col("id").is_in(missing))["label"].to_list() == [-2, -2] and labeled.height == 9
    al("select", "r00")
    assert set(missing).isdisjoint(pl.read_parquet("runs/r00/queried.parquet")["id"].to_list())
    al("evaluate", "r00")
    assert json.loads(Path("runs/r00/metrics.json").read_text())["labels"] == 7

    # The late labels arrive: the labels stage and the next train take them.
    al("import", str(label_csv(tmp_path / "out" / "init.csv", tmp_path / "all.csv")))
    al("labels", "init")
    al("train", "r00", "init")
    assert (pl.read_parquet("runs/r00/labeled.parquet")["label"] >= 0).all()
