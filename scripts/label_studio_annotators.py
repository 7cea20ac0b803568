"""Play the annotators of a Label Studio project through its REST API (for tests and measurements).

A real campaign labels in the browser; this does what those clicks do, so that the round trip can
be tested and timed without a person: start a local server (or use a running one), create a
project with the labeling config `al export` wrote, import the exported tasks, post one
annotation per task from a truth table (path,label), and download the project's export.

    python -m scripts.label_studio_annotators annotate/r00.tasks.json annotate/config.xml \\
        --truth ../images_truth.csv --document-root ../images --out export.json

Without ``--url`` it starts ``.venv-ls/bin/label-studio`` on a free localhost port with SQLite in a
temporary folder, and stops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from al_core.errors import InputError
from pipeline.label_studio import LabelStudio

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / ".venv-ls" / "bin" / "label-studio"
START_TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Studio:
    """A Label Studio server of our own (SQLite in ``data_dir``), and the REST calls the loop needs."""

    def __init__(self, data_dir: Path, document_root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        self.client = LabelStudio(self.url, self.token)  # a legacy token: sent as it is
        self.data_dir = data_dir
        env = dict(os.environ, LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true", LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
                   LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(Path(document_root).resolve()), DJANGO_DB="sqlite",
                   LABEL_STUDIO_BASE_DATA_DIR=str(data_dir))
        self.log = open(data_dir / "server.log", "w")
        self.process = subprocess.Popen(
            [str(SERVER), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(data_dir), "--username", "annotator@example.com", "--password", "annotate-it",
             "--user-token", self.token],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited: {self.server_log()}")
            try:
                self.call("GET", "/api/projects")
                self.start_seconds = time.monotonic() - started
                return
            except InputError:  # not answering yet: the client says so in one error type
                time.sleep(2)
        self.stop()
        raise RuntimeError(f"Label Studio did not answer within {START_TIMEOUT} s: {self.server_log()}")

    def server_log(self) -> str:
        return (self.data_dir / "server.log").read_text()[-3000:]

    def call(self, method: str, path: str, payload=None, raw: bool = False):
        """A REST call with this server's token, through the pipeline's own client (``al push``/``al pull``'s)."""
        return self.client.call(method, path, payload, raw)

    def create_project(self, title: str, config: str, tasks: list[dict], images: Path | None = None) -> tuple[int, list[dict]]:
        """A project with ``config`` and ``tasks`` imported; returns its id and its tasks as stored.

        ``images``: the folder (under the document root) the tasks' local-file URLs point into;
        Label Studio serves local files only from a "Local files" storage of the project, which
        the UI adds under Settings -> Cloud Storage -> Add Source Storage (no sync needed)."""
        project = self.call("POST", "/api/projects", {"title": title, "label_config": config})
        if images is not None:
            self.call("POST", "/api/storages/localfiles", {"project": project["id"], "path": str(Path(images).resolve()),
                                                           "title": "images", "use_blob_urls": True})
        self.call("POST", f"/api/projects/{project['id']}/import", tasks)
        listed = self.call("GET", f"/api/tasks?project={project['id']}&page_size={len(tasks) + 10}")
        return project["id"], (listed["tasks"] if isinstance(listed, dict) else listed)

    @staticmethod
    def _result(name: str | None) -> list[dict]:
        return [] if name is None else [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [name]}}]

    def annotate(self, task_id: int, name: str | None, cancelled: bool = False) -> int:
        """Post an annotation (``cancelled``: the annotator skipped the task); returns its id."""
        return self.call("POST", f"/api/tasks/{task_id}/annotations", {"result": self._result(name), "was_cancelled": cancelled})["id"]

    def edit(self, annotation_id: int, name: str) -> None:
        """Change an annotation's choice, as an annotator who reopens it does (its updated_at moves)."""
        self.call("PATCH", f"/api/annotations/{annotation_id}", {"result": self._result(name)})

    def export(self, project_id: int, export_type: str = "JSON") -> bytes:
        return self.call("GET", f"/api/projects/{project_id}/export?exportType={export_type}", raw=True)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def main() -> None:
    import polars as pl

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--truth", type=Path, required=True, help="CSV path,label: what the annotators answer")
    parser.add_argument("--document-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--export-type", default="JSON", choices=("JSON", "JSON_MIN", "CSV"))
    args = parser.parse_args()

    truth = {str(Path(path).resolve()): label for path, label in pl.read_csv(args.truth).iter_rows()}
    tasks = json.loads(args.tasks.read_text())
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as data_dir:
        studio = Studio(Path(data_dir), args.document_root)
        try:
            project, stored = studio.create_project(f"al {args.tasks.stem}", args.config.read_text(), tasks,
                                                    images=args.document_root / "pool")
            for task in stored:
                studio.annotate(task["id"], truth[str(Path(task["data"]["path"]).resolve())])
            args.out.write_bytes(studio.export(project, args.export_type))
        finally:
            studio.stop()
    print(f"{len(stored)} tasks annotated in Label Studio (server start {studio.start_seconds:.0f} s, "
          f"{time.monotonic() - started:.0f} s in all); export written to {args.out}")


if __name__ == "__main__":
    main()
