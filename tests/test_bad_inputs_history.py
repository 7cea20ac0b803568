"""The catalogue of bad inputs, continued: settings, tables and files that used to be taken without a word.

As in tests/test_bad_inputs.py: exit code 1, exactly one line naming the fault, and every artifact
byte-identical afterwards (params.yaml too, where the case edits it); or exit 0 and one
``warning:`` line where going on is right.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from stages.cli import app
from tests.test_annotation_loop import truth
from tests.test_bad_inputs import enter_copy, fails_cleanly, finished_run, run, set_param  # noqa: F401  (fixtures)
from tests.test_bad_inputs_campaign import batch_rows, campaign, campaign_run, warns_once  # noqa: F401  (fixtures)

# --- al set: what every stage would refuse is refused before the file changes ---------------------

SET_CASES = [
    ("sampler=bogus", "unknown sampler 'bogus'"),
    ("backbone.device=gpu", "backbone.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("select.base.order=bogus", "select.base.order must be one of round_robin, sequential, got 'bogus'"),
    ("select.bogus.x=1", "select.bogus is not a sampler"),
    ("schedule.r01=r09", "schedule.r01 is 'r09', expected 'r00'"),
]


@pytest.mark.parametrize("assignment, expected", SET_CASES, ids=[case[0] for case in SET_CASES])
def test_al_set_refuses_what_a_stage_would(run, assignment, expected):
    before = Path("params.yaml").read_bytes()
    fails_cleanly(["set", assignment], expected)
    assert Path("params.yaml").read_bytes() == before


def test_al_set_on_a_read_only_params_file(run):
    os.chmod("params.yaml", 0o444)
    before = Path("params.yaml").read_bytes()
    fails_cleanly(["set", "budget=9"], "params.yaml is read-only; make it writable")
    assert Path("params.yaml").read_bytes() == before


def test_al_set_on_a_params_file_that_is_not_yaml(run):
    Path("params.yaml").write_text("budget: [\n")
    fails_cleanly(["set", "budget=9"], "params.yaml is not valid YAML at line 2")
    assert Path("params.yaml").read_text() == "budget: [\n"


def test_al_set_keeps_a_symlink_and_line_endings(run, tmp_path):
    shared = tmp_path / "shared.yaml"
    shared.write_bytes(Path("params.yaml").read_bytes().replace(b"\n", b"\r\n"))
    Path("params.yaml").unlink()
    Path("params.yaml").symlink_to(shared)
    result = CliRunner().invoke(app, ["set", "budget=9"])
    assert result.exit_code == 0, result.output
    assert Path("params.yaml").is_symlink()
    text = shared.read_bytes()
    assert b"budget: 9\r\n" in text and text.count(b"\n") == text.count(b"\r\n")


# --- a campaign's files --------------------------------------------------------------------------

def test_import_of_the_exported_tasks_file(campaign, tmp_path):
    CliRunner().invoke(app, ["export", "init", "--out", str(tmp_path / "out")])
    fails_cleanly(["import", str(tmp_path / "out" / "init.tasks.json")], "holds tasks to label (as al export writes them)")


def test_an_image_outside_the_document_root(campaign, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fails_cleanly(["export", "init", "--out", str(tmp_path / "out"), "--document-root", str(elsewhere)],
                  "is outside")
    assert not list((tmp_path / "out").glob("init*"))


def test_a_full_disk_during_import(campaign, monkeypatch):
    item = batch_rows()[3]
    Path("more.csv").write_text(f"id,label\n{item['id']},{truth(item['path'])}\n")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    fails_cleanly(["import", "more.csv"], "could not write the annotation store")


def test_a_full_disk_during_export(campaign, monkeypatch, tmp_path):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "annotate/init.csv")

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    fails_cleanly(["export", "init", "--format", "csv", "--out", str(tmp_path / "out")], "no space left on the device")


def test_a_label_studio_export_saved_with_a_byte_order_mark(campaign):
    item = batch_rows()[3]
    task = {"id": 7, "data": {"item_id": item["id"], "path": item["path"]}, "annotations": [
        {"id": 70, "completed_by": 1, "created_at": "2026-12-01T10:00:00Z", "result": [
            {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [truth(item["path"])]}}]}]}
    Path("bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps([task]).encode())
    result = CliRunner().invoke(app, ["import", "bom.json"])
    assert result.exit_code == 0 and "1 new annotations" in result.output, result.output


def test_a_stop_set_larger_than_the_pool(run):
    set_param("stop.set_size", 100_000)
    warns_once(["evaluate", "r01"], "stop.set_size is 100000 but the pool has")


def test_a_study_grid_that_sets_the_sampler_per_dataset(run):
    Path("grid.yaml").write_text("datasets:\n  tiny: {sampler: bogus}\nsamplers: [random]\nseeds: [0]\n")
    fails_cleanly(["study", "run", "--grid", "grid.yaml", "--out", "study"], "datasets.tiny sets sampler")


# --- features tables -------------------------------------------------------------------------------

def features_folder(tmp_path: Path, table: str, name: str = "items.csv") -> Path:
    folder = tmp_path / "embeddings"
    folder.mkdir(exist_ok=True)
    np.save(folder / "features.npy", np.zeros((table.count("\n") - 1, 3), np.float32))
    (folder / name).write_text(table)
    set_param("data.dataset", "features")
    set_param("data.root", str(folder))
    return folder


def test_a_class_name_among_class_indices(run, tmp_path):
    features_folder(tmp_path, "id,label,split\n0,,pool\n1,0,val\n2,abc,val\n3,1,test\n")
    fails_cleanly(["prepare"], "column label mixes class indices (row 2: '0') and class names (row 3: 'abc')")


def test_a_fractional_label_in_quoted_cells(run, tmp_path):
    features_folder(tmp_path, 'id,label,split\n0,"",pool\n1,"0",val\n2,"2.5",val\n3,"1",test\n')
    fails_cleanly(["prepare"], "row 3 has label 2.5; expected an integer")


def test_two_item_tables(run, tmp_path):
    folder = features_folder(tmp_path, "id,label,split\n0,,pool\n1,0,val\n2,1,val\n3,1,test\n")
    pl.read_csv(folder / "items.csv").write_parquet(folder / "items.parquet")
    fails_cleanly(["prepare"], "holds both items.parquet and items.csv")


# --- al push / al pull: what a user meets before the server answers (the rest: tests/test_label_studio.py) ---

@pytest.fixture
def no_studio_settings(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)


def test_pull_before_any_push(campaign, no_studio_settings):
    fails_cleanly(["pull", "--api-key", "k"], "no Label Studio project yet (data/annotations/label-studio.json is missing)")


def test_push_without_a_server_address(campaign, no_studio_settings):
    fails_cleanly(["push", "init", "--api-key", "k"], "which Label Studio? set LABEL_STUDIO_URL")


def test_push_without_an_api_key(campaign, no_studio_settings):
    fails_cleanly(["push", "init", "--url", "http://localhost:8080"], "no Label Studio API key: copy it from")


def test_push_to_an_address_that_is_not_one(campaign, no_studio_settings):
    fails_cleanly(["push", "init", "--url", "localhost:8080", "--api-key", "k"], "expected an address such as http://")


def test_push_to_a_server_that_is_down(campaign, no_studio_settings):
    from scripts.label_studio_annotators import free_port

    fails_cleanly(["push", "init", "--url", f"http://127.0.0.1:{free_port()}", "--api-key", "k"],
                  "cannot reach Label Studio at http://127.0.0.1")


def test_a_damaged_project_file(campaign, no_studio_settings):
    Path("data/annotations").mkdir(parents=True, exist_ok=True)
    Path("data/annotations/label-studio.json").write_text("{\"url\": ")
    fails_cleanly(["pull", "--api-key", "k"], "label-studio.json is not readable JSON")
