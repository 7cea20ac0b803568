"""`al export` and `al import`: the way out to annotators and back. Commands around the pipeline,
not DVC stages: the store they write is user data that the ``labels@<round>`` stages read.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from al_core.annotations import UNUSABLE, ParsedExport, append_to_store, parse_export
from al_core.artifacts import TEMP_PREFIX, atomic_path, read_json
from al_core.errors import InputError
from al_core.linear import linear_logits
from pipeline.artifacts import (
    PREPARE_DIR,
    PoolTable,
    load_head,
    load_queried,
    pool_positions,
    round_dir,
    round_features,
)
from pipeline.label_store import LabelStore, known_labels
from pipeline.ledger import check_unchanged, record_sent, sent_rounds
from pipeline.params import Params

EXPORT_FORMATS = ("label-studio", "csv")
LOCAL_FILES_PREFIX = "/data/local-files/?d="
DISAGREEMENTS = Path("reports/disagreements.csv")


def class_names() -> tuple[str, ...]:
    return tuple(read_json(PREPARE_DIR / "meta.json")["class_names"])


def labeling_config(names: tuple[str, ...]) -> str:
    """Label Studio's labeling interface: the image and one single choice among the classes."""
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in (*names, UNUSABLE))
    return ('<View>\n  <Image name="image" value="$image"/>\n'
            '  <Choices name="label" toName="image" choice="single" showInline="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def _predictions(table: PoolTable, round_name: str, positions: np.ndarray) -> np.ndarray | None:
    """Predicted class of each queried item (``positions`` in the pool split) by the head that
    selected it (None for s0)."""
    if not (round_dir(round_name) / "head.npz").exists():
        return None
    head = load_head(round_name)
    rows = table.split_range("pool").start + positions
    order = np.argsort(rows)
    predicted = np.empty(positions.shape[0], dtype=np.int64)
    predicted[order] = np.argmax(linear_logits(round_features(round_name)[rows[order]], head["weight"], head["bias"]), axis=1)
    return predicted


def image_url(path: str, prefix: str, document_root: Path) -> str:
    """What Label Studio shows: an item's own URL (``https://``, ``s3://``, ``gs://``...) as it is;
    a file under ``labels.image_url`` when set, else served by Label Studio's local-files storage.
    The file's path below ``document_root`` is percent-encoded (``#``, ``&``, ``%``, spaces); a
    file outside ``document_root`` is an error that says how to fix it (the server refuses ``..``)."""
    if "://" in path:
        return path
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(document_root)).replace(os.sep, "/")
    if relative == ".." or relative.startswith("../"):
        where = "labels.image_url serves" if prefix else "Label Studio serves local files from"
        raise InputError(f"image {path} is outside {document_root}, the folder {where}; pass --document-root a folder "
                         "that holds every image (the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, e.g. the dataset's "
                         "parent folder) and start Label Studio with that same root")
    encoded = urllib.parse.quote(relative, safe="/")
    return (prefix.rstrip("/") + "/" + encoded) if prefix else LOCAL_FILES_PREFIX + encoded


def batch_file(out: Path, round_name: str, extension: str) -> Path:
    """``out/<round><extension>``, or the first free ``out/<round>-<k><extension>``: an earlier
    batch file (perhaps imported into Label Studio already) is never overwritten."""
    target = out / f"{round_name}{extension}"
    number = 2
    while target.exists():
        target = out / f"{round_name}-{number}{extension}"
        number += 1
    return target


@dataclass(frozen=True)
class RoundBatch:
    """A round's items still without a label, as annotators get them: ids, score and rank (the
    queried table's rows), file paths, the head's guess, and what was left out and why."""

    round_name: str
    rows: pl.DataFrame  # queried.parquet's rows of the items to label
    paths: np.ndarray
    predicted: list[str | None]
    left_out: str  # "; of N queried, left out: ..." or ""
    all_labeled: str  # when rows is empty: "all N queried items are labeled (...)"
    ledger: Path | None


