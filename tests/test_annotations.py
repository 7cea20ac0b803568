"""The annotation store: every export format Label Studio writes, all-or-nothing imports, the rules."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from al_core.annotations import UNUSABLE, append_to_store, parse_export, read_store, resolve
from al_core.errors import InputError

CLASSES = ("cat", "dog", "eel")
IDS = np.array([10, 11, 12, 13, 14], dtype=np.int64)
PATHS = np.array([f"/pool/{i}.png" for i in IDS], dtype=object)


def studio_json(path: Path, tasks: list[tuple[int, list[dict]]]) -> Path:
    """A Label Studio JSON export: tasks with our item_id in data, annotations with choices."""
    path.write_text(json.dumps([
        {"id": 100 + index, "data": {"image": f"/data/local-files/?d=pool/{item}.png", "item_id": item},
         "annotations": [{"id": 1000 + index * 10 + k, "completed_by": annotation.get("by", 1),
                          "was_cancelled": annotation.get("cancelled", False),
                          "created_at": annotation["time"], "updated_at": annotation["time"],
                          "result": [] if annotation.get("cancelled") else
                          [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [annotation["label"]]}}]}
                         for k, annotation in enumerate(annotations)]}
        for index, (item, annotations) in enumerate(tasks)]))
    return path


def parse(path):
    return parse_export(path, CLASSES, IDS, PATHS)


def test_label_studio_json_with_a_cancelled_and_a_repeated_annotation(tmp_path):
    path = studio_json(tmp_path / "export.json", [
        (10, [{"label": "cat", "time": "2026-11-25T10:00:00Z"}, {"label": "dog", "time": "2026-11-25T11:00:00Z", "by": 2}]),
        (11, [{"label": "eel", "time": "2026-11-25T10:05:00Z", "cancelled": True}]),
        (12, [{"label": UNUSABLE, "time": "2026-11-25T10:06:00Z"}]),
    ])
    parsed = parse(path)
    assert parsed.format == "label-studio-json" and parsed.cancelled == 1
    assert parsed.rows.select("id", "label").rows() == [(10, 0), (10, 1), (12, -1)]
    labels, disagreements = resolve(parsed.rows, "latest")
    assert labels.select("id", "label").rows() == [(10, 1), (12, -1)]  # the later annotation wins
    assert disagreements["id"].to_list() == [10]


def test_json_min_and_csv_rows(tmp_path):
    rows = [{"image": "x", "id": 100, "item_id": 13, "label": "dog", "annotator": "a@x", "annotation_id": 1,
             "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"},
            {"image": "y", "id": 101, "path": "/pool/14.png", "label": "cat", "annotator": "b@x", "annotation_id": 2,
             "created_at": "2026-11-25T10:01:00Z", "updated_at": "2026-11-25T10:01:00Z"}]
    (tmp_path / "min.json").write_text(json.dumps(rows))
    parsed = parse(tmp_path / "min.json")
    assert parsed.format == "label-studio-json-min"
    assert parsed.rows.select("id", "label", "annotator").rows() == [(13, 1, "a@x"), (14, 0, "b@x")]
    pl.DataFrame(rows).write_csv(tmp_path / "export.csv")
    from_csv = parse(tmp_path / "export.csv")
    assert from_csv.format == "label-studio-csv" and from_csv.rows.select("id", "label").rows() == [(13, 1), (14, 0)]


def test_plain_csv_by_id_or_path_and_its_conflicts(tmp_path):
    (tmp_path / "by_id.csv").write_text("id,label\n10,cat\n11,eel\n")
    assert parse(tmp_path / "by_id.csv").rows.select("id", "label").rows() == [(10, 0), (11, 2)]
    (tmp_path / "by_path.csv").write_text("path,label\n/pool/12.png,dog\n")
    assert parse(tmp_path / "by_path.csv").rows.select("id", "label").rows() == [(12, 1)]
    (tmp_path / "twice.csv").write_text("id,label\n10,cat\n10,dog\n")
    with pytest.raises(InputError, match="item 10: two different labels in one plain CSV"):
        parse(tmp_path / "twice.csv")


@pytest.mark.parametrize("content, message", [
    ("id,label\n10,cat\n99,dog\n", "row 2: item '99' is not in the pool"),
    ("id,label\n10,cat\n11,wolf\n", "row 2: class 'wolf' is not one of the 3 classes"),
    ("path,label\n/elsewhere/1.png,cat\n", "path '/elsewhere/1.png' is not in the pool"),
    ("name,label\nx,cat\n", "needs an 'id' or a 'path' column"),
])
def test_a_bad_row_imports_nothing(tmp_path, content, message):
    store = tmp_path / "store" / "labels.parquet"
    (tmp_path / "good.csv").write_text("id,label\n13,eel\n")
    append_to_store(store, parse(tmp_path / "good.csv"))
    before = store.read_bytes()
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        append_to_store(store, parse(tmp_path / "bad.csv"))
    assert store.read_bytes() == before


def test_malformed_json(tmp_path):
    (tmp_path / "broken.json").write_text('[{"id": 1, "annotations": [')
    with pytest.raises(InputError, match="is not valid JSON"):
        parse(tmp_path / "broken.json")


def test_the_same_file_twice_is_a_no_op_and_history_is_kept(tmp_path):
    store = tmp_path / "labels.parquet"
    (tmp_path / "first.csv").write_text("id,label\n10,cat\n")
    assert append_to_store(store, parse(tmp_path / "first.csv")) == 1
    before = store.read_bytes()
    assert append_to_store(store, parse(tmp_path / "first.csv")) == 0
    assert store.read_bytes() == before
    (tmp_path / "review.csv").write_text("id,label,time\n10,dog,2026-11-26T00:00:00Z\n")
    append_to_store(store, parse(tmp_path / "review.csv"))
    history = read_store(store)
    assert history.select("id", "label", "source").rows() == [(10, 0, "first.csv"), (10, 1, "review.csv")]
    assert resolve(history, "latest")[0]["label"].to_list() == [1]


def test_a_failed_write_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    store = tmp_path / "labels.parquet"
    (tmp_path / "first.csv").write_text("id,label\n10,cat\n")
    append_to_store(store, parse(tmp_path / "first.csv"))
    before = store.read_bytes()
    (tmp_path / "second.csv").write_text("id,label\n11,dog\n")

    def killed(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"PAR1 half a file")  # as if killed mid-write
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_parquet", killed)
    with pytest.raises(KeyboardInterrupt):
        append_to_store(store, parse(tmp_path / "second.csv"))
    assert store.read_bytes() == before and list(tmp_path.glob(".labels.parquet.*")) == []


def test_majority_and_refuse():
    history = pl.DataFrame({"id": [10, 10, 10, 11], "label": [0, 1, 1, 2], "label_name": ["cat", "dog", "dog", "eel"],
                            "annotator": ["a", "b", "c", "a"], "time": ["3", "1", "2", "1"], "source": ["f"] * 4,
                            "source_sha256": ["s"] * 4, "source_row": [0, 1, 2, 3]})
    assert resolve(history, "latest")[0].select("id", "label").rows() == [(10, 0), (11, 2)]
    assert resolve(history, "majority")[0].select("id", "label").rows() == [(10, 1), (11, 2)]
    with pytest.raises(InputError, match="annotators disagree on 1 item"):
        resolve(history, "refuse")
