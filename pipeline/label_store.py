"""Labels as the pipeline keeps them: the annotation store, a seed set's own labels, and each
round's ``labels.parquet`` (written by the ``labels`` stage, read by ``train`` and ``al export``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from al_core.errors import InputError
from pipeline.artifacts import PoolTable, load_queried, round_dir
from pipeline.params import Params

LABELS_COLUMNS = {"id": pl.Int64, "label": pl.Int64}


def store_file(params: Params) -> Path:
    """``labels.store``/labels.parquet; an error when ``labels.store`` names a file, not a folder."""
    folder = Path(params.get("labels.store", str, "data/annotations"))
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{params.path}: labels.store is {str(folder)!r}, a file; it names the folder that holds the "
                         "annotation store (labels.parquet), e.g. data/annotations")
    return folder / "labels.parquet"


def annotated_labels(params: Params) -> pl.DataFrame:
    """``id, label, label_name, annotations``: one label per annotated item (the store, resolved)."""
    from al_core.annotations import read_store, resolve

    labels, _ = resolve(read_store(store_file(params)), params.get("labels.conflicts", str, "latest"))
    return labels


def known_labels(table: PoolTable) -> pl.DataFrame:
    """``id, label`` of the pool items whose label the dataset itself gives (an unlabeled pool's seed set)."""
    labels = table.labels("pool")
    return pl.DataFrame({"id": table.ids("pool")[labels >= 0], "label": labels[labels >= 0]}, schema=LABELS_COLUMNS)


def new_labels(round_name: str) -> pl.DataFrame:
    """The labels of ``round_name``'s queries, checked complete: the next round trains on them."""
    from al_core.artifacts import read_json, read_parquet

    queried = load_queried(round_name)
    labels = read_parquet(round_dir(round_name) / "labels.parquet", {"id": (pl.Int64,), "label": (pl.Int64,)})
    missing = np.setdiff1d(queried["id"].to_numpy(), labels["id"].to_numpy())
    if missing.size:
        source = read_json(round_dir(round_name) / "labels.json").get("source", "oracle")
        raise InputError(
            f"{missing.size} of the {queried.height} items queried in round {round_name} await labels (e.g. id "
            f"{int(missing[0])}; source {source}): run `al export {round_name}`, have them labeled, `al import FILE`, "
            "then dvc repro again (nothing computed so far is lost)")
    return queried.select("id", "round", "sampler").join(labels, on="id", how="left")