def round_batch(store: LabelStore, round_name: str) -> RoundBatch:
    """The part of ROUND's batch that still needs labels (items labeled in the store or by the
    dataset are left out); in a campaign, an error when the round was sent and its selection has
    changed since. Reads the pool table, the store and the round's head (for the guess)."""
    table = PoolTable.load()
    names = class_names()
    queried = load_queried(round_name)
    annotated = store.labeled_ids()
    given = set(known_labels(table)["id"].to_list())
    queried_ids = set(queried["id"].to_list())
    batch = queried.filter(~pl.col("id").is_in(list(annotated | given)))
    ids = batch["id"].to_numpy()
    paths = table.paths("pool")
    if paths is None:
        raise InputError("this dataset's images are not files (fashion_mnist, cifar10 in memory): annotators need "
                         "image files; use data.dataset imagefolder or manifest (or features with a path column)")
    ledger = store.ledger
    if ledger is not None:
        check_unchanged(ledger, round_name)  # before anything is written
    all_labeled = (f"all {queried.height} queried items are labeled ({len(queried_ids & annotated)} by "
               f"annotators, {len(queried_ids & given - annotated)} by the dataset)")
    left_out = []
    if queried_ids & annotated:
        left_out.append(f"{len(queried_ids & annotated)} labeled in the store already")
    if queried_ids & given - annotated:
        left_out.append(f"{len(queried_ids & given - annotated)} labeled by the dataset (seed set)")
    left = f"; of {queried.height} queried, left out: {', '.join(left_out)}" if left_out else ""
    if not ids.size:
        return RoundBatch(round_name, batch, np.array([], dtype=object), [], left, all_labeled, ledger)
    positions = pool_positions(table.ids("pool"), ids, round_dir(round_name) / "queried.parquet")
    predicted = _predictions(table, round_name, positions)
    predicted_names = [None] * len(ids) if predicted is None else [names[c] for c in predicted]
    return RoundBatch(round_name, batch, paths[positions], predicted_names, left, all_labeled, ledger)


