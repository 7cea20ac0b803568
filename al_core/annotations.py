"""Labels from annotators: reading a tool's export, the append-only store, one label per item.

The store is a history: every annotation ever imported, one row each (item id, label, the
annotator and time where the export has them, the file it came from), never rewritten, only
appended to. Which label an item has is decided when it is read, by a documented rule
(:func:`resolve`), so a reviewer's correction or a second annotator never erases the first.

Formats read by :func:`parse_export` (items are matched by ``item_id``, which ``al export`` puts
in every task's data, else by ``path``):

- Label Studio JSON: a list of tasks, each with ``data`` and ``annotations``; a ``choices``
  result gives the label; an annotation with ``was_cancelled: true`` (skipped) is not a label.
- Label Studio JSON_MIN: a list of flat rows, one per annotation (``label``, ``annotator``,
  ``created_at``, ``updated_at``, ``annotation_id`` and the task's data fields).
- Label Studio CSV: the same rows as CSV.
- Plain CSV: ``id`` or ``path``, and ``label`` (two different labels for one item are refused).

Labels are class names; :data:`UNUSABLE` is the annotators' "none of these / unusable" choice,
stored as label -1: excluded from training, and the item is never queried again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from al_core.errors import InputError

UNUSABLE = "(unusable)"
UNUSABLE_LABEL = -1
CONFLICT_RULES = ("latest", "majority", "refuse")
STORE_SCHEMA = {"id": pl.Int64, "label": pl.Int64, "label_name": pl.String, "annotator": pl.String, "time": pl.String,
                "source": pl.String, "source_sha256": pl.String, "source_row": pl.Int64}
SHOWN_BAD_ROWS = 5


@dataclass(frozen=True)
class ParsedExport:
    """What one export file holds: ``rows`` (the store's columns, one per annotation) and counts."""

    rows: pl.DataFrame
    format: str
    cancelled: int  # skipped / cancelled annotations, and rows without a choice: not labels


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


def _records(path: Path) -> tuple[str, list[dict]]:
    """(format, flat records) of an export file; each record: key, choice, annotator, time, cancelled."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path} is not valid JSON ({error}); expected a Label Studio JSON or JSON_MIN export") from None
        if not isinstance(data, list) or not all(isinstance(task, dict) for task in data):
            raise InputError(f"{path}: expected a list of tasks (Label Studio JSON or JSON_MIN export)")
        if any("annotations" in task for task in data):
            records = []
            for task in data:
                fields = task.get("data") or {}
                for annotation in task.get("annotations") or []:
                    choices = [r for r in annotation.get("result") or [] if r.get("type") == "choices"]
                    records.append({
                        "item_id": fields.get("item_id"), "path": fields.get("path"),
                        "choice": _choice(choices[0].get("value")) if choices else None,
                        "annotator": _annotator(annotation.get("completed_by")),
                        "time": annotation.get("updated_at") or annotation.get("created_at"),
                        "cancelled": bool(annotation.get("was_cancelled")),
                    })
            return "label-studio-json", records
        return "label-studio-json-min", [_flat_record(row) for row in data]
    try:
        frame = pl.read_csv(path, infer_schema_length=0)  # every column as text: ids stay exact
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(f"{path} is not a readable CSV file ({str(error).splitlines()[0][:160]})") from None
    if "label" not in frame.columns:
        raise InputError(f"{path} has no 'label' column; columns are {frame.columns}")
    studio = {"annotation_id", "annotator", "created_at", "updated_at", "item_id"} & set(frame.columns)
    if studio:
        return "label-studio-csv", [_flat_record(row) for row in frame.iter_rows(named=True)]
    if "id" not in frame.columns and "path" not in frame.columns:
        raise InputError(f"{path}: a plain CSV needs an 'id' or a 'path' column beside 'label'; columns are {frame.columns}")
    return "csv", [{"item_id": row.get("id"), "path": row.get("path"), "choice": _choice(row["label"]),
                    "annotator": _annotator(row.get("annotator")), "time": row.get("time") or None, "cancelled": False}
                   for row in frame.iter_rows(named=True)]


def _flat_record(row: dict) -> dict:
    return {"item_id": row.get("item_id"), "path": row.get("path"), "choice": _choice(row.get("label")),
            "annotator": _annotator(row.get("annotator")), "time": row.get("updated_at") or row.get("created_at") or None,
            "cancelled": str(row.get("was_cancelled", "")).lower() == "true"}


def _item_key(value) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def parse_export(path: str | Path, class_names: tuple[str, ...], ids: np.ndarray, paths: np.ndarray | None) -> ParsedExport:
    """Read an export and check every row: its item (``item_id`` among ``ids``, or ``path``
    among ``paths``) and its class (one of ``class_names`` or :data:`UNUSABLE`). Any bad row
    refuses the whole file, naming the first ones. Cancelled annotations and rows without a
    choice are counted, not returned. O(rows + N) time and memory.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected a Label Studio JSON/JSON_MIN/CSV export or a CSV of id,label)")
    export_format, records = _records(path)
    known_ids = set(np.asarray(ids).tolist())
    by_path = {} if paths is None else {str(p): int(i) for p, i in zip(paths, ids)}
    classes = {name: index for index, name in enumerate(class_names)}
    classes[UNUSABLE] = UNUSABLE_LABEL
    rows, bad, cancelled = [], [], 0
    for position, record in enumerate(records):
        where = f"row {position + 1}"
        if record["cancelled"] or record["choice"] is None:
            cancelled += 1
            continue
        item = _item_key(record["item_id"])
        if item is None and record["path"] is not None:
            item = by_path.get(str(record["path"]))
            if item is None:
                bad.append(f"{where}: path {record['path']!r} is not in the pool")
                continue
        if item is None or item not in known_ids:
            bad.append(f"{where}: item {record['item_id']!r} is not in the pool")
            continue
        if record["choice"] not in classes:
            bad.append(f"{where}: class {record['choice']!r} is not one of the {len(class_names)} classes (or {UNUSABLE!r})")
            continue
        rows.append({"id": item, "label": classes[record["choice"]], "label_name": record["choice"],
                     "annotator": record["annotator"], "time": None if record["time"] is None else str(record["time"]),
                     "source": path.name, "source_sha256": "", "source_row": position})
    frame = pl.DataFrame(rows, schema=STORE_SCHEMA)
    if export_format == "csv" and not bad:
        conflicting = frame.group_by("id").agg(pl.col("label").n_unique().alias("labels")).filter(pl.col("labels") > 1)
        bad += [f"item {item}: two different labels in one plain CSV" for item in sorted(conflicting["id"].to_list())]
    if bad:
        shown = "; ".join(bad[:SHOWN_BAD_ROWS])
        raise InputError(f"{path}: {len(bad)} bad row(s), nothing imported: {shown}")
    return ParsedExport(rows=frame.with_columns(pl.lit(file_digest(path)).alias("source_sha256")), format=export_format,
                        cancelled=cancelled)


