"""``al push`` and ``al pull``: a campaign's rounds through Label Studio's REST API, no file carried by hand.

One Label Studio project per campaign: ``al push ROUND`` creates it on first use (the labeling
config ``al export`` writes, and for local files a "Local files" storage for each top folder of
the images below the server's document root, so the server can show them), then adds the round's
tasks (what ``al export`` writes: image, item id, round, rank, score and the head's guess as a
prediction). Tasks of items the project holds already are not added again, so pushing a round
twice adds nothing. ``al pull`` downloads the project's JSON export (every task, labeled or not)
and stores its annotations by exactly the rules of ``al import`` (annotation id, task and item;
an edit replaces, a repeat is stored once), then says per round how many tasks are labeled,
skipped or still open.

The project (server URL, project id, the items pushed per round) is remembered in
``labels.store``/label-studio.json, beside the annotation store. The client is a few REST calls
on the standard library (Label Studio's documented API, the calls its SDK makes), so the pipeline
needs no extra package; the server and its key come from ``LABEL_STUDIO_URL`` and
``LABEL_STUDIO_API_KEY`` (the SDK's names) or the commands' options. A personal access token
(a JWT) is exchanged for an access token as the SDK does; a legacy token is sent as it is.
Every error is one line, and nothing is stored or remembered when a call fails before the store.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from al_core.annotations import parse_export
from al_core.artifacts import atomic_path
from al_core.errors import InputError
from pipeline.annotate import (
    LOCAL_FILES_PREFIX,
    class_names,
    dataset_root,
    labeling_config,
    mark_sent,
    round_batch,
    served_root,
    store_parsed,
    studio_tasks,
)
from pipeline.artifacts import PoolTable
from pipeline.label_store import LabelStore, known_labels
from pipeline.params import Params

URL_VARIABLE = "LABEL_STUDIO_URL"
KEY_VARIABLE = "LABEL_STUDIO_API_KEY"
PROJECT_FILE = "label-studio.json"
PAGE_SIZE = 1000
TIMEOUT_S = 120
PROJECT_HINT = f"labels.store/{PROJECT_FILE}"  # how errors name the file remembering the project
KEY_HELP = ("copy it from Label Studio's Account & Settings (Personal Access Token, or the legacy Access Token) into "
            f"{KEY_VARIABLE}, or pass --api-key")


class NotFound(InputError):
    """Label Studio answered 404."""


class LabelStudio:
    """The REST calls of a push and a pull, each failure one line that says what to do."""

    def __init__(self, url: str, key: str):
        self.url = url.rstrip("/")
        self.key = key
        self._authorization: str | None = None

    @staticmethod
    def token_type(key: str) -> str | None:
        """The ``token_type`` claim of a JWT (a personal access token is a "refresh" token); None for a legacy token."""
        parts = key.split(".")
        if len(parts) != 3:
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, UnicodeDecodeError):
            return None
        return claims.get("token_type") if isinstance(claims, dict) else None

    def authorization(self) -> str:
        if self._authorization is None:
            kind = self.token_type(self.key)
            if kind is None:
                self._authorization = f"Token {self.key}"
            elif kind == "refresh":  # a personal access token: trade it for a short-lived access token
                answer = self._send("POST", "/api/token/refresh/", {"refresh": self.key}, authorization=None)
                self._authorization = f"Bearer {answer['access']}"
            else:
                self._authorization = f"Bearer {self.key}"
        return self._authorization

    def call(self, method: str, path: str, payload=None, raw: bool = False):
        return self._send(method, path, payload, self.authorization(), raw)

    def _send(self, method: str, path: str, payload, authorization: str | None, raw: bool = False):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(self.url + path, method=method, headers=headers,
                                         data=None if payload is None else json.dumps(payload).encode())
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:400].decode(errors="replace")
            if error.code in (401, 403) or (authorization is None and error.code in (400, 401)):
                raise InputError(f"Label Studio at {self.url} refused the API key ({error.code}); {KEY_HELP}") from None
            if error.code == 404:
                raise NotFound(f"Label Studio at {self.url} has no {path.split('?')[0]} (404)") from None
            raise InputError(f"Label Studio at {self.url} answered {error.code} to {method} {path.split('?')[0]}: "
                             f"{_message(detail)}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise InputError(f"cannot reach Label Studio at {self.url} ({reason}); start it (label-studio start) or set "
                             f"{URL_VARIABLE} (or --url) to the address it runs at") from None
        if raw:
            return body
        try:
            return json.loads(body or b"null")
        except json.JSONDecodeError:
            raise InputError(f"{self.url} answered {method} {path.split('?')[0]} with something that is not JSON; is "
                             f"{URL_VARIABLE} the address of Label Studio (e.g. http://localhost:8080)?") from None

    def tasks(self, project: int) -> list[dict]:
        """Every task of the project (its id and data), page by page."""
        tasks, page = [], 1
        while True:
            try:
                answer = self.call("GET", f"/api/tasks?project={project}&page={page}&page_size={PAGE_SIZE}&fields=task_only")
            except NotFound:  # past the last page
                break
            listed = answer["tasks"] if isinstance(answer, dict) else answer
            tasks += listed
            total = answer.get("total") if isinstance(answer, dict) else None
            if not listed or len(listed) < PAGE_SIZE or (total is not None and len(tasks) >= total):
                break
            page += 1
        return tasks


def _message(detail: str) -> str:
    """The readable part of Label Studio's error body."""
    try:
        body = json.loads(detail)
    except json.JSONDecodeError:
        return detail.strip()[:300]
    if isinstance(body, dict):
        found = body.get("validation_errors") or body.get("detail") or body
        return json.dumps(found)[:300] if not isinstance(found, str) else found[:300]
    return str(body)[:300]


