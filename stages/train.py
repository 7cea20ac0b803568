"""train: L_k = L_{k-1} + queried_{k-1}, then the head on frozen features or the whole network."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl

from al_core.artifacts import write_json, write_npy, write_npz, write_parquet
from al_core.errors import InputError
from pipeline.artifacts import (
    FEATURES,
    PoolTable,
    labeled_frame,
    load_features,
    load_images,
    load_labeled,
    load_queried,
    model_dir,
    pool_positions,
    round_dir,
    round_seed,
)
from pipeline.distributed import process_group, relaunch, under_torchrun
from pipeline.heads import fit_head, fit_note, head_config
from pipeline.label_store import new_labels
from pipeline.params import BackboneSettings, FinetuneSettings, Params, Settings, preprocessing_overrides

TRAIN_MODES = ("linear", "finetune")


def run_train(params: Params, round_name: str, previous: str) -> None:
    """L_k = L_{k-1} + queried_{k-1}; train on L_k: the head on frozen features (``train.mode``
    linear), or the whole network from the pretrained checkpoint (finetune).

    Writes runs/<round>/labeled.parquet (id, label, round it was queried in, sampler),
    runs/<round>/head.npz (weight (C, d), bias (C,) on raw features; best_epoch, val_top1) and
    runs/<round>/model/ (meta.json; in finetune mode also features.npy of every table row by the
    fine-tuned backbone, which this round's evaluate and select use).
    """
    mode = params.settings.train.mode
    if mode not in TRAIN_MODES:
        raise InputError(f"params train.mode must be one of {TRAIN_MODES}, got {mode!r}")
    processes = params.settings.backbone.processes
    if mode == "finetune" and processes > 1 and not under_torchrun():
        relaunch("train", processes, params.path, (round_name, previous))
        return
    with process_group():
        _train(params.settings, round_name, previous, mode)


def _train(settings: Settings, round_name: str, previous: str, mode: str) -> None:
    """`run_train`'s work in one process, from the typed ``settings`` (`pipeline.params.Settings`)."""
    table = PoolTable.load()
    pool_ids = table.ids("pool")
    previous_labeled = load_labeled(previous)
    # The batch itself first: a re-queried or foreign id is a damaged file, not labels to wait for.
    batch_ids = load_queried(previous)["id"].to_numpy()
    overlap = set(previous_labeled["id"].to_list()) & set(batch_ids.tolist())
    if overlap:
        raise InputError(f"runs/{previous}/queried.parquet re-queries labeled ids, e.g. {sorted(overlap)[:5]}; "
                         f"re-run the stage that wrote it (dvc repro -f select@{previous}) or restore it (dvc checkout)")
    pool_positions(pool_ids, batch_ids, round_dir(previous) / "queried.parquet")  # every id a pool item
    # The previous round's queries with their labels (labels@<previous>)
    queried = new_labels(previous, settings.labels.awaiting)
    labeled = pl.concat([
        previous_labeled,
        labeled_frame(queried["id"].to_numpy(), queried["label"].to_numpy(), queried["round"].to_list(), queried["sampler"].to_list()),
    ])
    # Items annotators marked unusable stay in the labeled set (never queried again), untrained on.
    usable = labeled.filter(pl.col("label") >= 0)
    labeled_rows = table.split_range("pool").start + pool_positions(
        pool_ids, usable["id"].to_numpy(), round_dir(round_name) / "labeled.parquet")
    labeled_labels = usable["label"].to_numpy()
    seed = round_seed(settings.seed, round_name)
    out = round_dir(round_name)
    if mode == "linear":
        head = fit_head(table, load_features(), labeled_rows, labeled_labels, seed, head_config(settings.train),
                        settings.backbone.device)
    else:
        head = finetune_round(settings.backbone, finetune_config(settings.finetune, settings.train.class_weighted),
                              table, labeled_rows, labeled_labels, seed, round_name)
        if head is None:  # a torchrun rank other than 0
            return
    write_parquet(out / "labeled.parquet", labeled)
    write_npz(out / "head.npz", weight=head.weight, bias=head.bias,
              best_epoch=np.int64(head.history["best_epoch"]), val_top1=np.float64(head.history["val_top1"]))
    write_json(model_dir(round_name) / "meta.json", {
        "mode": mode, "features": str(model_dir(round_name) / "features.npy") if mode == "finetune" else str(FEATURES),
        **{key: value for key, value in head.history.items() if key in ("solver", "l2", "val_top1", "val_loss", "best_epoch", "epochs_run", "val_curve")},
    })
    print(f"train {round_name}: {labeled.height} labels, val top-1 {head.history['val_top1']:.4f} ({fit_note(head.history)})")


def finetune_config(finetune: FinetuneSettings, class_weighted: bool):
    """`al_core.finetune.FinetuneConfig` from the ``finetune`` section of `pipeline.params.Settings`
    and ``train.class_weighted``."""
    from al_core.finetune import FinetuneConfig

    return FinetuneConfig(
        lr=finetune.lr, momentum=finetune.momentum, weight_decay=finetune.weight_decay, batch_size=finetune.batch_size,
        epochs=finetune.epochs, schedule=finetune.schedule, step_epochs=finetune.step_epochs, gamma=finetune.gamma,
        patience=finetune.patience, augment=finetune.augment, class_weighted=class_weighted,
    )


def finetune_round(backbone_settings: BackboneSettings, config, table: PoolTable, labeled_rows: np.ndarray, labeled_labels: np.ndarray,
                   seed: int, round_name: str):
    """Fine-tune from the checkpoint on the labeled rows, then embed every table row with the result.

    ``backbone_settings``: the ``backbone`` section of `pipeline.params.Settings`; ``config``:
    `finetune_config`. Writes runs/<round>/model/features.npy (rank 0); returns the head (None on
    other ranks).
    """
    from al_core.backbones import load_backbone
    from al_core.features import extract_features, extraction_fingerprint
    from al_core.finetune import finetune

    image_size = backbone_settings.image_size
    backbone, preprocessing, _ = load_backbone(backbone_settings.name, backbone_settings.checkpoint,
                                               backbone_settings.checkpoint_part, preprocessing_overrides(backbone_settings))
    images, content = load_images(table, image_size)
    labels = table.frame["label"].to_numpy()
    val_rows = table.rows("val")
    model = finetune(backbone, images, labeled_rows, labeled_labels, val_rows, labels[val_rows],
                     num_classes=table.num_classes, image_size=image_size, preprocessing=preprocessing,
                     config=config, seed=seed, device=backbone_settings.device)
    work_dir = Path("data/.finetune-partial") / extraction_fingerprint(round_name, seed, content, labeled_rows.tobytes(),
                                                                       backbone_settings.precision)
    features = extract_features(model.backbone, images, image_size=image_size, preprocessing=preprocessing, work_dir=work_dir,
                                batch_size=backbone_settings.batch_size, device=backbone_settings.device,
                                shard_size=backbone_settings.shard_size, precision=backbone_settings.precision)
    if features is None:
        return None
    write_npy(model_dir(round_name) / "features.npy", features)
    shutil.rmtree(work_dir, ignore_errors=True)
    return model
