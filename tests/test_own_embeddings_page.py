"""docs/how-to/own-embeddings.md followed as written, under real DVC, then two more rounds and a correction.

The page's command block runs line by line in a fresh project (the import's file is the
annotators' Label Studio export of the exported tasks, made here from the items' true classes).
Then r00's batch goes out and comes back, a reviewer corrects one label of s0 after two rounds,
and ``dvc repro`` retrains the heads while every sent batch stays as it was sent: no new label is
asked for, none is orphaned.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.test_datasets import write_png

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "how-to" / "own-embeddings.md"
CLASSES = ("ant", "bee", "cow")


def page_commands() -> list[str]:
    """The command lines of the page's 'Run the loop' block, comments removed."""
    section = PAGE.read_text().split("## 2. Run the loop", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def write_embeddings(project: Path, images: Path, n_pool=2400, n_val=60, n_test=60, d=6) -> dict[int, str]:
    """The page's two files (local image paths), and the true class of every pool item."""
    rng = np.random.default_rng(0)
    n = n_pool + n_val + n_test
    labels = rng.integers(0, len(CLASSES), size=n)
    features = (rng.normal(scale=2.0, size=(len(CLASSES), d))[labels] + rng.normal(size=(n, d))).astype(np.float32)
    split = ["pool"] * n_pool + ["val"] * n_val + ["test"] * n_test
    paths = [str(images / f"item #{i} & co.png") for i in range(n)]  # names a URL must encode
    for i in range(0, n, 97):
        write_png(Path(paths[i]), int(labels[i]), seed=i)  # a few real files; the server is not started here
    folder = project / "embeddings"
    folder.mkdir()
    np.save(folder / "features.npy", features)
    pl.DataFrame({"id": np.arange(n), "split": split, "path": paths,
                  "label": [None if s == "pool" else CLASSES[c] for s, c in zip(split, labels)]}).write_csv(folder / "items.csv")
    return {i: CLASSES[c] for i, (c, s) in enumerate(zip(labels, split)) if s == "pool"}


def studio_export(tasks_file: Path, truth: dict[int, str], out: Path, first_id: int) -> Path:
    """What Label Studio's JSON export holds once annotators labeled every task of ``tasks_file``."""
    tasks = json.loads(tasks_file.read_text())
    exported = [{"id": first_id + k, "data": task["data"], "annotations": [{
        "id": first_id + k, "completed_by": 1, "was_cancelled": False, "created_at": "2026-12-05T10:00:00Z",
        "updated_at": "2026-12-05T10:00:00Z", "lead_time": 3.5,
        "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                    "value": {"choices": [truth[task["data"]["item_id"]]]}}]}]} for k, task in enumerate(tasks)]
    out.write_text(json.dumps(exported))
    return out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for DVC")
def test_the_own_embeddings_page_as_written_then_a_correction(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for package in ("al_core", "stages", "pipeline", "reporting"):
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "data" / "annotations", project / "data" / "annotations")
    images = tmp_path / "data" / "images"
    truth = write_embeddings(project, images)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    def run(line: str, expect_ok: bool = True) -> str:
        result = subprocess.run(shlex.split(line), cwd=project, env=env, capture_output=True, text=True, timeout=900)
        output = result.stdout + result.stderr
        assert (result.returncode == 0) == expect_ok, f"{line}: exit {result.returncode}\n{output}"
        return output

    for line in ("git init -q", "git config user.email t@example.com", "git config user.name t", "dvc init -q"):
        run(line)
    shutil.copy(ROOT / ".dvc" / "config", project / ".dvc" / "config")
    run("git add -A")
    run("git commit -qm baseline")

    commands = page_commands()
    assert commands[0].startswith("al set data.dataset=features") and "al campaign" in commands
    outputs = []
    for line in commands:
        line = line.replace("/data/images", str(images))
        if line.startswith("al import"):
            line = f"al import {studio_export(project / 'annotate' / 'init.tasks.json', truth, tmp_path / 'project-1.json', 1)}"
        outputs.append(run(line, expect_ok=not line.startswith("dvc repro")))  # --keep-going stops at a round awaiting labels
    first_repro, export, imported, second_repro = outputs[3], outputs[4], outputs[5], outputs[6]
    assert "1000 of the 1000 items queried in round init await labels" in first_repro
    tasks = json.loads((project / "annotate" / "init.tasks.json").read_text())
    assert "init is sent" in export and len(tasks) == 1000
    assert tasks[0]["data"]["image"].startswith("/data/local-files/?d=item%20%23")  # encoded below the document root
    assert "1000 new annotations" in imported
    assert "Running stage 'select@r00'" in second_repro and "1000 of the 1000 items queried in round r00 await labels" in second_repro

    # r00's batch goes out and comes back; r01 is selected.
    run(f"al export r00 --out annotate --document-root {images}")
    run(f"al import {studio_export(project / 'annotate' / 'r00.tasks.json', truth, tmp_path / 'project-2.json', 5000)}")
    run("dvc repro --keep-going", expect_ok=False)  # stops at r02: r01's batch awaits labels
    sent = {name: (project / "runs" / name / "queried.parquet").read_bytes() for name in ("init", "r00")}
    head = np.load(project / "runs" / "r00" / "head.npz")["weight"]

    # After two rounds a reviewer corrects one label of s0 with a plain CSV.
    item = int(pl.read_parquet(project / "runs" / "init" / "queried.parquet")["id"][0])
    wrong = next(name for name in CLASSES if name != truth[item])
    (tmp_path / "review.csv").write_text(f"id,label\n{item},{wrong}\n")
    run(f"al import {tmp_path / 'review.csv'}")
    out = run("dvc repro --keep-going", expect_ok=False)
    assert "Running stage 'train@r00'" in out and "Running stage 'train@r01'" in out  # heads retrain from s0 on
    assert "r00: sent to annotators" in out and "kept as sent" in out
    assert not re.search(r"items queried in round (init|r00) await labels", out)  # 0 new labels asked for sent rounds
    assert {name: (project / "runs" / name / "queried.parquet").read_bytes() for name in sent} == sent
    assert not np.array_equal(np.load(project / "runs" / "r00" / "head.npz")["weight"], head)
    labeled = set(pl.read_parquet(project / "runs" / "r01" / "labeled.parquet")["id"].to_list())
    stored = set(pl.read_parquet(project / "data" / "annotations" / "labels.parquet")["id"].to_list())
    assert stored == labeled  # 0 labels orphaned: every paid label trains r01's head
    campaign = run("al campaign")
    assert re.search(r"\| r00 \| 20\d\d-\d\d-\d\d", campaign)  # when r00 was sent
