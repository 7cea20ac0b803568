"""evaluate: test top-1/top-5 of a round's head and the class statistics of its labeled set."""

from __future__ import annotations

import numpy as np

from al_core.artifacts import write_json
from al_core.metrics import label_statistics
from pipeline.artifacts import PoolTable, load_head, load_labeled, round_dir, round_features
from pipeline.heads import test_metrics
from pipeline.params import Params


def run_evaluate(params: Params, round_name: str) -> None:
    """Write runs/<round>/metrics.json: labels used, test top-1/top-5, class statistics of L_k."""
    table = PoolTable.load()
    head = load_head(round_name)
    labeled = load_labeled(round_name)
    metrics = {"round": round_name, "sampler": params.get("sampler", str)}
    if table.rows("test").size:
        metrics.update(test_metrics(table, round_features(round_name), head["weight"], head["bias"]))
    else:  # an unlabeled pool without a labeled test set: no accuracy to report, the rest stands
        metrics.update(top1=None, top5=None, note="no labeled test set: top-1/top-5 not measured")
    labels = labeled["label"].to_numpy()
    metrics.update(label_statistics(labels[labels >= 0], table.num_classes))  # -1: marked unusable, not trained on
    metrics["val_top1"] = float(head.get("val_top1", np.nan))
    write_json(round_dir(round_name) / "metrics.json", metrics)
    accuracy = ("no labeled test set" if metrics["top1"] is None
                else f"top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}")
    print(f"evaluate {round_name}: {metrics['labels']} labels, {accuracy}, imbalance {metrics['imbalance_ratio']:.2f}")
