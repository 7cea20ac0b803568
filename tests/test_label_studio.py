"""The annotation loop against a real Label Studio server on localhost.

`test.sh` installs Label Studio into its own virtual environment (`.venv-ls`: ~1 GB of Django
dependencies that must not meet DVC's) when missing; this test starts the server with SQLite in a
temporary folder, creates a project with the labeling config `al export` wrote, imports the
exported tasks (with their predictions), posts annotations through the REST API as annotators'
browsers do (a correction by a second pass, an "(unusable)" choice, a skipped task), exports JSON,
JSON_MIN (renamed: recognised by content) and CSV as a user would and imports them (the same
annotations are stored once); then finishes the skipped task and edits an annotation in the same
project, exports the whole project again (exactly the new and the changed annotation are stored),
continues the pipeline one round, and corrects two items by a reviewer's CSV of absolute and
relative paths. A second project labels the s0 of a features dataset without labels (embeddings
made elsewhere, their items' URLs shown to the annotators) and trains a round on it.
Skipped, saying why, when `.venv-ls/bin/label-studio` is absent.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
import yaml

from al_core.annotations import UNUSABLE
from scripts.label_studio_annotators import SERVER, Studio
from tests.test_annotation_loop import CLASSES, al, truth, workspace  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(not SERVER.exists(), reason="Label Studio is not installed in .venv-ls (test.sh installs it)")


def embeddings_round_trip(studio: Studio, root: Path, monkeypatch) -> None:
    """A features dataset without labels: s0 through a Label Studio project, then a round trained on it."""
    from tests.test_features_dataset import ROOT, write_unlabeled_features

    folder, truth_of = write_unlabeled_features(root / "data")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(initial_size=12, budget=10, schedule={"r00": "init"})
    params["data"].update(dataset="features", root=str(folder))
    params["train"].update(max_epochs=10, patience=5)
    params["labels"]["source"] = "annotations"
    (root / "work").mkdir()
    (root / "work" / "params.yaml").write_text(yaml.safe_dump(params))
    previous = Path.cwd()
    monkeypatch.chdir(root / "work")
    try:
        for command in (["prepare"], ["embed"], ["init"], ["labels", "init"], ["export", "init", "--out", "annotate"]):
            al(*command)
        tasks = json.loads(Path("annotate/init.tasks.json").read_text())
        assert len(tasks) == 12 and all(task["data"]["image"] == f"https://images.example.org/{task['data']['item_id']}.jpg"
                                        for task in tasks)
        project, listed = studio.create_project("embeddings s0", Path("annotate/config.xml").read_text(), tasks)
        for task in listed:
            studio.annotate(task["id"], truth_of[task["data"]["item_id"]])
        Path("export.json").write_bytes(studio.export(project, "JSON"))
        assert "12 new annotations of 12 items" in al("import", "export.json")
        for command in (["labels", "init"], ["train", "r00", "init"], ["evaluate", "r00"], ["select", "r00"]):
            al(*command)
        labeled = pl.read_parquet("runs/r00/labeled.parquet")
        names = ("ant", "bee", "cow")
        assert labeled.height == 12 and all(names[label] == truth_of[item] for item, label in labeled.select("id", "label").rows())
    finally:
        monkeypatch.chdir(previous)


def test_a_round_trip_through_label_studio(workspace, tmp_path, monkeypatch):  # noqa: F811  (pytest fixture)
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    al("labels", "init")
    # s0 through CSV, as a team without Label Studio would; then r00 through Label Studio.
    al("export", "init", "--format", "csv", "--out", str(tmp_path / "out"))
    batch = pl.read_csv(tmp_path / "out" / "init.csv")
    pl.DataFrame({"id": batch["id"], "label": [truth(p) for p in batch["path"]]}).write_csv(tmp_path / "s0.csv")
    al("import", str(tmp_path / "s0.csv"))
    for command in (["labels", "init"], ["train", "r00", "init"], ["evaluate", "r00"], ["select", "r00"], ["labels", "r00"]):
        al(*command)
    al("export", "r00", "--out", str(tmp_path / "out"), "--document-root", str(workspace))

    (tmp_path / "studio").mkdir()
    studio = Studio(tmp_path / "studio", document_root=workspace)
    try:
        tasks = json.loads((tmp_path / "out" / "r00.tasks.json").read_text())
        project, listed = studio.create_project("al r00", (tmp_path / "out" / "config.xml").read_text(), tasks,
                                                images=workspace / "pool")
        assert len(listed) == len(tasks) == 6
        # The predictions travelled with the tasks (the pre-annotation annotators see).
        first = studio.call("GET", f"/api/tasks/{listed[0]['id']}")
        assert first["predictions"] and first["predictions"][0]["result"][0]["value"]["choices"][0] in CLASSES
        # The image is served from the document root as a local file.
        image = urllib.request.urlopen(urllib.request.Request(studio.url + listed[0]["data"]["image"],
                                                              headers={"Authorization": f"Token {studio.token}"}), timeout=30)
        assert image.status == 200 and image.read(8).startswith(b"\x89PNG")
        by_item = {task["data"]["item_id"]: task for task in listed}
        items = [task["data"]["item_id"] for task in tasks]
        annotation_of = {}
        for index, item in enumerate(items):
            task, right = by_item[item], truth(by_item[item]["data"]["path"])
            if index == 0:  # a first pass that a reviewer corrects later
                studio.annotate(task["id"], next(name for name in CLASSES if name != right))
                time.sleep(1.1)
                studio.annotate(task["id"], right)
            elif index == 1:
                annotation_of[item] = studio.annotate(task["id"], UNUSABLE)
            elif index == 2:  # skipped by the annotator
                studio.annotate(task["id"], None, cancelled=True)
            else:
                studio.annotate(task["id"], right)
        for export_type, name in (("JSON", "export.json"), ("JSON_MIN", "export_min.txt"), ("CSV", "export.csv")):
            (tmp_path / name).write_bytes(studio.export(project, export_type))  # JSON_MIN renamed: known by content
        first = al("import", str(tmp_path / "export.json"))
        assert "annotators disagree on 1 of these items" in first and "cancelled" in first
        assert "1 items skipped or cancelled without a label" in first
        stored = pl.read_parquet("data/annotations/labels.parquet").height
        # The other two formats hold the same annotations: nothing is stored twice.
        for name in ("export_min.txt", "export.csv"):
            assert "nothing new" in al("import", str(tmp_path / name))
        assert pl.read_parquet("data/annotations/labels.parquet").height == stored
        al("labels", "r00")
        assert "1 of the 6 items queried in round r00 await labels" in al("train", "r01", "r00", expect=2)

        # The skipped task finished later in the same project; the "(unusable)" one reopened and
        # relabeled; the whole project exported again: exactly one new and one changed annotation.
        time.sleep(1.1)
        studio.annotate(by_item[items[2]]["id"], truth(by_item[items[2]]["data"]["path"]))
        studio.edit(annotation_of[items[1]], truth(by_item[items[1]]["data"]["path"]))
        (tmp_path / "again.json").write_bytes(studio.export(project, "JSON"))
        (tmp_path / "again.csv").write_bytes(studio.export(project, "CSV"))
        # Embeddings of unlabeled items made elsewhere (no images here; their URLs go to the annotators).
        embeddings_round_trip(studio, tmp_path / "embeddings", monkeypatch)
    finally:
        studio.stop()

    again = al("import", str(tmp_path / "again.json"))
    assert "1 new annotations, 1 changed (edited in Label Studio), 5 stored already" in again, again
    assert pl.read_parquet("data/annotations/labels.parquet").height == stored + 2
    assert "nothing new" in al("import", str(tmp_path / "again.csv"))
    params = yaml.safe_load(open("params.yaml"))
    params["labels"]["conflicts"] = "majority"  # each annotation counts once, in its latest version
    open("params.yaml", "w").write(yaml.safe_dump(params))
    al("labels", "r00")
    al("train", "r01", "r00")
    labeled = pl.read_parquet("runs/r01/labeled.parquet")
    for item in items:  # every item has its right label: the correction, the edit and the finished task
        assert CLASSES[labeled.filter(pl.col("id") == item)["label"][0]] == truth(by_item[item]["data"]["path"])
    # A reviewer's plain CSV, by absolute path and by a path relative to data.root, marks two items unusable.
    absolute = str((workspace / "pool" / Path(by_item[items[3]]["data"]["path"]).name).resolve())
    relative = "pool/" + Path(by_item[items[4]]["data"]["path"]).name
    (tmp_path / "review.csv").write_text(f"path,label\n{absolute},{UNUSABLE}\n{relative},{UNUSABLE}\n")
    assert "2 new annotations of 2 items" in al("import", str(tmp_path / "review.csv"))
    al("labels", "r00")
    al("train", "r01", "r00")
    labeled = pl.read_parquet("runs/r01/labeled.parquet")
    assert labeled.filter(pl.col("id").is_in([items[3], items[4]]))["label"].to_list() == [-1, -1]
    al("evaluate", "r01")
    al("select", "r01")
