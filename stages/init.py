"""init: the seeded random initial labeled set s0, as the queries of an empty round."""

from __future__ import annotations

import warnings

import numpy as np

from al_core.artifacts import write_parquet
from al_core.errors import InputError
from pipeline.artifacts import INIT_ROUND, PoolTable, labeled_frame, queried_frame, round_dir
from pipeline.label_store import LabelStore, sent_batch_for
from pipeline.params import Params


def run_init(params: Params) -> None:
    """Write runs/init/labeled.parquet (empty) and runs/init/queried.parquet (s0): ``initial_size``
    items drawn at random with ``seed``, or, for an unlabeled pool that comes with a labeled seed set
    (``labels.source: annotations``), exactly the seed set's items."""
    from al_core.samplers import select_with_scores

    table = PoolTable.load()
    pool_ids = table.ids("pool")
    size = params.settings.initial_size
    seed = params.settings.seed
    if size <= 0:
        raise InputError(f"params initial_size must be positive, got {size}")
    pool_labels = table.labels("pool")
    out = round_dir(INIT_ROUND)
    write_parquet(out / "labeled.parquet", labeled_frame(np.empty(0, np.int64), np.empty(0, np.int64), [], []))
    sent = sent_batch_for(LabelStore.of(params.settings.labels, params.path).ledger, INIT_ROUND, set(), pool_ids)
    if sent is not None:  # a campaign's s0, once sent to annotators, is a fact
        write_parquet(out / "queried.parquet", sent)
        return
    seeded = np.flatnonzero(pool_labels >= 0)
    if params.settings.labels.source == "annotations" and 0 < seeded.size < pool_labels.size:
        write_parquet(out / "queried.parquet", queried_frame(table, seeded, np.full(seeded.size, np.nan), INIT_ROUND, "seed set"))
        print(f"init: the seed set's {seeded.size} labeled items are s0 (initial_size is not used)")
        return
    if size > len(pool_ids):
        warnings.warn(f"initial_size {size} exceeds the pool's {len(pool_ids)} items; s0 takes all of them")
        size = len(pool_ids)
    selection = select_with_scores("random", size, labeled_mask=np.zeros(len(pool_ids), dtype=bool), seed=seed)
    write_parquet(out / "queried.parquet", queried_frame(table, selection.indices, selection.scores, INIT_ROUND, "random"))
    print(f"init: {len(selection.indices)} items drawn at random with seed {seed}")
