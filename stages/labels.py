"""labels@rK: the labels of round K's queries, from the pool table (simulation) or from annotators.

``labels.source: oracle`` (the default, a simulation): the pool table's labels. ``annotations``:
the annotation store (``labels.store``/labels.parquet, filled by ``al import``), one label per
item by ``labels.conflicts``. Items still waiting for annotators are left out here; the next
round's ``train`` stops and says how many. Re-running after an import rewrites the file with
what has arrived; when nothing this round queried changed, the file is byte-identical and DVC
re-runs nothing downstream.
"""

from __future__ import annotations

import warnings

import polars as pl

from al_core.artifacts import write_json, write_parquet
from al_core.errors import InputError
from pipeline.artifacts import PoolTable, load_queried, pool_positions, round_dir
from pipeline.label_store import LABELS_COLUMNS, LabelStore, with_dataset_labels
from pipeline.params import Params


def run_labels(params: Params, round_name: str) -> None:
    """Write runs/<round>/labels.parquet (id, label; -1: unusable, never trained on) for the round's
    queries that have a label, and labels.json (queried, labeled, awaiting, unusable, source).
    Memory O(N) for the pool ids and O(store) for the annotations."""
    source = params.settings.labels.source  # its values are checked by pipeline/params.py
    table = PoolTable.load()
    ids = load_queried(round_name)["id"].to_numpy()
    from_data = 0  # items labeled by the dataset itself in annotations mode (a seed set)
    if source == "oracle":
        positions = pool_positions(table.ids("pool"), ids, round_dir(round_name) / "queried.parquet")
        labels = table.labels("pool")[positions]
        if (labels < 0).any():
            raise InputError("the pool has no labels to simulate annotation with (labels.source: oracle); set "
                             "labels.source: annotations and label each batch (al export / al import)")
        frame = pl.DataFrame({"id": ids, "label": labels}, schema=LABELS_COLUMNS)
    else:
        # The store's labels, else those the dataset gives (a seed set), for the queried items.
        answered, given = with_dataset_labels(LabelStore.of(params.settings.labels, params.path).labels(), table)
        frame = (pl.DataFrame({"id": ids}, schema={"id": pl.Int64}).with_row_index("rank")
                 .join(answered, on="id", how="inner").sort("rank").select("id", "label"))
        from_data = int(given["id"].is_in(ids.tolist()).sum())
        if from_data and (table.labels("pool") >= 0).all():
            warnings.warn(f"labels {round_name}: {from_data} of {ids.shape[0]} queried items take their label from the "
                          f"dataset (data.dataset {params.settings.data.dataset} labels every pool item), not from "
                          "annotators; for a simulation set labels.source: oracle, for a campaign use a pool without labels")
    write_parquet(round_dir(round_name) / "labels.parquet", frame)
    summary = {"round": round_name, "source": source, "queried": int(ids.shape[0]), "labeled": frame.height,
               "awaiting": int(ids.shape[0] - frame.height), "unusable": int((frame["label"] < 0).sum())}
    if from_data:
        summary["from_dataset"] = from_data
    write_json(round_dir(round_name) / "labels.json", summary)
    waiting = f", {summary['awaiting']} awaiting annotators (al export {round_name})" if summary["awaiting"] else ""
    waiting += f"; {from_data} labeled by the dataset itself" if from_data else ""
    print(f"labels {round_name}: {summary['labeled']} of {summary['queried']} queries labeled ({source}){waiting}")
