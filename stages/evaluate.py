"""evaluate: test top-1/top-5 of a round's head and the class statistics of its labeled set."""

from __future__ import annotations

import warnings

import numpy as np

from al_core.artifacts import write_json, write_npy
from al_core.linear import linear_logits
from al_core.metrics import label_statistics
from al_core.stopping import stop_set
from pipeline.artifacts import STOP_PREDICTIONS, PoolTable, load_head, load_labeled, round_dir, round_features
from pipeline.heads import test_metrics
from pipeline.params import Params


def run_evaluate(params: Params, round_name: str) -> None:
    """Write runs/<round>/metrics.json (labels used, test top-1/top-5, validation top-1 and its
    size, class statistics of L_k) and runs/<round>/stop_predictions.npy (the head's class for
    each item of the fixed stop set, ``stop.set_size`` pool items: the stopping signal's input;
    O(S*d*C))."""
    table = PoolTable.load()
    head = load_head(round_name)
    labeled = load_labeled(round_name)
    metrics = {"round": round_name, "sampler": params.settings.sampler}
    if table.rows("test").size:
        metrics.update(test_metrics(table, round_features(round_name), head["weight"], head["bias"]))
    else:  # an unlabeled pool without a labeled test set: no accuracy to report, the rest stands
        metrics.update(top1=None, top5=None, note="no labeled test set: top-1/top-5 not measured")
    labels = labeled["label"].to_numpy()
    metrics.update(label_statistics(labels[labels >= 0], table.num_classes))  # -1: marked unusable, not trained on
    metrics["val_top1"] = float(head.get("val_top1", np.nan))
    metrics["val_items"] = int(table.rows("val").size)
    set_size, pool_size = params.settings.stop.set_size, table.rows("pool").size
    if set_size > pool_size:
        warnings.warn(f"{params.path}: stop.set_size is {set_size} but the pool has {pool_size} items; the stop set is "
                      "the whole pool (set stop.set_size to at most the pool's size to silence this)")
    rows = table.split_range("pool").start + stop_set(pool_size, set_size, params.settings.data.split_seed)
    predictions = np.argmax(linear_logits(round_features(round_name)[rows], head["weight"], head["bias"]), axis=1)
    write_npy(round_dir(round_name) / STOP_PREDICTIONS, predictions.astype(np.int32))
    write_json(round_dir(round_name) / "metrics.json", metrics)
    accuracy = ("no labeled test set" if metrics["top1"] is None
                else f"top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}")
    print(f"evaluate {round_name}: {metrics['labels']} labels, {accuracy}, imbalance {metrics['imbalance_ratio']:.2f}")