def read_store(store: Path) -> pl.DataFrame:
    """Every annotation imported so far (empty when none), in import order."""
    if not store.is_file():
        return pl.DataFrame(schema=STORE_SCHEMA)
    try:
        frame = pl.read_parquet(store)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(f"annotation store {store} is not readable ({error}); restore it from git or DVC") from None
    if dict(frame.schema) != STORE_SCHEMA:
        raise InputError(f"annotation store {store} has columns {dict(frame.schema)}, expected {STORE_SCHEMA}")
    return frame


def append_to_store(store: Path, parsed: ParsedExport) -> int:
    """Append ``parsed`` to the store atomically (temporary file + rename: a killed import leaves
    the store as it was before or after); returns the rows added, 0 when this very file (same
    SHA-256) was imported before."""
    from al_core.artifacts import atomic_path

    history = read_store(store)
    digest = parsed.rows["source_sha256"][0] if parsed.rows.height else None
    if digest is None or digest in set(history["source_sha256"].to_list()):
        return 0
    merged = pl.concat([history, parsed.rows])
    with atomic_path(store, suffix=".parquet") as tmp:
        merged.write_parquet(tmp, compression="zstd", statistics=False)
    return parsed.rows.height


def resolve(history: pl.DataFrame, rule: str = "latest") -> tuple[pl.DataFrame, pl.DataFrame]:
    """One label per item from the store's history, and the items annotators disagree on.

    ``latest``: the annotation with the latest time (``updated_at``, else ``created_at``), then
    the later import; ``majority``: the most frequent label, ties to the latest of the tied;
    ``refuse``: any disagreement is an error. Returns ``(labels: id, label, label_name,
    annotations; disagreements: id, labels)``. O(rows log rows).
    """
    if rule not in CONFLICT_RULES:
        raise InputError(f"labels.conflicts must be one of {CONFLICT_RULES}, got {rule!r}")
    ordered = history.with_row_index("order").with_columns(pl.col("time").fill_null(""))
    disagreements = (ordered.group_by("id").agg(pl.col("label_name").unique().sort().alias("labels"))
                     .filter(pl.col("labels").list.len() > 1).sort("id"))
    if rule == "refuse" and disagreements.height:
        first = disagreements.row(0, named=True)
        raise InputError(f"annotators disagree on {disagreements.height} item(s), e.g. id {first['id']}: {first['labels']} "
                         "(labels.conflicts: refuse); settle them, or choose latest or majority")
    ordered = ordered.sort(["time", "order"])
    if rule == "majority":
        counts = ordered.group_by(["id", "label"]).agg(pl.len().alias("votes"), pl.col("time").last(), pl.col("order").last())
        chosen = counts.sort(["votes", "time", "order"]).group_by("id").agg(pl.col("label").last())
    else:
        chosen = ordered.group_by("id").agg(pl.col("label").last())
    names = ordered.group_by("id").agg(pl.len().alias("annotations"))
    labels = chosen.join(names, on="id").join(ordered.select("label", "label_name").unique("label"), on="label", how="left")
    return labels.select("id", "label", "label_name", "annotations").sort("id"), disagreements
