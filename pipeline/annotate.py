"""`al export` and `al import`: the way out to annotators and back. Commands around the pipeline,
not DVC stages: the store they write is user data that the ``labels@<round>`` stages read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from al_core.annotations import UNUSABLE, append_to_store, parse_export, read_store, resolve
from al_core.artifacts import atomic_path, read_json
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
from pipeline.label_store import annotated_labels, known_labels, store_file
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
    if prefix:
        return prefix.rstrip("/") + "/" + os.path.relpath(path, document_root).replace(os.sep, "/")
    return LOCAL_FILES_PREFIX + os.path.relpath(path, document_root).replace(os.sep, "/")


def run_export(params: Params, round_name: str, export_format: str, out: Path, document_root: Path | None) -> None:
    """Write the round's batch for annotators: Label Studio tasks (tasks.json, with the model's
    prediction and the sampler's score) + its labeling config (config.xml), or a CSV (id, path,
    predicted, score, rank). Items the store already labels are left out."""
    if export_format not in EXPORT_FORMATS:
        raise InputError(f"--format must be one of {EXPORT_FORMATS}, got {export_format!r}")
    table = PoolTable.load()
    names = class_names()
    queried = load_queried(round_name)
    done = set(annotated_labels(params)["id"].to_list()) if store_file(params).exists() else set()
    done |= set(known_labels(table)["id"].to_list())
    batch = queried.filter(~pl.col("id").is_in(list(done)))
    ids = batch["id"].to_numpy()
    paths = table.paths("pool")
    if paths is None:
        raise InputError("this dataset's images are not files (fashion_mnist, cifar10 in memory): annotators need "
                         "image files; use data.dataset imagefolder or manifest (or features with a path column)")
    positions = pool_positions(table.ids("pool"), ids, round_dir(round_name) / "queried.parquet")
    predicted = _predictions(table, round_name, positions)
    predicted_names = [None] * len(ids) if predicted is None else [names[c] for c in predicted]
    batch_paths = paths[positions]
    out.mkdir(parents=True, exist_ok=True)
    if export_format == "csv":
        frame = pl.DataFrame({"id": ids, "path": list(batch_paths), "predicted": predicted_names,
                              "score": batch["score"], "rank": batch["rank"]},
                             schema={"id": pl.Int64, "path": pl.String, "predicted": pl.String, "score": pl.Float64, "rank": pl.Int64})
        target = out / f"{round_name}.csv"
        with atomic_path(target, suffix=".csv") as tmp:
            frame.write_csv(tmp)
        print(f"export {round_name}: {len(ids)} items to {target} ({len(done & set(queried['id'].to_list()))} already labeled, left out)")
        return
    root = Path(document_root or params.get("data.root", str)).resolve()
    prefix = params.get("labels.image_url", str, "")
    tasks = []
    for index, item in enumerate(ids):
        score = float(batch["score"][index])
        score = score if np.isfinite(score) else None  # random picks (s0) have no score; JSON has no NaN
        task = {"data": {"image": image_url(str(batch_paths[index]), prefix, root), "item_id": int(item),
                         "path": str(batch_paths[index]), "round": round_name, "rank": int(batch["rank"][index]),
                         "score": score}}
        if predicted_names[index] is not None:
            task["predictions"] = [{"model_version": f"{batch['sampler'][index]}@{round_name}", "score": score,
                                    "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                                "value": {"choices": [predicted_names[index]]}}]}]
        tasks.append(task)
    with atomic_path(out / f"{round_name}.tasks.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(tasks, indent=1, allow_nan=False) + "\n")
    with atomic_path(out / "config.xml", suffix=".xml") as tmp:
        tmp.write_text(labeling_config(names))
    print(f"export {round_name}: {len(tasks)} Label Studio tasks to {out / f'{round_name}.tasks.json'}, labeling config "
          f"{out / 'config.xml'}; images as {'URLs under ' + prefix if prefix else 'local files under ' + str(root)}")


def run_import(params: Params, file: Path) -> None:
    """Merge an export into the annotation store (all rows or none; the same file twice: no-op)
    and report what it held: new annotations, cancelled ones, items never queried, disagreements."""
    table = PoolTable.load()
    store = store_file(params)
    parsed = parse_export(file, class_names(), table.ids("pool"), table.paths("pool"))
    added = append_to_store(store, parsed)
    if added == 0:
        print(f"import {file}: already in the store (or no labels in it); nothing changed")
        return
    queried = set()
    for queried_file in sorted(Path("runs").glob("*/queried.parquet")):
        queried |= set(load_queried(queried_file.parent.name)["id"].to_list())
    never = sorted(set(parsed.rows["id"].to_list()) - queried)
    rule = params.get("labels.conflicts", str, "latest")
    # Under "refuse", the labels stage stops on a disagreement; the import itself only reports it.
    labels, disagreements = resolve(read_store(store), "latest" if rule == "refuse" else rule)
    if disagreements.height:
        DISAGREEMENTS.parent.mkdir(parents=True, exist_ok=True)
        disagreements.with_columns(pl.col("labels").list.join("|")).write_csv(DISAGREEMENTS)
    print(f"import {file} ({parsed.format}): {added} annotations of {parsed.rows['id'].n_unique()} items added to {store}"
          f"{f'; {parsed.cancelled} cancelled or empty, not labels' if parsed.cancelled else ''}"
          f"{f'; {len(never)} items never queried (kept: used if a later round queries them)' if never else ''}"
          f"{f'; annotators disagree on {disagreements.height} items ({DISAGREEMENTS})' if disagreements.height else ''}; "
          f"{labels.height} items labeled in all")
