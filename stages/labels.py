"""labels@rK: the labels of round K's queries, from the pool table (simulation) or from annotators.

``labels.source: oracle`` (the default, a simulation): the pool table's labels. ``annotations``:
the annotation store (``labels.store``/labels.parquet, filled by ``al import``), one label per
item by ``labels.conflicts``. Items still waiting for annotators are left out here; the next
round's ``train`` stops and says how many. Re-running after an import rewrites the file with
what has arrived; when nothing this round queried changed, the file is byte-identical and DVC
re-runs nothing downstream.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from al_core.artifacts import write_json, write_parquet
from al_core.errors import InputError
from stages.common import Params, PoolTable, load_queried, pool_positions, round_dir

LABELS_COLUMNS = {"id": pl.Int64, "label": pl.Int64}


def store_file(params: Params) -> Path:
    return Path(params.get("labels.store", str, "data/annotations")) / "labels.parquet"


def annotated_labels(params: Params) -> pl.DataFrame:
    """``id, label, label_name, annotations``: one label per annotated item (the store, resolved)."""
    from al_core.annotations import read_store, resolve

    labels, _ = resolve(read_store(store_file(params)), params.get("labels.conflicts", str, "latest"))
    return labels


def known_labels(table: PoolTable) -> pl.DataFrame:
    """``id, label`` of the pool items whose label the dataset itself gives (an unlabeled pool's seed set)."""
    labels = table.labels("pool")
    return pl.DataFrame({"id": table.ids("pool")[labels >= 0], "label": labels[labels >= 0]}, schema=LABELS_COLUMNS)


def run_labels(params: Params, round_name: str) -> None:
    """Write runs/<round>/labels.parquet (id, label; -1: unusable, never trained on) for the round's
    queries that have a label, and labels.json (queried, labeled, awaiting, unusable, source).
    Memory O(N) for the pool ids and O(store) for the annotations."""
    source = params.get("labels.source", str, "oracle")  # its values are checked by stages/params_schema.py
    table = PoolTable.load()
    ids = load_queried(round_name)["id"].to_numpy()
    if source == "oracle":
        positions = pool_positions(table.ids("pool"), ids, round_dir(round_name) / "queried.parquet")
        labels = table.labels("pool")[positions]
        if (labels < 0).any():
            raise InputError("the pool has no labels to simulate annotation with (labels.source: oracle); set "
                             "labels.source: annotations and label each batch (al export / al import)")
        frame = pl.DataFrame({"id": ids, "label": labels}, schema=LABELS_COLUMNS)
    else:
        # The store's labels, else those the dataset gives (a seed set), for the queried items.
        answered = pl.concat([annotated_labels(params).select("id", "label"), known_labels(table)]).unique("id", keep="first")
        frame = (pl.DataFrame({"id": ids}, schema={"id": pl.Int64}).with_row_index("rank")
                 .join(answered, on="id", how="inner").sort("rank").select("id", "label"))
    write_parquet(round_dir(round_name) / "labels.parquet", frame)
    summary = {"round": round_name, "source": source, "queried": int(ids.shape[0]), "labeled": frame.height,
               "awaiting": int(ids.shape[0] - frame.height), "unusable": int((frame["label"] < 0).sum())}
    write_json(round_dir(round_name) / "labels.json", summary)
    waiting = f", {summary['awaiting']} awaiting annotators (al export {round_name})" if summary["awaiting"] else ""
    print(f"labels {round_name}: {summary['labeled']} of {summary['queried']} queries labeled ({source}){waiting}")


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
