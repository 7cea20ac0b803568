"""full: the same head trained on every pool label once, the ceiling the rounds are compared to."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from al_core.artifacts import write_json
from pipeline.artifacts import FULL_DIR, PoolTable, load_features, round_seed
from pipeline.heads import fit_head, fit_note, head_config, test_metrics
from pipeline.params import Params


def run_full(params: Params) -> None:
    """Write data/full/metrics.json (labels, val and test top-1/top-5) and timing.json (epochs run,
    seconds per epoch): the same head trained on every pool label (the ceiling), for at most
    ``full.max_epochs`` epochs (0: ``train.max_epochs``).

    Memory: the pool's features stay memory-mapped and each minibatch is read when needed (above
    2 GiB as float32): O(batch * d + n_val * d + C * d) beyond the page cache. Time per epoch
    O(N * d * C): at 1.28M x 2048 x 1000 on 2 CPU cores, see the README.
    """
    table = PoolTable.load()
    if (table.labels("pool") < 0).any():
        write_json(FULL_DIR / "metrics.json", {"skipped": "the pool is unlabeled: no full-data probe"})
        write_json(FULL_DIR / "timing.json", {})
        print("full: skipped, the pool is unlabeled (the report shows no full-data reference)")
        return
    features = load_features()
    pool = table.split_range("pool")
    settings = params.settings
    config = head_config(settings.train)
    max_epochs = settings.full.max_epochs  # >= 0, checked by pipeline/params.py
    if max_epochs:  # lbfgs: at most this many iterations per penalty (each about one pass, as an epoch)
        config = replace(config, max_epochs=max_epochs, max_iter=max_epochs)
    head = fit_head(table, features, np.arange(pool.start, pool.stop), table.labels("pool"),
                    round_seed(settings.seed, "full"), config, settings.backbone.device)
    metrics = {"labels": int(pool.stop - pool.start), "val_top1": head.history["val_top1"]}
    metrics.update(test_metrics(table, features, head.weight, head.bias))
    write_json(FULL_DIR / "metrics.json", metrics)
    timing = ("solver", "epochs_run", "best_epoch", "seconds_per_epoch", "l2", "evaluations", "seconds", "in_memory")
    write_json(FULL_DIR / "timing.json", {key: head.history[key] for key in timing if key in head.history})
    print(f"full: {metrics['labels']} labels, test top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f} ({fit_note(head.history)})")
