"""Labels from annotators: reading a tool's export, the append-only store, one label per item.

The store is a history: every annotation ever imported, one row each (item id, label, the
annotator and time where the export has them, the file it came from), never rewritten, only
appended to. Which label an item has is decided when it is read, by a documented rule
(`resolve`), so a reviewer's correction or a second annotator never erases the first.

Each annotation is stored once, keyed by its identity (``annotation``): Label Studio's
annotation id with its task and item (ids number annotations within one server only), or for a
row without one (a plain CSV) its item, label, annotator and time; a row without a time either is
an event of its file (its item, label and annotator in that file, by place and bytes), so a later
file that repeats it is a new annotation, while importing one file twice stores nothing twice. An
export that repeats stored annotations adds only the new ones; an annotation edited in Label
Studio (same id, later ``updated_at``) is stored as a new version that replaces the earlier one
when labels are resolved. Every row also records when it was imported (``imported_at``): a row
without a time of its own (a plain CSV correction) is ordered by that time, so a reviewer's
later CSV wins under ``latest``.

Formats read by `parse_export`, recognised by content whatever the file's name (items are
matched by ``item_id``, which ``al export`` puts in every task's data, else by ``path``, absolute
or relative to the dataset's root; a row giving both must name the same item):

- Label Studio JSON: a list of tasks, each with ``data`` and ``annotations``; a ``choices``
  result gives the label; an annotation with ``was_cancelled: true`` (skipped) is not a label.
- Label Studio JSON_MIN: a list of flat rows, one per annotation (``label``, ``annotator``,
  ``created_at``, ``updated_at``, ``annotation_id`` and the task's data fields).
- Label Studio CSV: the same rows as CSV.
- Plain CSV: ``id`` or ``path``, and ``label`` (two different labels for one item are refused).

Labels are class names; `UNUSABLE` is the annotators' "none of these / unusable" choice,
stored as label -1: excluded from training, and the item is never queried again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from al_core.errors import InputError

UNUSABLE = "(unusable)"
UNUSABLE_LABEL = -1
CONFLICT_RULES = ("latest", "majority", "refuse")
STORE_SCHEMA = {"id": pl.Int64, "label": pl.Int64, "label_name": pl.String, "annotator": pl.String, "time": pl.String,
                "source": pl.String, "source_sha256": pl.String, "source_row": pl.Int64, "annotation": pl.String,
                "imported_at": pl.String, "lead_time": pl.Float64}
STORE_SCHEMA_V1 = dict(list(STORE_SCHEMA.items())[:8])  # stores written before annotation identities
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # every stored time, in UTC: string order is time order
SHOWN_BAD_ROWS = 5


@dataclass(frozen=True)
class ParsedExport:
    """What one export file holds: ``rows`` (the store's columns, one per annotation) and counts."""

    rows: pl.DataFrame
    format: str
    cancelled: int  # skipped / cancelled annotations, and rows without a choice: not labels
    skipped_items: tuple[int, ...] = ()  # items whose every annotation in the file was skipped
    cancelled_items: tuple[int, ...] = ()  # the item of each cancelled annotation (repeats kept)


@dataclass(frozen=True)
class ImportCounts:
    """What `append_to_store` did with an export's annotations."""

    new: int  # annotations never stored before
    changed: int  # new versions of stored annotations (edited in Label Studio)
    repeated: int  # annotations stored already (the same version): not stored again

    @property
    def added(self) -> int:
        return self.new + self.changed


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


def normalise_time(value) -> str | None:
    """An ISO 8601 time as stored: UTC, microseconds, ``Z`` (a time without zone is taken as UTC).
    Raises ValueError for text that is not such a time."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def _choice(value) -> str | None:
    """The class name in a Label Studio choice value: a string, a list, or {"choices": [...]}."""
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, list):
        return str(value[0]) if len(value) == 1 else (None if not value else json.dumps(value))
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    text = str(value)
    if text.startswith("{") or text.startswith("["):  # CSV exports hold JSON for some fields
        try:
            return _choice(json.loads(text))
        except json.JSONDecodeError:
            return text
    return text


def _annotator(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("email") or value.get("id")
    return None if value is None or value == "" else str(value)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _studio_key(annotation_id, task_id) -> str | None:
    """``label-studio:<annotation id>:<task id>`` (the item is added once it is known): an id
    numbers annotations within one Label Studio server only, so two servers (or a reinstalled
    one) reuse ids; with the task and the item in the key, such a reuse never passes for an edit
    of another item's annotation."""
    number = _number(annotation_id)
    task = _number(task_id)
    return None if number is None else f"label-studio:{int(number)}:{'' if task is None else int(task)}"


def _is_json(path: Path) -> bool:
    """Whether a file holds JSON (its first non-blank byte opens a list or an object), whatever its name."""
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"[", b"{")


