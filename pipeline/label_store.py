"""Labels as the pipeline keeps them: the annotation store, a seed set's own labels, and each
round's ``labels.parquet`` (written by the ``labels`` stage, read by ``train`` and ``al export``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from al_core.errors import InputError
from pipeline.artifacts import PoolTable, load_queried, round_dir
from pipeline.params import LabelsSettings

LABELS_COLUMNS = {"id": pl.Int64, "label": pl.Int64}
SET_ASIDE_LABEL = -2  # in a labeled set: queried, still awaiting its label; neither trained on nor queried again


@dataclass(frozen=True)
class LabelStore:
    """Where a campaign keeps its labels, as ``params.yaml`` sets it (``labels.store``,
    ``.conflicts``, ``.source``): read once by a command, passed down to what reads the store.

    ``origin`` is the settings file, named in errors; ``campaign`` is ``labels.source: annotations``."""

    folder: Path
    conflicts: str
    campaign: bool
    origin: str

    @classmethod
    def of(cls, labels: LabelsSettings, origin: str | Path) -> LabelStore:
        """From the ``labels`` section of the typed settings (`pipeline.params.Settings`)."""
        return cls(Path(labels.store), labels.conflicts, labels.source == "annotations", str(origin))

    @property
    def file(self) -> Path:
        """``labels.store``/labels.parquet; an error when ``labels.store`` names a file, not a folder."""
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.origin}: labels.store is {str(self.folder)!r}, a file; it names the folder that holds "
                             "the annotation store (labels.parquet), e.g. data/annotations")
        return self.folder / "labels.parquet"

    @property
    def ledger(self) -> Path | None:
        """The ledger of sent batches (`pipeline.ledger`) in a campaign; None in a simulation
        (``labels.source: oracle``), whose rounds never read it."""
        from pipeline.ledger import ledger_file

        return ledger_file(self.file) if self.campaign else None

    def labels(self) -> pl.DataFrame:
        """``id, label, label_name, annotations``: one label per annotated item (the store, resolved by ``conflicts``)."""
        from al_core.annotations import read_store, resolve

        labels, _ = resolve(read_store(self.file), self.conflicts)
        return labels

    def reported(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``(labels, disagreements)`` as `al import` and `al campaign` report them: by ``conflicts``,
        except that under ``refuse`` the latest label stands in (only the labels stage stops on a
        disagreement; a report lists it)."""
        from al_core.annotations import read_store, resolve

        return resolve(read_store(self.file), "latest" if self.conflicts == "refuse" else self.conflicts)

    def labeled_ids(self) -> set[int]:
        """The ids the store labels (none when it does not exist yet)."""
        return set(self.labels()["id"].to_list()) if self.file.exists() else set()


def sent_batch_for(ledger: Path | None, round_name: str, labeled_ids: set[int], pool_ids: np.ndarray) -> pl.DataFrame | None:
    """What the ``init``/``select`` stage writes for a round sent to annotators (None: select it):
    the batch as it was sent, checked against the round's labeled set and the pool; ``ledger``:
    `LabelStore.ledger` (None in a simulation)."""
    from pipeline.ledger import kept_batch

    batch = None if ledger is None else kept_batch(ledger, round_name, labeled_ids, pool_ids)
    if batch is not None:
        print(f"{round_name}: sent to annotators ({ledger}): {batch.height} items kept as sent, whatever the head or "
              f"settings say now (`al reopen {round_name}` selects this round again)")
    return batch


def known_labels(table: PoolTable) -> pl.DataFrame:
    """``id, label`` of the pool items whose label the dataset itself gives (an unlabeled pool's seed set)."""
    labels = table.labels("pool")
    return pl.DataFrame({"id": table.ids("pool")[labels >= 0], "label": labels[labels >= 0]}, schema=LABELS_COLUMNS)


def with_dataset_labels(annotated: pl.DataFrame, table: PoolTable) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(answered, given)``: ``id, label`` of every pool item with a label, the annotators' first,
    else the dataset's own (a seed set); and ``given``, the items labeled by the dataset alone."""
    given = known_labels(table).filter(~pl.col("id").is_in(annotated["id"].implode()))
    return pl.concat([annotated.select("id", "label"), given]), given


def new_labels(round_name: str, awaiting: str = "wait") -> pl.DataFrame:
    """The labels of ``round_name``'s queries: the next round trains on them.

    Queries still awaiting annotators: ``wait`` (default) stops with one line saying how to get
    their labels; ``return`` leaves them out (back in the unlabeled pool: a later round may
    query them again); ``set_aside`` keeps them with label `SET_ASIDE_LABEL` (never queried
    again, not trained on). Either way a label that arrives later is used once ``dvc repro``
    re-runs the round's ``labels`` stage and what follows it."""
    from al_core.artifacts import read_json, read_parquet

    queried = load_queried(round_name)
    labels = read_parquet(round_dir(round_name) / "labels.parquet", {"id": (pl.Int64,), "label": (pl.Int64,)})
    missing = np.setdiff1d(queried["id"].to_numpy(), labels["id"].to_numpy())
    if missing.size and awaiting == "wait":
        source = read_json(round_dir(round_name) / "labels.json").get("source", "oracle")
        raise InputError(
            f"{missing.size} of the {queried.height} items queried in round {round_name} await labels (e.g. id "
            f"{int(missing[0])}; source {source}): run `al push {round_name}`, have them labeled, `al pull` (or `al "
            f"export {round_name}` and `al import FILE`), then dvc repro again (nothing computed so far is lost); or go "
            "on without them: labels.awaiting: return or set_aside")
    if missing.size:
        fate = "back in the pool" if awaiting == "return" else "set aside (not queried again)"
        warnings.warn(f"{missing.size} of the {queried.height} items queried in round {round_name} still await labels; "
                      f"labels.awaiting: {awaiting}: going on without them, {fate}, until their labels arrive")
    joined = queried.select("id", "round", "sampler").join(labels, on="id", how="left")
    if awaiting == "return":
        return joined.filter(pl.col("label").is_not_null())
    return joined.with_columns(pl.col("label").fill_null(SET_ASIDE_LABEL))
