"""The linear head as the stages use it: its training settings, fitting on table rows, test metrics."""

from __future__ import annotations

import numpy as np

from al_core.artifacts import read_npz
from al_core.errors import InputError
from al_core.hardware import pick_device
from al_core.linear import as_float32, linear_logits
from al_core.metrics import topk_correct
from pipeline.artifacts import FEATURE_STATS, PoolTable
from pipeline.params import TrainSettings


def head_config(train: TrainSettings):
    """The head's `al_core.train.HeadConfig` from the ``train`` section of `pipeline.params.Settings`."""
    from al_core.train import HeadConfig

    return HeadConfig(solver=train.solver, max_iter=train.max_iter, lr=train.lr, momentum=train.momentum,
                      weight_decay=train.weight_decay, batch_size=train.batch_size, max_epochs=train.max_epochs,
                      patience=train.patience, class_weighted=train.class_weighted)


def fit_head(table: PoolTable, features: np.ndarray, train_rows: np.ndarray, train_labels: np.ndarray, seed: int,
             config, device: str):
    """Train the head (``config``: `head_config`) on the given rows of the feature table (early
    stopping on the val split) on ``device`` (``backbone.device``: auto, cpu, cuda...).

    ``features`` is the memory-mapped table; the rows are read per minibatch when they exceed
    2 GiB as float32 (the full-data probe at scale). Memory O(min(n, 2 GiB / 4d) * d + n_val * d)."""
    from al_core.train import train_linear_head

    stats = read_npz(FEATURE_STATS, required=("mean", "std"))
    val = table.split_range("val")
    labels = table.frame["label"].to_numpy()
    order = np.argsort(train_rows, kind="stable")
    train_rows = train_rows[order]
    return train_linear_head(
        features, np.asarray(train_labels)[order], features[val], labels[val], train_rows=train_rows,
        row_ids=table.frame["id"].to_numpy(), val_ids=table.ids("val"),
        num_classes=table.num_classes, config=config, seed=seed,
        mean=stats["mean"], std=stats["std"], device=str(pick_device(device)),
    )


def fit_note(history: dict) -> str:
    """How the head was fitted, for a stage's last line."""
    if history.get("solver") == "lbfgs":
        return f"L-BFGS, l2 {history['l2']:g} chosen on val, {history['evaluations']} evaluations, {history['seconds']:.1f} s"
    seconds = history.get("seconds_per_epoch")  # fine-tuning's history has none
    return f"best epoch {history['best_epoch']} of {history['epochs_run']}" + (f", {seconds:.1f} s each" if seconds else "")


TEST_CHUNK = 16384


def test_metrics(table: PoolTable, features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> dict:
    """Top-1/top-5 on the test split, in chunks. O(n_test * d * C) time, O(chunk * (d + C)) memory."""
    test = table.split_range("test")
    if features.shape[1] != weight.shape[1]:
        raise InputError(f"features have {features.shape[1]} columns but the head expects {weight.shape[1]}")
    labels = table.labels("test")
    ids = table.ids("test")
    hits = {1: 0, 5: 0}
    for start in range(0, labels.shape[0], TEST_CHUNK):
        block = as_float32(features[test.start + start:test.start + start + TEST_CHUNK])
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            raise InputError(f"the features of test item id {int(ids[start + np.argmin(finite)])} hold NaN or inf; "
                             "re-run the stage that wrote them, or drop that item from the test set")
        logits = linear_logits(block, weight, bias)
        for k in hits:
            hits[k] += topk_correct(logits, labels[start:start + TEST_CHUNK], k)
    return {"top1": hits[1] / labels.shape[0], "top5": hits[5] / labels.shape[0]}
