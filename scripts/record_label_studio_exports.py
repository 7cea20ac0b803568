"""Record what a real Label Studio server exports, as fixtures for the tests that run without one.

    python -m scripts.record_label_studio_exports --out tests/fixtures/label_studio

Starts Label Studio 1.23.2 (.venv-ls) with SQLite in a temporary folder, creates a project with
the labeling config `al export` writes for the classes cat, dog, eel, imports five tasks (items
10-14, as `al export` writes them, with a prediction on item 10), and answers them through the
REST API as annotators' browsers do: item 10 labeled cat, then dog by a second annotation;
item 11 skipped; item 12 "(unusable)"; item 13 dog; item 14 left open. It downloads the project as
JSON, JSON_MIN and CSV (project.json, project.min.json, project.csv), then edits item 13's
annotation to eel and downloads the JSON export again (project-edited.json). The files are the
server's bytes, unchanged; `tests/test_annotations.py` imports them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scripts.label_studio_annotators import Studio

CLASSES = ("cat", "dog", "eel")
ITEMS = (10, 11, 12, 13, 14)


def tasks() -> list[dict]:
    listed = []
    for rank, item in enumerate(ITEMS):
        task = {"data": {"image": f"https://images.example.org/{item}.png", "item_id": item, "path": f"/pool/{item}.png",
                         "round": "r00", "rank": rank, "score": 0.1 * rank}}
        if item == 10:
            task["predictions"] = [{"model_version": "base@r00", "score": 0.0, "result": [
                {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]}]
        listed.append(task)
    return listed


def main() -> None:
    from pipeline.annotate import labeling_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/label_studio"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        studio = Studio(Path(folder), document_root=Path(folder))
        try:
            project, stored = studio.create_project("fixtures", labeling_config(CLASSES), tasks())
            task_of = {task["data"]["item_id"]: task["id"] for task in stored}
            studio.annotate(task_of[10], "cat")
            time.sleep(1.1)
            studio.annotate(task_of[10], "dog")
            studio.annotate(task_of[11], None, cancelled=True)
            studio.annotate(task_of[12], "(unusable)")
            edited = studio.annotate(task_of[13], "dog")
            for export_type, name in (("JSON", "project.json"), ("JSON_MIN", "project.min.json"), ("CSV", "project.csv")):
                (args.out / name).write_bytes(studio.export(project, export_type))
            time.sleep(1.1)
            studio.edit(edited, "eel")
            (args.out / "project-edited.json").write_bytes(studio.export(project, "JSON"))
        finally:
            studio.stop()
    print(f"recorded {', '.join(sorted(path.name for path in args.out.iterdir()))} in {args.out}")


if __name__ == "__main__":
    main()