def _records(path: Path) -> tuple[str, list[dict]]:
    """(format, flat records) of an export file; each record: item_id, path, choice, annotator,
    time, cancelled, key (the annotation's identity where the export gives one), task, lead_time."""
    if _is_json(path):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte order mark is not content
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path} is not valid JSON ({error}); expected a Label Studio JSON or JSON_MIN export") from None
        if not isinstance(data, list) or not all(isinstance(task, dict) for task in data):
            raise InputError(f"{path}: expected a list of tasks (Label Studio JSON or JSON_MIN export)")
        if any("annotations" in task for task in data):
            records = []
            for number, task in enumerate(data):
                fields = task.get("data") or {}
                for annotation in task.get("annotations") or []:
                    choices = [r for r in annotation.get("result") or [] if r.get("type") == "choices"]
                    records.append({
                        "item_id": fields.get("item_id"), "path": fields.get("path"), "task": task.get("id", f"#{number + 1}"),
                        "choice": _choice(choices[0].get("value")) if choices else None,
                        "annotator": _annotator(annotation.get("completed_by")),
                        "time": annotation.get("updated_at") or annotation.get("created_at"),
                        "cancelled": bool(annotation.get("was_cancelled")),
                        "key": _studio_key(annotation.get("id"), task.get("id")), "lead_time": _number(annotation.get("lead_time")),
                    })
            return "label-studio-json", records
        if data and all(isinstance(task.get("data"), dict) for task in data) and not any("label" in task for task in data):
            raise InputError(f"{path} holds tasks to label (as al export writes them), not annotations; import the file "
                             "Label Studio exports after labeling (Export: JSON, JSON_MIN or CSV)")
        return "label-studio-json-min", [_flat_record(row) for row in data]
    try:
        frame = pl.read_csv(path, infer_schema_length=0)  # every column as text: ids stay exact
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is neither JSON nor a readable CSV file ({str(error).splitlines()[0][:160]})") from None
    if "label" not in frame.columns:
        raise InputError(f"{path} has no 'label' column; columns are {frame.columns}")
    studio = {"annotation_id", "created_at", "updated_at", "item_id"} & set(frame.columns)
    if studio:
        return "label-studio-csv", [_flat_record(row) for row in frame.iter_rows(named=True)]
    if "id" not in frame.columns and "path" not in frame.columns:
        raise InputError(f"{path}: a plain CSV needs an 'id' or a 'path' column beside 'label'; columns are {frame.columns}")
    return "csv", [{"item_id": row.get("id"), "path": row.get("path") or None, "choice": _choice(row["label"]),
                    "annotator": _annotator(row.get("annotator")), "time": row.get("time") or None, "cancelled": False,
                    "key": None, "task": None, "lead_time": None}
                   for row in frame.iter_rows(named=True)]


def _flat_record(row: dict) -> dict:
    return {"item_id": row.get("item_id"), "path": row.get("path") or None, "choice": _choice(row.get("label")),
            "annotator": _annotator(row.get("annotator")), "time": row.get("updated_at") or row.get("created_at") or None,
            "cancelled": str(row.get("was_cancelled", "")).lower() == "true", "key": _studio_key(row.get("annotation_id"), row.get("id")),
            "task": row.get("id"), "lead_time": _number(row.get("lead_time"))}


def _item_key(value) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