def _choices(config: str) -> list[str]:
    return re.findall(r'<Choice\s+value="([^"]*)"', config)


def project_file(store: LabelStore) -> Path:
    """Where the campaign remembers its Label Studio project: beside the annotation store."""
    return store.file.parent / PROJECT_FILE


def read_project(path: Path) -> dict | None:
    """The remembered project (`project_file`): url, project, rounds; None before the first push."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not readable JSON ({error}); restore it from git, or remove it to start a new "
                         "Label Studio project") from None
    if not isinstance(state, dict) or not isinstance(state.get("project"), int) or not isinstance(state.get("url"), str):
        raise InputError(f"{path}: expected url and project (an integer); restore it from git, or remove it to start a "
                         "new Label Studio project")
    state.setdefault("rounds", {})
    return state


def write_project(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(state, indent=1) + "\n")


def connect(url: str | None, key: str | None, state: dict | None) -> LabelStudio:
    url = url or (state or {}).get("url")
    if not url:
        raise InputError(f"which Label Studio? set {URL_VARIABLE} (e.g. http://localhost:8080) or pass --url")
    if not key:
        raise InputError(f"no Label Studio API key: {KEY_HELP}")
    if not re.match(r"https?://", url):
        raise InputError(f"{URL_VARIABLE} (or --url) is {url!r}; expected an address such as http://localhost:8080")
    client = LabelStudio(url, key)
    if state is not None and client.url != state["url"].rstrip("/"):
        raise InputError(f"this campaign's Label Studio project is {state['project']} at {state['url']} "
                         f"({PROJECT_HINT}), not at {client.url}; use that server, or pass --project ID to "
                         "use a project of this one")
    return client


def check_project(client: LabelStudio, project: int, names: tuple[str, ...]) -> dict:
    """The project, if it exists and labels this campaign's classes (an error otherwise)."""
    try:
        found = client.call("GET", f"/api/projects/{project}")
    except NotFound:
        raise InputError(f"Label Studio project {project} no longer exists at {client.url} (deleted?); labels pulled "
                         f"before are in the store. To go on in a new project, remove {PROJECT_HINT} and push "
                         "again, or pass --project ID to use another one") from None
    expected = _choices(labeling_config(names))
    got = _choices(found.get("label_config") or "")
    if got != expected:
        missing = [name for name in expected if name not in got]
        extra = [name for name in got if name not in expected]
        raise InputError(f"Label Studio project {project} labels other classes than this campaign (missing {missing}, "
                         f"extra {extra}); pass --project ID of this campaign's project, or remove {PROJECT_HINT} "
                         "to start a new one")
    return found


def storage_folders(tasks: list[dict], root: Path) -> list[Path]:
    """The folders (one level below the document root) whose local-file storages show the tasks' images."""
    folders = set()
    for task in tasks:
        image = task["data"]["image"]
        if not image.startswith(LOCAL_FILES_PREFIX):
            continue
        relative = urllib.parse.unquote(image[len(LOCAL_FILES_PREFIX):])
        if "/" not in relative:
            raise InputError(f"image {task['data']['path']} sits directly in the document root {root}; Label Studio shows "
                             "local files only from a folder below its document root: pass --document-root the parent "
                             f"folder of {root} and start Label Studio with that root")
        folders.add(root / relative.split("/")[0])
    return sorted(folders)


def add_storages(client: LabelStudio, project: int, folders: list[Path], root: Path) -> int:
    """A Local files storage for each folder the project lacks; how many were added."""
    existing = client.call("GET", f"/api/storages/localfiles?project={project}") or []
    have = {str(Path(storage["path"])) for storage in existing}
    added = 0
    for folder in folders:
        if str(folder) in have:
            continue
        try:
            client.call("POST", "/api/storages/localfiles", {"project": project, "path": str(folder), "title": folder.name,
                                                            "use_blob_urls": True})
        except InputError as error:
            raise InputError(f"Label Studio cannot show the images of {folder}: {error}. Start it with "
                             "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="
                             f"{root} (or pass --document-root the folder it serves)") from None
        added += 1
    return added


