"""The catalogue of bad inputs, continued: a labeling campaign, the study and the reports.

As in tests/test_bad_inputs.py, each case breaks one thing as a user would and checks exit code 1,
exactly one line naming the fault, and every artifact (the annotation store included) byte-identical
afterwards; where going on is right, exit code 0 and exactly one ``warning:`` line. The campaign
cases start from a copy of an unlabeled image-folder run (prepare, embed, init, labels init).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from stages.cli import app
from tests.error_messages import check_message
from tests.test_annotation_loop import CLASSES, truth, unlabeled_folder
from tests.test_bad_inputs import enter_copy, fails_cleanly, finished_run, run, set_param  # noqa: F401  (fixtures)
from tests.test_datasets import write_png
from tests.test_pipeline import tiny_params


def warns_once(command: list[str], expected: str) -> str:
    """Run ``al command``: exit 0, exactly one ``warning:`` line, naming ``expected``."""
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}{result.exception!r}"
    # A progress bar may precede the warning on the captured line (a terminal redraws the bar).
    warnings = re.findall(r"warning: [^\r\n]*", result.output)
    assert len(warnings) == 1 and expected in warnings[0], result.output
    check_message(warnings[0])
    return warnings[0]


@pytest.fixture(scope="module")
def campaign_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    unlabeled_folder(root / "images", pool_per_class=6)
    work = root / "work"
    work.mkdir()
    params = tiny_params(root / "images")
    params.update(initial_size=6, budget=4, schedule={"r00": "init"})
    params["data"].update(dataset="imagefolder")
    params["labels"].update(source="annotations")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        for command in (["prepare"], ["embed"], ["init"], ["labels", "init"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, result.output
        batch = pl.read_parquet("runs/init/queried.parquet")
        pl.DataFrame({"id": batch["id"][:3], "label": [truth(p) for p in batch["path"][:3]]}).write_csv(root / "first.csv")
        assert CliRunner().invoke(app, ["import", str(root / "first.csv")]).exit_code == 0
    return work


@pytest.fixture
def campaign(campaign_run, tmp_path, monkeypatch):
    return enter_copy(campaign_run, tmp_path, monkeypatch)


def batch_rows() -> list[dict]:
    return pl.read_parquet("runs/init/queried.parquet").select("id", "path").to_dicts()


# --- imports: no label on the wrong item, nothing stored when a file is refused ------------------

def test_an_import_into_a_workspace_without_a_schedule_stores_nothing(campaign):
    item = batch_rows()[3]
    Path("more.csv").write_text(f"id,label\n{item['id']},{truth(item['path'])}\n")
    settings = yaml.safe_load(Path("params.yaml").read_text())
    del settings["schedule"]
    Path("params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    fails_cleanly(["import", "more.csv"], "params.yaml has no key 'schedule'; write it with al schedule N")


def test_id_and_path_of_different_images(campaign):
    first, second = batch_rows()[:2]
    Path("review.csv").write_text(f"id,path,label\n{first['id']},{second['path']},{truth(second['path'])}\n")
    fails_cleanly(["import", "review.csv"], f"id {first['id']} is '{first['path']}' in the pool, but the row's path is")


def test_studio_task_without_item_id_or_path(campaign):
    Path("export.json").write_text(json.dumps([{"id": 41, "data": {"image": "/data/local-files/?d=x.png"}, "annotations": [
        {"id": 7, "result": [{"type": "choices", "value": {"choices": [CLASSES[0]]}}]}]}]))
    fails_cleanly(["import", "export.json"], "row 1 (task 41): neither item_id nor path")


def test_a_time_that_is_not_a_time(campaign):
    item = batch_rows()[3]
    Path("late.csv").write_text(f"id,label,time\n{item['id']},{truth(item['path'])},last tuesday\n")
    fails_cleanly(["import", "late.csv"], "time 'last tuesday' is not an ISO 8601 time")


def test_import_of_a_missing_file_names_it(campaign):
    fails_cleanly(["import", "nowhere.json"], "nowhere.json does not exist")


def test_labels_store_naming_a_file(campaign):
    Path("labels.txt").write_text("not a folder\n")
    set_param("labels.store", "labels.txt")
    item = batch_rows()[3]
    Path("more.csv").write_text(f"id,label\n{item['id']},{truth(item['path'])}\n")
    fails_cleanly(["import", "more.csv"], "labels.store is 'labels.txt', a file; it names the folder")


def test_export_into_a_file(campaign):
    Path("batch.csv").write_text("keep me\n")
    fails_cleanly(["export", "init", "--out", "batch.csv"], "--out batch.csv is a file")
    assert Path("batch.csv").read_text() == "keep me\n"


def test_a_killed_import_leaves_nothing_to_commit(campaign):
    store = Path("data/annotations")
    (store / ".labels.parquet.k1ll3d.parquet").write_bytes(b"PAR1 half a file")  # what kill -9 mid-write leaves
    item = batch_rows()[3]
    Path("more.csv").write_text(f"id,label\n{item['id']},{truth(item['path'])}\n")
    assert CliRunner().invoke(app, ["import", "more.csv"]).exit_code == 0
    assert sorted(path.name for path in store.iterdir()) == [".gitignore", "labels.parquet", "sent.parquet"]
    assert ".labels.parquet.*" in (store / ".gitignore").read_text()


def test_written_files_follow_the_umask(campaign):
    previous = os.umask(0o022)
    try:
        item = batch_rows()[3]
        Path("more.csv").write_text(f"id,label\n{item['id']},{truth(item['path'])}\n")
        assert CliRunner().invoke(app, ["import", "more.csv"]).exit_code == 0
        assert stat.S_IMODE(Path("data/annotations/labels.parquet").stat().st_mode) == 0o644
    finally:
        os.umask(previous)


def test_import_while_the_stages_read_the_oracle(campaign):
    set_param("labels.source", "oracle")
    item = batch_rows()[3]
    Path("more.csv").write_text(f"id,label\n{item['id']},{truth(item['path'])}\n")
    warns_once(["import", "more.csv"], "labels.source is oracle, so no stage reads the annotation store")


# --- a round's batch that is not a batch --------------------------------------------------------

def test_a_batch_that_requeries_a_labeled_item(run):
    path = "runs/r01/queried.parquet"
    labeled = pl.read_parquet("runs/r01/labeled.parquet")["id"][0]
    queried = pl.read_parquet(path)
    queried.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(labeled).otherwise(pl.col("id")).alias("id")).write_parquet(path)
    fails_cleanly(["train", "r02", "r01"], f"{path} re-queries labeled ids, e.g. [{labeled}]", broken=path)


def test_a_batch_that_names_a_test_item(run):
    path = "runs/r01/queried.parquet"
    table = pl.read_parquet("data/prepare/pool.parquet")
    test_id = table.filter(pl.col("split") == "test")["id"][0]
    queried = pl.read_parquet(path)
    queried.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(test_id).otherwise(pl.col("id")).alias("id")).write_parquet(path)
    fails_cleanly(["train", "r02", "r01"], f"id {test_id} is not in the training pool", broken=path)


# --- params: nothing that would silently change nothing -----------------------------------------

def test_unknown_top_level_key(run):
    set_param("sampeler", "random")
    fails_cleanly(["select", "r01"], "params.yaml: sampeler is not a setting")


def test_schedule_of_negative_rounds(run):
    fails_cleanly(["schedule", "-3"], "the schedule needs at least one round, got -3")


def test_schedule_of_a_missing_params_file(run):
    fails_cleanly(["schedule", "3", "--params", "nope.yaml"], "nope.yaml not found")


def test_annotations_mode_on_a_labeled_pool(run):
    set_param("labels.source", "annotations")
    warns_once(["labels", "r00"], "queried items take their label from the dataset")


def test_initial_size_beyond_the_pool(run):
    set_param("initial_size", 100_000)
    line = warns_once(["init"], "initial_size 100000 exceeds the pool's")
    assert ".py:" not in line  # no source line of a raw Python warning


def test_emulated_bfloat16_selection(run, monkeypatch):
    from al_core import hardware

    monkeypatch.setattr(hardware, "cpu_model_and_flags", lambda: ("a CPU without bf16", {"avx2"}))
    set_param("select.precision", "bfloat16")
    warns_once(["select", "r01"], "select.precision is bfloat16 but this CPU has no bfloat16 instructions")


def test_emulated_bfloat16_extraction(monkeypatch):
    import torch

    from al_core import hardware
    from al_core.features import resolve_precision

    monkeypatch.setattr(hardware, "cpu_model_and_flags", lambda: ("a CPU without bf16", {"avx2"}))
    with pytest.warns(UserWarning, match="backbone.precision is bfloat16 but this CPU has no bfloat16 instructions"):
        assert resolve_precision("bfloat16", torch.device("cpu")) == "bfloat16"


def test_more_clusters_than_codewords(run):
    set_param("sampler", "margin_clustering")
    set_param("select.margin_clustering", {"clusters": 5000})
    warns_once(["cluster"], "clusters is 5000 but the k-means codebook has")


def test_the_cluster_stage_costs_nothing_for_samplers_without_clusters(run):
    set_param("sampler", "base")
    result = CliRunner().invoke(app, ["cluster"])
    assert result.exit_code == 0 and "cluster: skipped, sampler base reads no clusters" in result.output
    assert np.load("data/cluster/clusters.npy").shape == (0,)


# --- the study ----------------------------------------------------------------------------------

def write_grid(**changes) -> Path:
    grid = {"datasets": {"tiny": {}}, "samplers": ["random", "margin"], "seeds": [0, 1], **changes}
    Path("grid.yaml").write_text(yaml.safe_dump(grid))
    return Path("grid.yaml")


@pytest.mark.parametrize("changes, expected", [
    ({"seeds": [0, 0]}, "grid.yaml: seeds lists 0 more than once"),
    ({"samplers": ["margin", "random", "margin"]}, "grid.yaml: samplers lists 'margin' more than once"),
    ({"datasets": {"tiny": {"seeeed": 3}}}, "grid.yaml (datasets.tiny): seeeed is not a setting"),
    ({"datasets": {"tiny": {"data.imbalance_rato": 3}}}, "grid.yaml (datasets.tiny): data.imbalance_rato is not a setting of data"),
], ids=["seed twice", "sampler twice", "top-level typo", "section typo"])
def test_bad_study_grid(run, changes, expected):
    fails_cleanly(["study", "run", "--grid", str(write_grid(**changes)), "--out", "study"], expected)


@pytest.mark.parametrize("damage, expected", [
    ("metrics.json", "metrics.json is missing or damaged"),
    ("rounds.csv", "rounds.csv is damaged"),
], ids=["truncated metrics", "damaged rounds"])
def test_damaged_study_cell(run, damage, expected):
    cell = Path("study/tiny/random/seed0")
    cell.mkdir(parents=True)
    (cell / "rounds.csv").write_text("round,sampler,labels,top1,top5,imbalance_ratio,entropy\nr00,random,40,0.5,0.9,1.5,0.9\n")
    (cell / "metrics.json").write_text('{"full_top1": 0.8}\n')
    (cell / "cell.json").write_text('{"code": "abc"}\n')
    (cell / damage).write_text((cell / damage).read_text()[:12] + ("\nr01,random,sixty,,,\n" if damage == "rounds.csv" else ""))
    grid = write_grid(samplers=["random"], seeds=[0])
    line = fails_cleanly(["study", "report", "--grid", str(grid), "--cells", "study", "--out", "summary"], expected)
    assert "al study run --only tiny/random/seed0 --force" in line


def test_a_damaged_committed_run_is_left_out_by_name(monkeypatch):
    from reporting import experiments

    files = {"reports/rounds.csv": "round,labels,top1\nr00,40,0.5\n", "metrics.json": '{"full_top1": 0.8'}
    monkeypatch.setattr(experiments, "read_at", lambda rev, path: files.get(path))
    why = experiments.experiment_at("exp-1", "0123456789abcdef")
    assert isinstance(why, str) and "metrics.json at 0123456789 is damaged" in why
    files.update({"metrics.json": "{}", "reports/rounds.csv": "round,labels,top1\nr00,forty,0.5\n"})
    assert "reports/rounds.csv at 0123456789 is damaged" in experiments.experiment_at("exp-1", "0123456789abcdef")


def test_compare_outside_a_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails_cleanly(["compare"], "is not a DVC project in a git repository")


# --- datasets: rows that would become wrong items, sources that would go stale -------------------

def test_an_empty_id_cell_in_a_features_table(run, tmp_path):
    folder = tmp_path / "embeddings"
    folder.mkdir()
    np.save(folder / "features.npy", np.zeros((4, 3), np.float32))
    (folder / "items.csv").write_text("id,label,split\n0,0,train\n,1,train\n2,0,test\n3,1,test\n")
    set_param("data.dataset", "features")
    set_param("data.root", str(folder))
    fails_cleanly(["prepare"], "items.csv: row 2 has no id; every row needs one")


def test_a_replaced_features_file_changes_the_source_fingerprint(run, tmp_path):
    folder = tmp_path / "embeddings"
    folder.mkdir()
    np.save(folder / "features.npy", np.ones((4, 3), np.float32))
    pl.DataFrame({"id": [0, 1, 2, 3], "label": [0, 1, 0, 1], "split": ["train", "train", "test", "test"]}).write_csv(folder / "items.csv")
    set_param("data.dataset", "features")
    set_param("data.root", str(folder))
    CliRunner().invoke(app, ["source"])
    first = Path("data/source/fingerprint.json").read_bytes()
    assert "unchanged" in CliRunner().invoke(app, ["source"]).output
    assert Path("data/source/fingerprint.json").read_bytes() == first  # nothing changed: DVC runs nothing after it
    times = (folder / "features.npy").stat()
    np.save(folder / "features.npy", np.full((4, 3), 2, np.float32))  # same shape, same size, other rows
    os.utime(folder / "features.npy", ns=(times.st_atime_ns, times.st_mtime_ns))  # even with its time kept (cp -p)
    assert "changed: prepare and embed will re-run" in CliRunner().invoke(app, ["source"]).output


def test_a_damaged_image_after_prepare_is_recorded_even_after_a_resume(tmp_path, monkeypatch):
    from al_core.backbones import load_backbone
    from al_core.data.images import ImageFiles
    from al_core.features import extract_features

    paths = []
    for i in range(6):
        write_png(tmp_path / f"{i}.png", i % 2, seed=i)
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "3.png").write_bytes(b"\x89PNG damaged after prepare")
    model, preprocessing, _ = load_backbone("resnet10t", "none")
    common = dict(image_size=32, preprocessing=preprocessing, work_dir=tmp_path / "work", batch_size=2, shard_size=2,
                  device="cpu", progress=False, num_threads=1)
    images = ImageFiles(paths, 32)
    extract_features(model, images, **common)
    assert list(images.failed) == [3]
    resumed = ImageFiles(paths, 32)  # a re-run after a kill: every shard is on disk, nothing is decoded
    extract_features(model, resumed, **common)
    assert list(resumed.failed) == [3]


# --- editing params.yaml ------------------------------------------------------------------------

def test_al_set_keeps_comments_and_refuses_typos(run):
    Path("params.yaml").write_text("# the knobs\nbudget: 15   # per round\nlabels:\n  source: oracle   # or annotations\n"
                                   + Path("params.yaml").read_text().split("labels:", 1)[0].split("\n", 1)[1].replace("budget: 15\n", ""))
    before = Path("params.yaml").read_text()
    fails_cleanly(["set", "labels.sorce=annotations"], "labels.sorce is not a setting of labels")
    fails_cleanly(["set", "budget=-2"], "budget must be > 0")
    assert Path("params.yaml").read_text() == before
    result = CliRunner().invoke(app, ["set", "labels.source=annotations", "budget=20"])
    assert result.exit_code == 0, result.output
    text = Path("params.yaml").read_text()
    assert "# the knobs" in text and "budget: 20   # per round" in text and "source: annotations # or annotations" in text


# --- the command line ---------------------------------------------------------------------------

def test_version_and_short_help():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("al ")
    result = CliRunner().invoke(app, ["-h"])
    assert result.exit_code == 0 and "Labeling" in result.output and "Pipeline stages" in result.output
    assert CliRunner().invoke(app, ["export", "-h"]).exit_code == 0


def test_report_options_that_do_not_apply_to_the_run_scope(run):
    fails_cleanly(["report", "--scope", "run", "--check", "--any-code"],
                  "--check, --any-code apply to --scope all (the comparison of experiments), not to --scope run")


def test_a_damaged_image_after_prepare_is_a_warning_and_a_record(campaign):
    import shutil

    damaged = batch_rows()[0]["path"]
    Path(damaged).write_bytes(b"\x89PNG damaged after prepare")
    shutil.rmtree("data/embed")
    line = warns_once(["embed"], "1 image(s) could not be decoded and were embedded as black images")
    assert "data/embed/unreadable.csv" in line
    assert pl.read_csv("data/embed/unreadable.csv")["path"].to_list() == [damaged]