class PathIndex:
    """Pool items by image path. A pool path is matched as stored or made absolute (a relative one
    is relative to the project folder, as the pool table stores it); a path in an export as given,
    made absolute, or taken relative to ``root`` (the dataset's root). O(N) to build."""

    def __init__(self, ids: np.ndarray, paths: np.ndarray | None, root: str | Path | None = None):
        self.root = None if root is None else os.path.abspath(root)
        self.by_path: dict[str, int] = {}
        self.path_of: dict[int, str] = {}
        if paths is None:
            return
        for path, item in zip(paths, np.asarray(ids).tolist()):
            self.by_path.setdefault(str(path), item)
            if "://" not in str(path):
                self.by_path.setdefault(os.path.abspath(str(path)), item)
            self.path_of[item] = str(path)

    def find(self, path: str) -> int | None:
        if path in self.by_path or "://" in path:
            return self.by_path.get(path)
        candidates = [os.path.abspath(path)]
        if self.root is not None and not os.path.isabs(path):
            candidates.append(os.path.normpath(os.path.join(self.root, path)))
        return next((self.by_path[c] for c in candidates if c in self.by_path), None)


def _row_identity(item: int, label_name: str, annotator: str | None, time: str | None) -> str:
    """The identity of an annotation without an id: what it says about which item, by whom, when."""
    text = json.dumps([item, label_name, annotator, time])
    return "row:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def parse_export(path: str | Path, class_names: tuple[str, ...], ids: np.ndarray, paths: np.ndarray | None,
                 root: str | Path | None = None, source: str | None = None, name: str | None = None) -> ParsedExport:
    """Read an export and check every row: its item (``item_id`` among ``ids``, or ``path``
    among ``paths``, absolute or relative to ``root``; both given must agree), its class (one of
    ``class_names`` or `UNUSABLE`) and its time (ISO 8601). Any bad row refuses the whole
    file, naming the first ones. Cancelled annotations and rows without a choice are counted, not
    returned. ``source``: what the store records as the rows' origin (default: the file's absolute
    path); ``name``: how errors name the export (default: the path). O(rows + N) time and memory.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected a Label Studio JSON/JSON_MIN/CSV export or a CSV of id,label)")
    export_format, records = _records(path)
    known_ids = set(np.asarray(ids).tolist())
    index = PathIndex(ids, paths, root)
    classes = {name: position for position, name in enumerate(class_names)}
    classes[UNUSABLE] = UNUSABLE_LABEL
    rows, bad, cancelled, answered, skipped = [], [], [], set(), set()
    source = source or str(path.resolve())
    digest = file_digest(path)
    for position, record in enumerate(records):
        where = f"row {position + 1}" + (f" (task {record['task']})" if record.get("task") is not None else "")
        item = _item_key(record["item_id"])
        if record["item_id"] not in (None, "") and item is None:
            bad.append(f"{where}: item_id {record['item_id']!r} is not an integer id")
            continue
        if record["path"] is not None and not index.by_path:
            bad.append(f"{where}: the row gives a path, but the pool's items have no files (images kept in memory); "
                       "match by id only")
            continue
        if record["path"] is not None:
            by_path = index.find(str(record["path"]))
            if item is None:
                if by_path is None:
                    bad.append(f"{where}: path {record['path']!r} is not in the pool")
                    continue
                item = by_path
            elif by_path != item and item in known_ids:
                bad.append(f"{where}: id {item} is {index.path_of.get(item)!r} in the pool, but the row's path is "
                           f"{record['path']!r}")
                continue
        if item is None:
            bad.append(f"{where}: neither item_id nor path (every task al export writes has both in its data)")
            continue
        if item not in known_ids:
            bad.append(f"{where}: item {record['item_id']!r} is not in the pool")
            continue
        if record["cancelled"] or record["choice"] is None:
            cancelled.append(item)
            skipped.add(item)
            continue
        if record["choice"] not in classes:
            bad.append(f"{where}: class {record['choice']!r} is not one of the {len(class_names)} classes (or {UNUSABLE!r})")
            continue
        try:
            time = normalise_time(record["time"])
        except ValueError:
            bad.append(f"{where}: time {record['time']!r} is not an ISO 8601 time (e.g. 2026-11-26T10:00:00Z)")
            continue
        answered.add(item)
        if record["key"]:
            key = f"{record['key']}:{item}"
        else:  # a row without a time is an event of its file: a later file repeating it is a new annotation
            key = _row_identity(item, record["choice"], record["annotator"], time or f"file:{source}:{digest}")
        rows.append({"id": item, "label": classes[record["choice"]], "label_name": record["choice"],
                     "annotator": record["annotator"], "time": time, "source": source, "source_sha256": "",
                     "source_row": position, "annotation": key, "imported_at": None, "lead_time": record["lead_time"]})
    frame = pl.DataFrame(rows, schema=STORE_SCHEMA)
    if export_format == "csv" and not bad:
        conflicting = frame.group_by("id").agg(pl.col("label").n_unique().alias("labels")).filter(pl.col("labels") > 1)
        bad += [f"item {item}: two different labels in one plain CSV" for item in sorted(conflicting["id"].to_list())]
    if bad:
        shown = "; ".join(bad[:SHOWN_BAD_ROWS])
        raise InputError(f"{name or path}: {len(bad)} bad row(s), nothing imported: {shown}. Fix them and import the file again")
    return ParsedExport(rows=frame.with_columns(pl.lit(digest).alias("source_sha256")), format=export_format,
                        cancelled=len(cancelled), skipped_items=tuple(sorted(skipped - answered)),
                        cancelled_items=tuple(cancelled))


def _stored_time(value: str | None) -> str | None:
    """A first-layout store's time in today's form (kept as it is when it does not parse)."""
    try:
        return normalise_time(value)
    except ValueError:
        return value


def _upgraded(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows of the first store layout (no annotation ids) in today's: times normalised, each row
    known by what it says (item, label, annotator, time), no import time or lead time."""
    times = [_stored_time(time) for time in frame["time"].to_list()]
    identities = [_row_identity(item, name, annotator, time)
                  for (item, name, annotator), time in zip(frame.select("id", "label_name", "annotator").iter_rows(), times)]
    return frame.with_columns(pl.Series("time", times, dtype=pl.String), pl.Series("annotation", identities, dtype=pl.String),
                              pl.lit(None, dtype=pl.String).alias("imported_at"),
                              pl.lit(None, dtype=pl.Float64).alias("lead_time")).select(list(STORE_SCHEMA))