def studio_tasks(batch: RoundBatch, prefix: str, root: Path) -> tuple[list[dict], str]:
    """Label Studio tasks for the batch (the image's URL, item_id, path, round, rank, score; the
    head's guess as a prediction) and how the images are shown; ``prefix``: ``labels.image_url``,
    ``root``: `served_root`."""
    tasks = []
    for index, item in enumerate(batch.rows["id"].to_list()):
        score = float(batch.rows["score"][index])
        score = score if np.isfinite(score) else None  # random picks (s0) have no score; JSON has no NaN
        task = {"data": {"image": image_url(str(batch.paths[index]), prefix, root), "item_id": int(item),
                         "path": str(batch.paths[index]), "round": batch.round_name, "rank": int(batch.rows["rank"][index]),
                         "score": score}}
        if batch.predicted[index] is not None:
            task["predictions"] = [{"model_version": f"{batch.rows['sampler'][index]}@{batch.round_name}", "score": score,
                                    "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                                "value": {"choices": [batch.predicted[index]]}}]}]
        tasks.append(task)
    return tasks, ("URLs under " + prefix if prefix else "local files under " + str(root))


def run_export(params: Params, round_name: str, export_format: str, out: Path, document_root: Path | None) -> None:
    """Write the round's batch for annotators: Label Studio tasks (tasks.json, with the model's
    prediction and the sampler's score) + its labeling config (config.xml), or a CSV (id, path,
    predicted, score, rank). Items labeled already (the store, or the dataset's own labels) are
    left out, and the message says how many and why; an earlier batch file is never overwritten."""
    if export_format not in EXPORT_FORMATS:
        raise InputError(f"--format must be one of {EXPORT_FORMATS}, got {export_format!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; it names the folder the batch is written into (e.g. --out annotate)")
    settings = params.settings
    batch = round_batch(LabelStore.of(settings.labels, params.path), round_name)
    if not batch.rows.height:
        print(f"export {round_name}: nothing to write, {batch.all_labeled}")
        return
    out.mkdir(parents=True, exist_ok=True)
    if export_format == "csv":
        frame = pl.DataFrame({"id": batch.rows["id"], "path": list(batch.paths), "predicted": batch.predicted,
                              "score": batch.rows["score"], "rank": batch.rows["rank"]},
                             schema={"id": pl.Int64, "path": pl.String, "predicted": pl.String, "score": pl.Float64, "rank": pl.Int64})
        target = batch_file(out, round_name, ".csv")
        with atomic_path(target, suffix=".csv") as tmp:
            frame.write_csv(tmp)
        sent = mark_sent(batch.ledger, round_name)
        print(f"export {round_name}: {frame.height} items to {target}{batch.left_out}{sent}")
        return
    tasks, shown = studio_tasks(batch, settings.labels.image_url, served_root(document_root, settings.data.root))
    target = batch_file(out, round_name, ".tasks.json")
    with atomic_path(target, suffix=".json") as tmp:
        tmp.write_text(json.dumps(tasks, indent=1, allow_nan=False) + "\n")
    with atomic_path(out / "config.xml", suffix=".xml") as tmp:
        tmp.write_text(labeling_config(class_names()))
    sent = mark_sent(batch.ledger, round_name)
    print(f"export {round_name}: {len(tasks)} Label Studio tasks to {target}{batch.left_out}; labeling config "
          f"{out / 'config.xml'}; images as {shown}{sent}")


def mark_sent(ledger: Path | None, round_name: str, how: str = "export") -> str:
    """Record the round as sent in a campaign's ledger (None: a simulation), once its batch file is
    written (or its tasks pushed); the message's tail."""
    if ledger is None or not record_sent(ledger, round_name, how):
        return ""  # a simulation, or sent before (said then)
    return f"; {round_name} is sent: its batch stays as it is ({ledger})"


def served_root(document_root: Path | None, data_root: str) -> Path:
    """The folder Label Studio serves local files from: ``--document-root``, else ``data.root``'s folder."""
    return Path(document_root or dataset_root(data_root)).resolve()


def dataset_root(data_root: str) -> Path:
    """The folder relative image paths are taken from: ``data.root``, or the manifest file's folder."""
    root = Path(data_root)
    return root.parent if root.is_file() else root


def run_import(params: Params, file: Path) -> None:
    """Merge an export into the annotation store (all rows or none; annotations stored already are
    not stored again; concurrent imports take turns) and report what it held: new and changed
    annotations, repeats, items still without a label (skipped or cancelled, or left out of the
    file) per round, items never queried, disagreements. Rounds whose items now have labels are
    recorded as sent (`pipeline.ledger`); reports/disagreements.csv is rewritten."""
    if not file.is_file():
        raise InputError(f"{file} does not exist (expected a Label Studio JSON/JSON_MIN/CSV export or a CSV of id,label)")
    table = PoolTable.load()
    parsed = parse_export(file, class_names(), table.ids("pool"), table.paths("pool"), dataset_root(params.settings.data.root))
    print(store_parsed(LabelStore.of(params.settings.labels, params.path), params.rounds(), table, parsed,
                       f"import {file} ({parsed.format})"))


def store_parsed(label_store: LabelStore, rounds: list[str], table: PoolTable, parsed: ParsedExport, what: str) -> str:
    """Append parsed annotations to the store (see `run_import`) and say what happened,
    ``what`` first: the line ``al import`` and ``al pull`` print; ``rounds``: `Params.rounds`."""
    store = label_store.file
    counts = append_to_store(store, parsed)
    ignore_temporaries(store)
    if not label_store.campaign:
        warnings.warn(f"{label_store.origin}: labels.source is oracle, so no stage reads the annotation store {store}; set "
                      "labels.source: annotations to train on what annotators give")
    rule = label_store.conflicts
    labels, disagreements = label_store.reported()
    write_disagreements(disagreements)
    labeled = set(labels["id"].to_list()) | set(known_labels(table)["id"].to_list())
    batches = round_batches(rounds)
    ledger = label_store.ledger
    newly_sent = record_labeled_rounds(ledger, batches, labeled)
    items = set(parsed.rows["id"].to_list())
    touched = items | set(parsed.cancelled_items)
    still_open = [item for item in parsed.cancelled_items if item not in labeled]
    skipped = sorted(set(still_open))
    notes = []
    if still_open:
        notes.append(f"{len(still_open)} cancelled or empty, not labels: {len(skipped)} items skipped or cancelled without a "
                     "label (finish them in the same Label Studio project, export it again and import it; or see labels.awaiting)")
    queried = set().union(*batches.values())
    never = sorted(items - queried)
    if never:
        notes.append(f"{len(never)} items never queried (kept: used if a later round queries them)")
    here = disagreements.filter(pl.col("id").is_in(list(items))).height
    if here:
        notes.append(f"annotators disagree on {here} of these items ({disagreements.height} in the store, {DISAGREEMENTS}: "
                     f"the labels and the one chosen by {rule})")
    notes += [f"round {name} sent ({ledger})" for name in newly_sent]
    notes += open_items(batches, touched, labeled)
    tail = "".join(f"; {note}" for note in notes)
    if counts.added == 0:
        return f"{what}: nothing new, {counts.repeated} annotations stored already{tail}"
    changed = f", {counts.changed} changed (edited in Label Studio)" if counts.changed else ""
    repeated = f", {counts.repeated} stored already" if counts.repeated else ""
    return (f"{what}: {counts.new} new annotations{changed}{repeated} of {len(items)} items, "
            f"to {store}{tail}; {labels.height} items labeled in all")


def ignore_temporaries(store: Path) -> None:
    """A .gitignore in the store's folder for the temporary files a killed writer leaves."""
    folder, store_name = store.parent, store.name
    ignore = folder / ".gitignore"
    if folder.is_dir() and not ignore.exists():
        with atomic_path(ignore) as tmp:
            tmp.write_text("# temporary files of an interrupted `al import` or `al export`\n"
                           f"{TEMP_PREFIX}{store_name}.*\n{TEMP_PREFIX}sent.parquet.*\n")


def write_disagreements(disagreements: pl.DataFrame) -> None:
    """reports/disagreements.csv: the items annotators disagree on now (header only when none)."""
    with atomic_path(DISAGREEMENTS, suffix=".csv") as tmp:
        disagreements.with_columns(pl.col("labels").list.join("|")).write_csv(tmp)


def round_batches(rounds: list[str]) -> dict[str, list[int]]:
    """``round -> queried ids`` of each of ``rounds`` whose batch exists."""
    batches = {}
    for name in rounds:
        if (round_dir(name) / "queried.parquet").exists():
            batches[name] = load_queried(name)["id"].to_list()
    return batches


def record_labeled_rounds(ledger: Path | None, batches: dict[str, list[int]], labeled: set[int]) -> list[str]:
    """In a campaign (``ledger``: `LabelStore.ledger`), record as sent every round one of whose items
    has a label; the rounds new to the ledger."""
    if ledger is None:
        return []
    sent = sent_rounds(ledger)
    return [name for name, ids in batches.items()
            if name not in sent and labeled.intersection(ids) and record_sent(ledger, name, "import")]


def open_items(batches: dict[str, list[int]], touched: set[int], labeled: set[int], shown: int = 5) -> list[str]:
    """Per round that this file's items belong to: its items still without a label, named."""
    notes = []
    for name, ids in batches.items():
        if not touched.intersection(ids):
            continue
        missing = [item for item in ids if item not in labeled]
        if missing:
            listed = ", ".join(map(str, missing[:shown])) + (", ..." if len(missing) > shown else "")
            notes.append(f"round {name}: {len(missing)} of {len(ids)} items still without a label (ids {listed})")
    return notes