def run_push(params: Params, round_name: str, url: str | None, key: str | None, document_root: Path | None,
             project: int | None) -> None:
    """Send ROUND's batch to the campaign's Label Studio project (see the module docstring)."""
    settings = params.settings
    store = LabelStore.of(settings.labels, params.path)
    remembered = project_file(store)
    state = read_project(remembered)
    if project is not None and state is not None and project != state["project"]:
        state = None  # another project from now on: the remembered one is replaced once this push succeeds
    client = connect(url, key, None if project is not None else state)
    names = class_names()
    if state is None and project is not None:
        state = {"url": client.url, "project": int(project), "rounds": {}}
    if state is not None:
        check_project(client, state["project"], names)
    batch = round_batch(store, round_name)
    if not batch.rows.height:
        print(f"push {round_name}: nothing to send, {batch.all_labeled}")
        return
    root = served_root(document_root, settings.data.root)
    tasks, shown = studio_tasks(batch, settings.labels.image_url, root)
    folders = storage_folders(tasks, root)
    made = ""
    if state is None:
        title = f"al {Path.cwd().name}"
        created = client.call("POST", "/api/projects", {"title": title, "label_config": labeling_config(names)})
        state = {"url": client.url, "project": int(created["id"]), "title": title, "rounds": {}}
        write_project(remembered, state)
        made = f"created project {state['project']} ({title!r}), remembered in {remembered}; "
    number = state["project"]
    added_storages = add_storages(client, number, folders, root)
    present = {task["data"].get("item_id") for task in client.tasks(number)}
    new = [task for task in tasks if task["data"]["item_id"] not in present]
    if new:
        client.call("POST", f"/api/projects/{number}/import", new)
    rounds = state.setdefault("rounds", {})
    rounds[round_name] = sorted(set(rounds.get(round_name, [])) | {task["data"]["item_id"] for task in tasks})
    state["url"] = client.url
    write_project(remembered, state)
    sent = mark_sent(batch.ledger, round_name, "push")
    storages = f"{added_storages} local-files storage(s) added; " if added_storages else ""
    there = f", {len(tasks) - len(new)} there already" if len(new) < len(tasks) else ""
    print(f"push {round_name}: {made}{storages}{len(new)} tasks added to project {number}{there}{batch.left_out}; images as "
          f"{shown}; label them at {client.url}/projects/{number}/data, then al pull{sent}")


def run_pull(params: Params, url: str | None, key: str | None) -> None:
    """Store the annotations of the campaign's Label Studio project (see the module docstring)."""
    store = LabelStore.of(params.settings.labels, params.path)
    rounds = params.rounds()
    remembered = project_file(store)
    state = read_project(remembered)
    if state is None:
        raise InputError(f"no Label Studio project yet ({remembered} is missing): al push ROUND creates it")
    client = connect(url, key, state)
    number = state["project"]
    names = class_names()
    check_project(client, number, names)
    export = client.call("GET", f"/api/projects/{number}/export?exportType=JSON&download_all_tasks=true", raw=True)
    try:
        data = json.loads(export)
    except json.JSONDecodeError:
        raise InputError(f"Label Studio at {client.url} sent project {number}'s export as something that is not JSON") from None
    table = PoolTable.load()
    where = f"Label Studio project {number} at {client.url}"
    labeled_before = store.labeled_ids()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"project-{number}.json"
        path.write_bytes(export)
        parsed = parse_export(path, names, table.ids("pool"), table.paths("pool"), dataset_root(params.settings.data.root),
                              source=f"{client.url}/projects/{number}", name=where)
    tasks_of = {}
    for task in data:
        item = (task.get("data") or {}).get("item_id")
        tasks_of.setdefault(item, []).append(task)
    labeled = labeled_before | set(parsed.rows["id"].to_list()) | set(known_labels(table)["id"].to_list())
    for round_name, items in state["rounds"].items():
        gone = [item for item in items if item not in tasks_of and item not in labeled]
        if gone:
            shown = ", ".join(map(str, gone[:5])) + (", ..." if len(gone) > 5 else "")
            raise InputError(f"{where} has no task for {len(gone)} unlabeled items of round {round_name} (ids {shown}; "
                             f"deleted in Label Studio?); nothing stored: al push {round_name} adds them again")
    line = store_parsed(store, rounds, table, parsed, f"pull project {number}")
    print(line + "".join(f"; {note}" for note in round_status(state["rounds"], tasks_of)))


def round_status(rounds: dict[str, list[int]], tasks_of: dict) -> list[str]:
    """Per pushed round, its tasks in the project: labeled (an answer), skipped (only cancelled) or open."""
    notes = []
    for round_name, items in rounds.items():
        counts = {"labeled": 0, "skipped": 0, "open": 0}
        for item in items:
            annotations = [a for task in tasks_of.get(item, []) for a in task.get("annotations") or []]
            if any(not a.get("was_cancelled") and a.get("result") for a in annotations):
                counts["labeled"] += 1
            elif annotations:
                counts["skipped"] += 1
            else:
                counts["open"] += 1
        notes.append(f"{round_name}: {len(items)} tasks, {counts['labeled']} labeled, {counts['skipped']} skipped, "
                     f"{counts['open']} open")
    return notes

