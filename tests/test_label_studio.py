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
Skipped, saying why, when `.venv-ls/bin/label-studio` is absent, except under test.sh, where that fails
the run (AL_REQUIRE_LABEL_STUDIO=1).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
import yaml

from al_core.annotations import UNUSABLE
from scripts.label_studio_annotators import SERVER, Studio
from tests.test_annotation_loop import CLASSES, al, truth, workspace  # noqa: F401  (the fixture)

if not SERVER.exists() and os.environ.get("AL_REQUIRE_LABEL_STUDIO") == "1":  # test.sh: never skip in silence
    pytest.fail(f"Label Studio is not installed at {SERVER} (bash scripts/install_label_studio.sh)", pytrace=False)
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
        assert "1 of the 6 items queried in round r00 await labels" in al("train", "r01", "r00", expect=1)

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


def test_push_and_pull_three_rounds_in_one_project(workspace, tmp_path, monkeypatch):  # noqa: F811  (pytest fixture)
    """`al push ROUND`, label in the browser (here: the REST calls a browser makes), `al pull`:
    init, r00 and r01 in one project created by the first push, with an edit, a skipped task
    finished later, a task deleted in Label Studio, an item not in the pool, and the errors a user
    meets (server down, wrong key, another project's config, a deleted project), each one line
    that changes nothing."""
    from scripts.label_studio_annotators import free_port

    params = yaml.safe_load(open("params.yaml"))
    params["schedule"] = {"r00": "init", "r01": "r00", "r02": "r01"}
    open("params.yaml", "w").write(yaml.safe_dump(params))
    for stage in ("prepare", "embed", "init", "full"):
        al(stage)
    al("labels", "init")
    store, ledger, remembered = (Path("data/annotations") / name for name in ("labels.parquet", "sent.parquet", "label-studio.json"))

    assert "no Label Studio project yet" in al("pull", "--api-key", "k", expect=1)
    down = al("push", "init", "--url", f"http://127.0.0.1:{free_port()}", "--api-key", "k", expect=1)
    assert "cannot reach Label Studio at http://127.0.0.1" in down and not remembered.exists() and not ledger.exists()

    (tmp_path / "studio").mkdir()
    studio = Studio(tmp_path / "studio", document_root=workspace)
    try:
        assert "refused the API key (401)" in al("push", "init", "--url", studio.url, "--api-key", "wrong", expect=1)
        assert not remembered.exists() and not ledger.exists()
        monkeypatch.setenv("LABEL_STUDIO_URL", studio.url)
        monkeypatch.setenv("LABEL_STUDIO_API_KEY", studio.token)

        # init: the project is created with its storage; pushing again adds nothing.
        first = al("push", "init")
        project = json.loads(remembered.read_text())["project"]
        assert "created project" in first and f"9 tasks added to project {project}" in first and "1 local-files storage" in first
        again = al("push", "init")
        assert "0 tasks added" in again and "9 there already" in again and "is sent" not in again  # said once, the first time
        assert pl.read_parquet(ledger).filter(pl.col("round") == "init")["how"].unique().to_list() == ["push"]
        tasks = studio.call("GET", f"/api/tasks?project={project}&page_size=100")["tasks"]
        assert sorted(task["data"]["item_id"] for task in tasks) == sorted(pl.read_parquet("runs/init/queried.parquet")["id"])
        image = urllib.request.urlopen(urllib.request.Request(studio.url + tasks[0]["data"]["image"],
                                                              headers={"Authorization": f"Token {studio.token}"}), timeout=30)
        assert image.status == 200 and image.read(8).startswith(b"\x89PNG")  # shown without a storage set by hand
        by_item = {task["data"]["item_id"]: task for task in tasks}
        items = sorted(by_item)
        studio.annotate(by_item[items[0]]["id"], None, cancelled=True)  # skipped, finished later
        for item in items[1:]:
            studio.annotate(by_item[item]["id"], truth(by_item[item]["data"]["path"]))
        pulled = al("pull")
        assert "8 new annotations" in pulled and "init: 9 tasks, 8 labeled, 1 skipped, 0 open" in pulled, pulled
        assert "nothing new, 8 annotations stored already" in al("pull")
        personal = studio.call("POST", "/api/token/", {})["token"]  # a personal access token (a JWT), as the UI makes it
        assert "nothing new, 8 annotations stored already" in al("pull", "--api-key", personal)
        # What a pull stored is what importing the equivalent export file stores: nothing more.
        (tmp_path / "export.json").write_bytes(studio.export(project, "JSON"))
        assert "nothing new" in al("import", str(tmp_path / "export.json"))
        time.sleep(1.1)
        studio.annotate(by_item[items[0]]["id"], truth(by_item[items[0]]["data"]["path"]))
        assert "1 new annotations" in al("pull") and "init: 9 tasks, 9 labeled, 0 skipped, 0 open" in al("pull")
        for command in (["labels", "init"], ["train", "r00", "init"], ["evaluate", "r00"], ["select", "r00"]):
            al(*command)

        # r00 into the same project; an annotation edited after the pull replaces the first version.
        assert f"6 tasks added to project {project}" in al("push", "r00")
        tasks = {task["data"]["item_id"]: task for task in studio.call("GET", f"/api/tasks?project={project}&page_size=100")["tasks"]
                 if task["data"]["round"] == "r00"}
        annotation = {item: studio.annotate(task["id"], CLASSES[0]) for item, task in tasks.items()}
        assert "6 new annotations" in al("pull")
        wrong = [item for item in tasks if truth(tasks[item]["data"]["path"]) != CLASSES[0]]
        time.sleep(1.1)
        for item in wrong:
            studio.edit(annotation[item], truth(tasks[item]["data"]["path"]))
        assert f"{len(wrong)} changed (edited in Label Studio)" in al("pull")
        (tmp_path / "edited.json").write_bytes(studio.export(project, "JSON"))
        assert "nothing new" in al("import", str(tmp_path / "edited.json"))  # the file holds what the pull stored
        for command in (["labels", "r00"], ["train", "r01", "r00"], ["evaluate", "r01"], ["select", "r01"]):
            al(*command)

        # r01: a task deleted in Label Studio, an item not in the pool: pull refuses, the store unchanged.
        al("push", "r01")
        tasks = {task["data"]["item_id"]: task for task in studio.call("GET", f"/api/tasks?project={project}&page_size=100")["tasks"]
                 if task["data"]["round"] == "r01"}
        deleted = sorted(tasks)[0]
        studio.call("DELETE", f"/api/tasks/{tasks[deleted]['id']}")
        before = store.read_bytes()
        refused = al("pull", expect=1)
        assert f"no task for 1 unlabeled items of round r01 (ids {deleted}" in refused and "al push r01 adds them again" in refused
        assert store.read_bytes() == before
        again = al("push", "r01")
        assert "1 tasks added" in again and "5 there already" in again
        studio.call("POST", f"/api/projects/{project}/import", [{"data": {"image": "x", "item_id": 999999, "path": "x.png"}}])
        stranger = [task for task in studio.call("GET", f"/api/tasks?project={project}&page_size=100")["tasks"]
                    if task["data"]["item_id"] == 999999][0]
        studio.annotate(stranger["id"], CLASSES[1])
        assert "item 999999 is not in the pool" in al("pull", expect=1) and store.read_bytes() == before
        studio.call("DELETE", f"/api/tasks/{stranger['id']}")
        for task in studio.call("GET", f"/api/tasks?project={project}&page_size=100")["tasks"]:
            if task["data"]["round"] == "r01":
                studio.annotate(task["id"], truth(task["data"]["path"]))
        assert "r01: 6 tasks, 6 labeled, 0 skipped, 0 open" in al("pull")
        al("labels", "r01")
        al("train", "r02", "r01")  # three rounds of labels from one project train the next head
        assert pl.read_parquet("runs/r02/labeled.parquet").height == 9 + 6 + 6

        # Another project's config; a deleted project.
        config = ('<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
                  '<Choice value="cat"/><Choice value="cow"/></Choices></View>')
        other = studio.call("POST", "/api/projects", {"title": "other", "label_config": config})
        assert "labels other classes than this campaign" in al("push", "r01", "--project", str(other["id"]), expect=1)
        assert json.loads(remembered.read_text())["project"] == project
        studio.call("DELETE", f"/api/projects/{project}")
        assert f"project {project} no longer exists" in al("pull", expect=1) and store.read_bytes() != before
    finally:
        studio.stop()
