"""Per-round stages: train (head on L_k, or the whole network), evaluate (test metrics), select (next batch)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from al_core.artifacts import read_npy, read_npz, write_json, write_npy, write_npz, write_parquet
from al_core.errors import InputError
from al_core.metrics import label_statistics, topk_accuracy
from stages.common import (
    CLUSTERS, FEATURE_STATS, FEATURES, FULL_DIR, Params, PoolTable, load_features, load_images, load_labeled,
    labeled_mask, load_queried, model_dir, pool_positions, round_dir, round_features,
)
from stages.distributed import process_group, relaunch, under_torchrun


def labeled_frame(ids: np.ndarray, labels: np.ndarray, rounds: list[str], samplers: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ids, "label": labels, "round": rounds, "sampler": samplers},
        schema={"id": pl.Int64, "label": pl.Int64, "round": pl.String, "sampler": pl.String},
    )


def queried_frame(table: PoolTable, pool_rows: np.ndarray, scores: np.ndarray, round_name: str, sampler: str) -> pl.DataFrame:
    """The batch to send to annotators: id, round, sampler, score, rank, and each image's file
    (``path``) when the dataset is made of files. ``pool_rows`` index the pool split of ``table``."""
    frame = pl.DataFrame(
        {
            "id": table.ids("pool")[pool_rows].astype(np.int64),
            "round": [round_name] * len(pool_rows),
            "sampler": [sampler] * len(pool_rows),
            "score": scores.astype(np.float64),
            "rank": np.arange(len(pool_rows), dtype=np.int64),
        },
        schema={"id": pl.Int64, "round": pl.String, "sampler": pl.String, "score": pl.Float64, "rank": pl.Int64},
    )
    paths = table.paths("pool")
    return frame if paths is None else frame.with_columns(pl.Series("path", paths[pool_rows], dtype=pl.String))


def round_seed(seed: int, round_name: str) -> int:
    """A distinct, reproducible seed per (experiment seed, round)."""
    entropy = [seed] + [ord(char) for char in round_name]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def head_config(params: Params):
    from al_core.train import HeadConfig

    return HeadConfig(
        lr=params.get("train.lr", float),
        momentum=params.get("train.momentum", float),
        weight_decay=params.get("train.weight_decay", float),
        batch_size=params.get("train.batch_size", int),
        max_epochs=params.get("train.max_epochs", int),
        patience=params.get("train.patience", int),
        class_weighted=params.get("train.class_weighted", bool, False),
    )


def fit_head(params: Params, table: PoolTable, features: np.ndarray, train_rows: np.ndarray, seed: int):
    """Train the head on the given rows of the feature table (early stopping on the val split)."""
    from al_core.train import train_linear_head

    stats = read_npz(FEATURE_STATS, required=("mean", "std"))
    val = table.split_range("val")
    labels = table.frame["label"].to_numpy()
    train_rows = np.sort(train_rows)
    return train_linear_head(
        np.asarray(features[train_rows]), labels[train_rows],
        np.asarray(features[val]), labels[val],
        num_classes=table.num_classes, config=head_config(params), seed=seed,
        mean=stats["mean"], std=stats["std"],
    )


TRAIN_MODES = ("linear", "finetune")


def run_train(params: Params, round_name: str, previous: str) -> None:
    """L_k = L_{k-1} + queried_{k-1}; train on L_k: the head on frozen features (``train.mode``
    linear), or the whole network from the pretrained checkpoint (finetune).

    Writes runs/<round>/labeled.parquet (id, label, round it was queried in, sampler),
    runs/<round>/head.npz (weight (C, d), bias (C,) on raw features; best_epoch, val_top1) and
    runs/<round>/model/ (meta.json; in finetune mode also features.npy of every table row by the
    fine-tuned backbone, which this round's evaluate and select use).
    """
    mode = params.get("train.mode", str, "linear")
    if mode not in TRAIN_MODES:
        raise InputError(f"params train.mode must be one of {TRAIN_MODES}, got {mode!r}")
    processes = params.get("backbone.processes", int, 1)
    if mode == "finetune" and processes > 1 and not under_torchrun():
        relaunch("train", processes, params.path, (round_name, previous))
        return
    with process_group():
        _train(params, round_name, previous, mode)


def _train(params: Params, round_name: str, previous: str, mode: str) -> None:
    table = PoolTable.load()
    pool_ids = table.ids("pool")
    previous_labeled = load_labeled(previous)
    queried = load_queried(previous)
    overlap = set(previous_labeled["id"].to_list()) & set(queried["id"].to_list())
    if overlap:
        raise InputError(f"runs/{previous}/queried.parquet re-queries labeled ids, e.g. {sorted(overlap)[:5]}")
    new_ids = queried["id"].to_numpy()
    positions = pool_positions(pool_ids, new_ids, round_dir(previous) / "queried.parquet")
    # The oracle: labels of the newly queried items come from the pool table.
    new_labels = table.labels("pool")[positions]
    labeled = pl.concat([
        previous_labeled,
        labeled_frame(new_ids, new_labels, queried["round"].to_list(), queried["sampler"].to_list()),
    ])
    labeled_rows = table.split_range("pool").start + pool_positions(
        pool_ids, labeled["id"].to_numpy(), round_dir(round_name) / "labeled.parquet")
    seed = round_seed(params.get("seed", int), round_name)
    out = round_dir(round_name)
    if mode == "linear":
        head = fit_head(params, table, load_features(), labeled_rows, seed)
    else:
        head = finetune_round(params, table, labeled_rows, seed, round_name)
        if head is None:  # a torchrun rank other than 0
            return
    write_parquet(out / "labeled.parquet", labeled)
    write_npz(out / "head.npz", weight=head.weight, bias=head.bias,
              best_epoch=np.int64(head.history["best_epoch"]), val_top1=np.float64(head.history["val_top1"]))
    write_json(model_dir(round_name) / "meta.json", {
        "mode": mode, "features": str(model_dir(round_name) / "features.npy") if mode == "finetune" else str(FEATURES),
        **{key: value for key, value in head.history.items() if key in ("val_top1", "best_epoch", "epochs_run", "val_curve")},
    })
    print(f"train {round_name}: {labeled.height} labels, val top-1 {head.history['val_top1']:.4f} "
          f"(best epoch {head.history['best_epoch']} of {head.history['epochs_run']})")


def finetune_config(params: Params):
    from al_core.finetune import FinetuneConfig

    return FinetuneConfig(
        lr=params.get("finetune.lr", float), momentum=params.get("finetune.momentum", float),
        weight_decay=params.get("finetune.weight_decay", float), batch_size=params.get("finetune.batch_size", int),
        epochs=params.get("finetune.epochs", int), schedule=params.get("finetune.schedule", str),
        step_epochs=params.get("finetune.step_epochs", int), gamma=params.get("finetune.gamma", float),
        patience=params.get("finetune.patience", int), augment=params.get("finetune.augment", bool),
        class_weighted=params.get("train.class_weighted", bool, False),
    )


def finetune_round(params: Params, table: PoolTable, labeled_rows: np.ndarray, seed: int, round_name: str):
    """Fine-tune from the checkpoint on the labeled rows, then embed every table row with the result.

    Writes runs/<round>/model/features.npy (rank 0); returns the head (None on other ranks).
    """
    from al_core.backbones import load_backbone
    from al_core.features import extract_features, extraction_fingerprint
    from al_core.finetune import finetune

    image_size = params.get("backbone.image_size", int)
    backbone, preprocessing, _ = load_backbone(params.get("backbone.name", str), params.get("backbone.checkpoint", str),
                                               params.get("backbone.checkpoint_part", str, "auto"))
    images, content = load_images(table, image_size)
    labels = table.frame["label"].to_numpy()
    val_rows = table.rows("val")
    model = finetune(backbone, images, labeled_rows, labels[labeled_rows], val_rows, labels[val_rows],
                     num_classes=table.num_classes, image_size=image_size, preprocessing=preprocessing,
                     config=finetune_config(params), seed=seed, device=params.get("backbone.device", str))
    work_dir = Path("data/.finetune-partial") / extraction_fingerprint(round_name, seed, content, labeled_rows.tobytes())
    features = extract_features(model.backbone, images, image_size=image_size, preprocessing=preprocessing, work_dir=work_dir,
                                batch_size=params.get("backbone.batch_size", int), device=params.get("backbone.device", str),
                                shard_size=params.get("backbone.shard_size", int, 8192))
    if features is None:
        return None
    write_npy(model_dir(round_name) / "features.npy", features)
    shutil.rmtree(work_dir, ignore_errors=True)
    return model


def load_head(round_name: str) -> dict[str, np.ndarray]:
    return read_npz(round_dir(round_name) / "head.npz", required=("weight", "bias"))


def test_metrics(table: PoolTable, features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> dict:
    test = table.split_range("test")
    if features.shape[1] != weight.shape[1]:
        raise InputError(f"features have {features.shape[1]} columns but the head expects {weight.shape[1]}")
    logits = np.asarray(features[test], dtype=np.float32) @ weight.T + bias
    labels = table.labels("test")
    return {"top1": topk_accuracy(logits, labels, 1), "top5": topk_accuracy(logits, labels, 5)}


def run_evaluate(params: Params, round_name: str) -> None:
    """Write runs/<round>/metrics.json: labels used, test top-1/top-5, class statistics of L_k."""
    table = PoolTable.load()
    head = load_head(round_name)
    labeled = load_labeled(round_name)
    metrics = {"round": round_name, "sampler": params.get("sampler", str)}
    metrics.update(test_metrics(table, round_features(round_name), head["weight"], head["bias"]))
    metrics.update(label_statistics(labeled["label"].to_numpy(), table.num_classes))
    metrics["val_top1"] = float(head.get("val_top1", np.nan))
    write_json(round_dir(round_name) / "metrics.json", metrics)
    print(f"evaluate {round_name}: {metrics['labels']} labels, top-1 {metrics['top1']:.4f}, "
          f"top-5 {metrics['top5']:.4f}, imbalance {metrics['imbalance_ratio']:.2f}")


SELECT_OPTIONS = ("partitions", "candidates_factor")  # params.yaml select.<key> -> sampler option
VAAL_OPTIONS = ("steps", "batch_size", "latent_dim", "crop_size")  # params.yaml vaal.<key> -> vaal's option


def sampler_options(params: Params, spec, pool_size: int) -> dict | None:
    """The options ``spec`` takes, from ``select.*`` in params and the cached pool clustering."""
    if spec is None:
        return None
    options = {key: params.get(f"select.{key}", int) for key in SELECT_OPTIONS if key in spec.options}
    if spec.name == "vaal":
        options.update({key: params.get(f"vaal.{key}", int) for key in VAAL_OPTIONS})
    if "cluster_ids" in spec.options:
        cluster_ids = read_npy(CLUSTERS, mmap=False)
        if cluster_ids.shape != (pool_size,):
            raise InputError(f"{CLUSTERS} has {cluster_ids.shape[0]} entries but the pool has {pool_size} items; "
                             "run `dvc repro cluster` (or `al cluster`) again")
        options["cluster_ids"] = cluster_ids
    return options or None


def pool_images(table: PoolTable, params: Params):
    """The pool rows' images (lazily decoded for image files), for samplers that look at pixels."""
    from al_core.data.images import ImageFiles

    images, _ = load_images(table, params.get("backbone.image_size", int))
    pool = table.split_range("pool")
    return ImageFiles(images.paths[pool], images.size) if isinstance(images, ImageFiles) else images[pool]


def run_select(params: Params, round_name: str) -> None:
    """Write runs/<round>/queried.parquet: the ``budget`` items to label next (id, round,
    sampler, score, rank), chosen by ``sampler`` from the unlabeled pool."""
    from al_core.samplers import SAMPLERS, BudgetWarning, select_with_scores

    table = PoolTable.load()
    pool_ids = table.ids("pool")
    head = load_head(round_name)
    sampler = params.get("sampler", str)
    budget = params.get("budget", int)
    spec = SAMPLERS.get(sampler)
    # Only samplers that declare it (the oracle, and balancing's sequential annotation) read labels.
    reads_labels = spec is not None and "labels" in spec.needs
    options = sampler_options(params, spec, len(pool_ids))
    labeled = labeled_mask(table, round_name)
    features = round_features(round_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BudgetWarning)
        selection = select_with_scores(
            sampler, budget,
            features=features[table.split_range("pool")], head_weight=head["weight"], head_bias=head["bias"],
            labeled_mask=labeled, seed=round_seed(params.get("seed", int), round_name),
            labels=table.labels("pool") if reads_labels else None,
            chunk_size=params.get("select.chunk_size", int), options=options,
            images=pool_images(table, params) if spec is not None and "images" in spec.needs else None,
        )
    for warning in caught:
        print(f"warning: select {round_name}: {warning.message}")
    write_parquet(round_dir(round_name) / "queried.parquet",
                  queried_frame(table, selection.indices, selection.scores, round_name, sampler))
    print(f"select {round_name}: {sampler} picked {len(selection.indices)} items")


def run_full(params: Params) -> None:
    """Write data/full/metrics.json: the same head trained on every pool label (the ceiling)."""
    table = PoolTable.load()
    features = load_features()
    pool = table.split_range("pool")
    head = fit_head(params, table, features, np.arange(pool.start, pool.stop), round_seed(params.get("seed", int), "full"))
    metrics = {"labels": int(pool.stop - pool.start), "val_top1": head.history["val_top1"]}
    metrics.update(test_metrics(table, features, head.weight, head.bias))
    write_json(FULL_DIR / "metrics.json", metrics)
    print(f"full: {metrics['labels']} labels, test top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}")
