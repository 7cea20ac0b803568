"""Screenshots of the real Label Studio pages for the tutorial, taken during a real run of al push / al pull.

    python -m scripts.label_studio_screenshots --out docs/tutorials/img

Makes a small unlabeled Fashion-MNIST campaign in a temporary folder (scripts/fashion_mnist_folder.py),
starts Label Studio 1.23.2 (.venv-ls) with its local-files document root at the image folder, and
runs the loop as the tutorial does: `al push init` (creates the project, its labeling config and
its storage), the annotators' answers through the REST API (what their browsers send), `al pull`,
the stages of r00, `al push r00` into the same project; then drives the Debian Chromium headless
with Playwright (no browser download) to sign in and photograph: the project's task list, a task
of r00 with the model's guess pre-selected, and the export dialog (the file route). Then it labels
r00, pulls, runs r01's stages, pushes and pulls r01 (three rounds in one project) and prints what
every al command said, so that every picture comes from
a loop that really ran. Needs Label Studio in .venv-ls (scripts/install_label_studio.sh),
chromium, and `pip install playwright`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

from scripts.label_studio_annotators import Studio

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "annotator@example.com", "annotate-it"  # what Studio starts the server with


def al(*args: str, cwd: Path) -> str:
    result = subprocess.run([str(Path(sys.executable).parent / "al"), *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"al {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def campaign(work: Path) -> tuple[Path, dict[str, str]]:
    """A real campaign up to s0's batch; returns the image folder and the truth (path -> class)."""
    images = work / "images"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fashion_mnist_folder.py"), str(images), "--pool", "400",
                    "--val", "100", "--test", "200"], check=True, capture_output=True)
    (work / "run").mkdir()
    run = work / "run"
    (run / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    al("set", f"data.root={images}", "data.dataset=imagefolder", "labels.source=annotations", "initial_size=40",
       "budget=12", cwd=run)
    al("schedule", "2", cwd=run)
    for command in (["source"], ["prepare"], ["embed"], ["init"], ["labels", "init"]):
        al(*command, cwd=run)
    truth = {str(Path(path).resolve()): label for path, label in pl.read_csv(work / "images_truth.csv").iter_rows()}
    return images, truth


def label_all(studio: Studio, project: int, round_name: str, truth: dict[str, str]) -> None:
    """The annotators: every task of the round gets its true class."""
    listed = studio.call("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]
    for task in listed:
        if task["data"]["round"] == round_name:
            studio.annotate(task["id"], truth[str(Path(task["data"]["path"]).resolve())])


def photograph(studio: Studio, project: int, task: int, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page(viewport={"width": 1360, "height": 820})
        page.goto(f"{studio.url}/user/login/")
        page.fill("input[name=email]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{studio.url}/projects/{project}/data")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out / "label-studio-tasks.png"))
        page.goto(f"{studio.url}/projects/{project}/data?task={task}")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(4000)
        page.screenshot(path=str(out / "label-studio-task.png"))
        page.goto(f"{studio.url}/projects/{project}/data")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1500)
        page.get_by_text("Export", exact=True).first.click()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "label-studio-export.png"))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tutorials" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    said = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        images, truth = campaign(work)
        run = work / "run"
        (work / "studio").mkdir()
        studio = Studio(work / "studio", document_root=images)
        os.environ.update(LABEL_STUDIO_URL=studio.url, LABEL_STUDIO_API_KEY=studio.token)
        try:
            said.append(al("push", "init", cwd=run))
            project = json.loads((run / "data" / "annotations" / "label-studio.json").read_text())["project"]
            label_all(studio, project, "init", truth)
            said.append(al("pull", cwd=run))
            for command in (["labels", "init"], ["train", "r00", "init"], ["evaluate", "r00"], ["select", "r00"]):
                al(*command, cwd=run)
            said.append(al("push", "r00", cwd=run))
            listed = studio.call("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]
            photograph(studio, project, next(task["id"] for task in listed if task["data"]["round"] == "r00"), args.out)
            label_all(studio, project, "r00", truth)
            said.append(al("pull", cwd=run))
            for command in (["labels", "r00"], ["train", "r01", "r00"], ["evaluate", "r01"], ["select", "r01"]):
                al(*command, cwd=run)
            said.append(al("push", "r01", cwd=run))
            label_all(studio, project, "r01", truth)
            said.append(al("pull", cwd=run))
            al("labels", "r01", cwd=run)
            said.append(al("campaign", cwd=run))
        finally:
            studio.stop()
    print("".join(said).strip())
    print(f"screenshots in {args.out}: " + ", ".join(sorted(path.name for path in args.out.glob("label-studio-*.png"))))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
