"""Screenshots of the real Label Studio pages for the tutorial, taken during a real run.

    python -m scripts.label_studio_screenshots --out docs/tutorials/img

Makes a small unlabeled Fashion-MNIST campaign in a temporary folder (scripts/fashion_mnist_folder.py),
runs the pipeline's stages through s0 (labels from the truth file, as a CSV round trip) and r00,
exports r00's batch for Label Studio, starts Label Studio 1.23.2 (.venv-ls), creates the project
with the exported labeling config, the Local files storage and the tasks, then drives the Debian
Chromium headless with Playwright (no browser download) to sign in and photograph: the project's
task list, a task with the model's guess pre-selected, and the export dialog. Then it labels the
tasks through the REST API, exports the project, imports it with `al import`, and prints what
`al import` said, so that every picture comes from a loop that really ran. Needs Label Studio in
.venv-ls (scripts/install_label_studio.sh), chromium, and `pip install playwright`.
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


def campaign(work: Path) -> tuple[Path, Path]:
    """A real campaign up to r00's Label Studio batch; returns the image folder and the truth file."""
    images = work / "images"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fashion_mnist_folder.py"), str(images), "--pool", "400",
                    "--val", "100", "--test", "200"], check=True, capture_output=True)
    truth_file = work / "images_truth.csv"
    (work / "run").mkdir()
    run = work / "run"
    (run / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    al("set", f"data.root={images}", "data.dataset=imagefolder", "labels.source=annotations", "initial_size=40",
       "budget=12", cwd=run)
    al("schedule", "1", cwd=run)
    for command in (["source"], ["prepare"], ["embed"], ["init"], ["labels", "init"], ["export", "init", "--format", "csv"]):
        al(*command, cwd=run)
    truth = {str(Path(path).resolve()): label for path, label in pl.read_csv(truth_file).iter_rows()}
    batch = pl.read_csv(run / "annotate" / "init.csv")
    pl.DataFrame({"id": batch["id"], "label": [truth[str(Path(p).resolve())] for p in batch["path"]]}).write_csv(run / "s0.csv")
    al("import", "s0.csv", cwd=run)
    for command in (["labels", "init"], ["train", "r00", "init"], ["evaluate", "r00"], ["select", "r00"], ["labels", "r00"],
                    ["export", "r00", "--document-root", str(images)]):
        al(*command, cwd=run)
    return images, truth_file


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
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        images, truth_file = campaign(work)
        run = work / "run"
        tasks = json.loads((run / "annotate" / "r00.tasks.json").read_text())
        (work / "studio").mkdir()
        studio = Studio(work / "studio", document_root=images)
        try:
            project, stored = studio.create_project("Fashion-MNIST r00", (run / "annotate" / "config.xml").read_text(),
                                                    tasks, images=images / "pool")
            photograph(studio, project, stored[0]["id"], args.out)
            truth = {str(Path(path).resolve()): label for path, label in pl.read_csv(truth_file).iter_rows()}
            for task in stored:
                studio.annotate(task["id"], truth[str(Path(task["data"]["path"]).resolve())])
            (run / "export.json").write_bytes(studio.export(project, "JSON"))
        finally:
            studio.stop()
        print(al("import", "export.json", cwd=run).strip())
    print(f"screenshots in {args.out}: " + ", ".join(sorted(path.name for path in args.out.glob("label-studio-*.png"))))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