def read_store(store: Path) -> pl.DataFrame:
    """Every annotation imported so far (empty when none), in import order. A store written
    before annotations had identities is read with each row its own annotation."""
    if store.exists() and not store.is_file():
        raise InputError(f"annotation store {store} is not a file; labels.store names the folder that holds labels.parquet")
    if not store.is_file():
        return pl.DataFrame(schema=STORE_SCHEMA)
    try:
        frame = pl.read_parquet(store)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(f"annotation store {store} is not readable ({error}); restore it from git or DVC") from None
    if dict(frame.schema) == STORE_SCHEMA_V1:
        frame = _upgraded(frame)
    if dict(frame.schema) != STORE_SCHEMA:
        raise InputError(f"annotation store {store} has columns {dict(frame.schema)}, expected {STORE_SCHEMA}")
    return frame


def append_to_store(store: Path, parsed: ParsedExport, imported_at: str | None = None) -> ImportCounts:
    """Append the annotations of ``parsed`` that the store lacks, atomically (temporary file +
    rename: a killed import leaves the store as it was before or after).

    An annotation already stored in the same version (identity and time), or saying exactly what a
    stored row says (item, label, annotator, time: how rows of the first store layout are known),
    is not stored again; a stored annotation with another time is a new version. Rows are stamped ``imported_at``
    (default: now, UTC). Writers take turns (`exclusive_lock` from the
    read to the rename; one that waits says so), so two imports at once both land whole. A full
    disk changes nothing and says so. O(store + rows) time and memory.
    """
    from al_core.artifacts import exclusive_lock

    with exclusive_lock(store, waiting=f"import: waiting for another writer of {store} to finish"):
        return _append_locked(store, parsed, imported_at)


