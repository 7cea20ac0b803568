"""A campaign's history is fact: sent batches stay sent, every correction counts, concurrent imports lose nothing.

The campaign runs on unlabeled embeddings (``data.dataset: features``); the annotators are the
test itself, which knows every pool item's class (the embeddings are drawn around class centres).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from al_core.annotations import read_store
from tests.fakes import enter_workspace, invoke_al

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("ant", "bee", "cow", "doe")


def write_unlabeled_embeddings(folder: Path, n_pool=240, n_val=40, n_test=40, d=8, seed=0) -> dict[int, str]:
    """features.npy + items.csv of an unlabeled pool beside labeled val and test rows; returns every
    pool item's true class (what the test's annotators answer)."""
    rng = np.random.default_rng(seed)
    n = n_pool + n_val + n_test
    labels = rng.integers(0, len(CLASSES), size=n)
    centres = rng.normal(scale=2.0, size=(len(CLASSES), d))
    features = (centres[labels] + rng.normal(size=(n, d))).astype(np.float32)
    split = ["pool"] * n_pool + ["val"] * n_val + ["test"] * n_test
    ids = np.arange(1000, 1000 + n)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "features.npy", features)
    pl.DataFrame({"id": ids, "split": split,
                  "label": [None if s == "pool" else CLASSES[c] for s, c in zip(split, labels)],
                  "path": [f"https://images.example.org/{i}.jpg" for i in ids]}).write_csv(folder / "items.csv")
    return {int(i): CLASSES[c] for i, c, s in zip(ids, labels, split) if s == "pool"}


@pytest.fixture
def campaign(tmp_path, monkeypatch):
    truth = write_unlabeled_embeddings(tmp_path / "embeddings")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(initial_size=20, budget=15, schedule={"r00": "init", "r01": "r00", "r02": "r01"})
    params["data"].update(dataset="features", root=str(tmp_path / "embeddings"))
    params["labels"].update(source="annotations")
    params["train"].update(max_epochs=10, patience=5)
    params["stop"].update(set_size=50)
    enter_workspace(tmp_path, params, monkeypatch)
    Path("data/annotations").mkdir(parents=True)
    return truth


def al(*args, expect=0) -> str:
    return invoke_al(*args, expect=expect).output


def answer(round_name: str, truth: dict[int, str], out: Path) -> Path:
    """The annotators' CSV for the round's exported batch."""
    al("export", round_name, "--format", "csv", "--out", str(out.parent))
    batch = pl.read_csv(out.parent / f"{round_name}.csv")
    pl.DataFrame({"id": batch["id"], "label": [truth[i] for i in batch["id"]]}).write_csv(out)
    return out


def run_round(name: str, previous: str) -> None:
    al("labels", previous)
    al("train", name, previous)
    al("evaluate", name)
    al("select", name)


def batches(rounds) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(f"runs/{name}/queried.parquet") for name in rounds}


def test_a_correction_retrains_the_heads_and_reselects_nothing_sent(campaign, tmp_path):
    truth = campaign
    for stage in ("prepare", "embed", "init"):
        al(stage)
    sent = ["init", "r00", "r01"]
    for name, previous in (("r00", "init"), ("r01", "r00"), ("r02", "r01")):
        al("import", str(answer(previous, truth, tmp_path / f"{previous}.labels.csv")))
        run_round(name, previous)
    before = batches([*sent, "r02"])
    heads = {name: np.load(f"runs/{name}/head.npz")["weight"] for name in ("r00", "r01", "r02")}
    labeled_before = read_store(Path("data/annotations/labels.parquet"))["id"].n_unique()
    assert labeled_before == 20 + 15 + 15

    # A reviewer corrects one init label with a plain CSV (no time): wrong first, right, then wrong again.
    item = int(before["init"]["id"][0])
    wrong = next(name for name in CLASSES if name != truth[item])
    for number, label in enumerate((wrong, truth[item], wrong)):
        (tmp_path / f"review-{number}.csv").write_text(f"id,label\n{item},{label}\n")
        assert "1 new annotations" in al("import", str(tmp_path / f"review-{number}.csv"))
        assert pl.read_parquet("runs/init/labels.parquet") is not None
    al("labels", "init")
    labels_init = pl.read_parquet("runs/init/labels.parquet")
    assert labels_init.filter(pl.col("id") == item)["label"].to_list() == [CLASSES.index(wrong)]  # the third file won

    # dvc repro's order from the corrected round on: every head retrains, no sent batch moves.
    al("train", "r00", "init")
    out = al("select", "r00")
    assert "kept as sent" in out
    for name, previous in (("r01", "r00"), ("r02", "r01")):
        run_round(name, previous)  # train would stop here if any sent item lacked its label
    after = batches([*sent, "r02"])
    for name in sent:
        assert after[name].equals(before[name]), f"{name}'s sent batch changed"
    assert not np.array_equal(np.load("runs/r00/head.npz")["weight"], heads["r00"])  # retrained on the correction
    # 0 labels orphaned: every labeled item is in a sent batch, and in the labeled set that trains r02's head.
    labeled = set(read_store(Path("data/annotations/labels.parquet"))["id"].to_list())
    in_batches = set().union(*[set(after[name]["id"].to_list()) for name in sent])
    assert labeled <= in_batches
    assert labeled <= set(pl.read_parquet("runs/r02/labeled.parquet")["id"].to_list())
    campaign_md = al("campaign")
    assert "sent" in campaign_md

    # Reopening a sent round is explicit: it first says what it would drop and changes nothing.
    ledger = Path("data/annotations/sent.parquet").read_bytes()
    message = al("reopen", "r00")
    assert "would drop" in message and "r00 (15 items" in message and "r01 (15 items" in message
    assert "30 of their 30 items have labels" in message
    assert Path("data/annotations/sent.parquet").read_bytes() == ledger
    assert "dropped" in al("reopen", "r01", "--yes")
    al("train", "r01", "r00")
    assert "kept as sent" not in al("select", "r01")  # r01 is selected again; r00 stays as sent
    assert pl.read_parquet("runs/r00/queried.parquet").equals(before["r00"])


def test_the_ledger_checks_the_batch_it_keeps(campaign, tmp_path):
    truth = campaign
    for stage in ("prepare", "embed", "init"):
        al(stage)
    answer("init", truth, tmp_path / "init.csv")
    first = pl.read_parquet("runs/init/queried.parquet")
    # A changed initial_size would draw another s0: a sent s0 stays.
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["initial_size"] = 25
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "kept as sent" in al("init")
    assert pl.read_parquet("runs/init/queried.parquet").equals(first)
    # A queried file that is not the sent batch is not exported as if it were.
    pl.read_parquet("runs/init/queried.parquet").reverse().write_parquet("runs/init/queried.parquet")
    message = al("export", "init", "--format", "csv", "--out", str(tmp_path / "again"), expect=1)
    assert "is not the batch of init sent on" in message and "dvc repro" in message
    assert not list((tmp_path / "again").glob("init*"))  # no batch file written


def test_an_import_names_the_rounds_items_still_without_a_label(campaign, tmp_path):
    truth = campaign
    for stage in ("prepare", "embed", "init"):
        al(stage)
    al("export", "init", "--format", "csv", "--out", str(tmp_path))
    batch = pl.read_csv(tmp_path / "init.csv")
    # A JSON_MIN or CSV export of Label Studio simply leaves skipped tasks out.
    part = batch.head(17)
    pl.DataFrame({"id": part["id"], "label": [truth[i] for i in part["id"]]}).write_csv(tmp_path / "part.csv")
    message = al("import", str(tmp_path / "part.csv"))
    missing = batch["id"][17:].to_list()
    assert f"round init: 3 of 20 items still without a label (ids {', '.join(map(str, missing))})" in message
    assert Path("reports/disagreements.csv").read_text().startswith("id,labels,chosen")


def write_big_pool(folder: Path, n_pool: int) -> None:
    folder.mkdir(parents=True)
    np.save(folder / "features.npy", np.random.default_rng(0).normal(size=(n_pool + 8, 2)).astype(np.float16))
    split = ["pool"] * n_pool + ["val"] * 8
    pl.DataFrame({"id": np.arange(n_pool + 8), "split": split,
                  "label": [None] * n_pool + [CLASSES[i % 4] for i in range(8)]}).write_csv(folder / "items.csv")


def two_annotators_files(tmp_path: Path, monkeypatch) -> None:
    """A prepared campaign on a 60,000-item unlabeled pool, and two annotators' disjoint 30,000-row
    CSV files (tmp_path/0.csv, tmp_path/1.csv)."""
    write_big_pool(tmp_path / "embeddings", 60_000)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dataset="features", root=str(tmp_path / "embeddings"))
    params["labels"].update(source="annotations")
    enter_workspace(tmp_path, params, monkeypatch)
    Path("data/annotations").mkdir(parents=True)
    al("prepare")
    for half in range(2):
        ids = np.arange(half * 30_000, (half + 1) * 30_000)
        pl.DataFrame({"id": ids, "label": [CLASSES[i % 4] for i in ids]}).write_csv(tmp_path / f"{half}.csv")


def test_concurrent_imports_lose_no_row(tmp_path, monkeypatch):
    """Two annotators' disjoint 30,000-row files imported at once, again and again: all 60,000 rows stay."""
    two_annotators_files(tmp_path, monkeypatch)
    store = Path("data/annotations/labels.parquet")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "stages.cli", "import"]
    for attempt in range(3):
        store.unlink(missing_ok=True)
        runs = [subprocess.Popen([*command, str(tmp_path / f"{half}.csv")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=environment) for half in range(2)]
        outputs = [run.communicate(timeout=300)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert all("30000 new annotations" in output for output in outputs), outputs
        stored = read_store(store)
        assert stored.height == 60_000 and stored["id"].n_unique() == 60_000, f"attempt {attempt}: {stored.height} rows"


def studio_task(task_id: int, item: int, annotations: list[tuple[int, str, str]]) -> dict:
    """A task of Label Studio's JSON export: (annotation id, class, updated_at) each."""
    return {"id": task_id, "data": {"item_id": item}, "annotations": [
        {"id": key, "completed_by": key, "created_at": "2026-12-01T10:00:00Z", "updated_at": time,
         "result": [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]}
        for key, label, time in annotations]}


def test_the_campaigns_own_signals(campaign, tmp_path):
    truth = campaign
    for stage in ("prepare", "embed", "init"):
        al(stage)
    item = int(pl.read_parquet("runs/init/queried.parquet")["id"][0])
    other = next(name for name in CLASSES if name != truth[item])
    # Two annotators disagree; then the second edits her annotation to agree: the file is current again.
    Path("one.json").write_text(json.dumps([studio_task(1, item, [(10, truth[item], "2026-12-01T10:00:00Z"),
                                                                  (11, other, "2026-12-01T10:05:00Z")])]))
    assert "annotators disagree on 1 of these items" in al("import", "one.json")
    assert str(item) in Path("reports/disagreements.csv").read_text()
    Path("two.json").write_text(json.dumps([studio_task(1, item, [(10, truth[item], "2026-12-01T10:00:00Z"),
                                                                  (11, truth[item], "2026-12-02T09:00:00Z")])]))
    assert "1 changed" in al("import", "two.json")
    assert Path("reports/disagreements.csv").read_text().strip() == "id,labels,chosen"
    # A committed demo run's rounds.csv is not this campaign's stopping signal.
    Path("reports/rounds.csv").write_text("round,labels,kappa\nr00,100,\nr07,800,0.93\n")
    shown = al("campaign")
    assert "r07" not in shown and "kappa 0.93" not in shown
    assert "| init | 20" in shown  # init was sent (an import labeled one of its items) on that day


def test_cancelled_annotations_are_mentioned_while_the_item_has_no_label(campaign):
    truth = campaign
    for stage in ("prepare", "embed", "init"):
        al(stage)
    item = int(pl.read_parquet("runs/init/queried.parquet")["id"][1])
    task = {"id": 2, "data": {"item_id": item}, "annotations": [
        {"id": 20, "completed_by": 1, "was_cancelled": True, "created_at": "2026-12-01T10:00:00Z", "result": []}]}
    Path("skipped.json").write_text(json.dumps([task]))
    assert "1 cancelled or empty, not labels" in al("import", "skipped.json")
    Path("late.csv").write_text(f"id,label\n{item},{truth[item]}\n")
    al("import", "late.csv")
    task["id"] = 3  # the project exported again, the skip still in it
    Path("again.json").write_text(json.dumps([task]))
    assert "cancelled" not in al("import", "again.json")


def test_a_writer_waits_for_another_and_says_so(tmp_path, capsys):
    import fcntl
    import threading
    import time

    from al_core.artifacts import exclusive_lock

    held = os.open(tmp_path, os.O_RDONLY)  # another writer holds the store's folder
    fcntl.flock(held, fcntl.LOCK_EX)
    done = threading.Event()

    def write():
        with exclusive_lock(tmp_path / "labels.parquet", waiting="import: waiting for another writer"):
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.3)
    assert not done.is_set()  # it waits...
    os.close(held)
    writer.join(10)
    assert done.is_set()  # ...and goes on once the other is done
    assert "import: waiting for another writer" in capsys.readouterr().out


def test_an_import_killed_at_any_moment_leaves_the_store_whole(tmp_path, monkeypatch):
    """kill -9 of `al import` at moments spread over its run: the store holds the rows before the
    import or all of them after it, never a part, and the next import goes through."""
    import shutil
    import signal
    import time

    two_annotators_files(tmp_path, monkeypatch)
    al("import", str(tmp_path / "0.csv"))
    store = Path("data/annotations/labels.parquet")
    before = tmp_path / "before.parquet"
    shutil.copy(store, before)
    command = [sys.executable, "-m", "stages.cli", "import", str(tmp_path / "1.csv")]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True)
    duration = time.perf_counter() - started
    outcomes = []
    for fraction in (0.5, 0.7, 0.8, 0.9, 0.95, 1.0):
        shutil.copy(before, store)
        run = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        run.send_signal(signal.SIGKILL)
        run.wait()
        rows = read_store(store).height
        assert rows in (30_000, 60_000), f"killed at {fraction:.0%} of the import: {rows} rows"
        outcomes.append(rows)
    assert "30000 new annotations" in al("import", str(tmp_path / "1.csv")) or outcomes[-1] == 60_000
    assert read_store(store).height == 60_000
    assert not list(Path("data/annotations").glob(".labels.parquet.*"))  # the killed imports' temporaries are gone