def _append_locked(store: Path, parsed: ParsedExport, imported_at: str | None) -> ImportCounts:
    from al_core.artifacts import leftover_temporaries, write_user_table

    for leftover in leftover_temporaries(store):  # a killed import's partial file, never the store itself
        leftover.unlink()
    history = read_store(store)
    versions = set(zip(history["annotation"].to_list(), history["time"].fill_null("").to_list()))
    identities = set(history["annotation"].to_list())
    # A row of the very file (same place, same bytes) imported before is a repeat, whatever identity it got then.
    imported_rows = set(zip(history["source"].to_list(), history["source_sha256"].to_list(), history["source_row"].to_list()))
    rows = parsed.rows.unique(["annotation", "time"], keep="first", maintain_order=True)
    # A timed row the first store layout holds (no annotation id then) is known by what it says.
    said = [None if row[3] is None else _row_identity(*row)
            for row in rows.select("id", "label_name", "annotator", "time").iter_rows()]
    fresh = [(key, time or "") not in versions and text not in identities and origin not in imported_rows
             for key, time, text, origin in zip(rows["annotation"].to_list(), rows["time"].to_list(), said,
                                                rows.select("source", "source_sha256", "source_row").iter_rows())]
    rows = rows.filter(pl.Series(fresh, dtype=pl.Boolean))
    changed = sum(key in identities for key in rows["annotation"].to_list())
    counts = ImportCounts(new=rows.height - changed, changed=changed, repeated=parsed.rows.height - rows.height)
    if rows.height == 0:
        return counts
    rows = rows.with_columns(pl.lit(imported_at or utc_now(), dtype=pl.String).alias("imported_at"))
    merged = pl.concat([history, rows])
    write_user_table(store, merged, "the annotation store", "import the file again")
    return counts


def current_versions(history: pl.DataFrame) -> pl.DataFrame:
    """The store's rows less the superseded versions of edited annotations (each annotation's
    latest version by time, then import), with ``order`` (import order) and ``effective_time``
    (the annotation's time, else its import time) added. O(rows log rows)."""
    if "annotation" not in history.columns:  # a frame in the first store layout, not read by read_store
        history = _upgraded(history)
    ordered = history.with_row_index("order").with_columns(
        pl.coalesce("time", "imported_at").fill_null("").alias("effective_time"))
    return (ordered.sort(["effective_time", "order"]).group_by("annotation", maintain_order=True).last()
            .sort("order"))


def resolve(history: pl.DataFrame, rule: str = "latest") -> tuple[pl.DataFrame, pl.DataFrame]:
    """One label per item from the store's history, and the items annotators disagree on.

    Each annotation counts once, in its latest version (`current_versions`). ``latest``:
    the annotation with the latest time (``updated_at``, else ``created_at``; a row without a
    time: when it was imported), then the later import; ``majority``: the most frequent label,
    ties to the latest of the tied; ``refuse``: any disagreement is an error. Returns ``(labels:
    id, label, label_name, annotations; disagreements: id, labels, chosen)``. O(rows log rows).
    """
    if rule not in CONFLICT_RULES:
        raise InputError(f"labels.conflicts must be one of {CONFLICT_RULES}, got {rule!r}")
    ordered = current_versions(history).sort(["effective_time", "order"])
    disagreements = (ordered.group_by("id").agg(pl.col("label_name").unique().sort().alias("labels"))
                     .filter(pl.col("labels").list.len() > 1).sort("id"))
    if rule == "refuse" and disagreements.height:
        first = disagreements.row(0, named=True)
        raise InputError(f"annotators disagree on {disagreements.height} item(s), e.g. id {first['id']}: {first['labels']} "
                         "(labels.conflicts: refuse); settle them, or choose latest or majority")
    if rule == "majority":
        counts = ordered.group_by(["id", "label"]).agg(pl.len().alias("votes"), pl.col("effective_time").last(),
                                                       pl.col("order").last())
        chosen = counts.sort(["votes", "effective_time", "order"]).group_by("id").agg(pl.col("label").last())
    else:
        chosen = ordered.group_by("id").agg(pl.col("label").last())
    names = ordered.group_by("id").agg(pl.len().alias("annotations"))
    labels = (chosen.join(names, on="id").join(ordered.select("label", "label_name").unique("label"), on="label", how="left")
              .select("id", "label", "label_name", "annotations").sort("id"))
    disagreements = disagreements.join(labels.select("id", pl.col("label_name").alias("chosen")), on="id", how="left")
    return labels, disagreements
