"""embed: features of every image with the frozen backbone (once per backbone)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from al_core.artifacts import atomic_path, read_json, write_json, write_npy, write_npz
from al_core.backbones import load_backbone
from al_core.features import extract_features, extraction_fingerprint, pick_device, resolve_precision
from al_core.linear import feature_statistics
from pipeline.artifacts import EMBED_DIR, EMBED_META, FEATURE_STATS, FEATURES, PREPARE_DIR, PoolTable, load_images
from pipeline.distributed import process_group, relaunch, under_torchrun
from pipeline.params import BackboneSettings, Params, preprocessing_overrides

PARTIAL_ROOT = Path("data/.embed-partial")
UNREADABLE = EMBED_DIR / "unreadable.csv"


def run_embed(params: Params) -> None:
    """Write data/embed/features.npy ``(N, d) float16`` in pool-table row order, stats.npz
    (per-dimension mean/std of the training pool, no labels used) and meta.json (backbone, ids
    order hash, throughput). Finished shards live in data/.embed-partial until the end, so a
    killed run resumes. With ``backbone.processes`` > 1 it runs itself under torchrun (gloo on
    CPU, NCCL on GPUs), each process computing every W-th shard; the result is the same file.
    With ``data.dataset: features`` no backbone runs: the user's rows are copied instead."""
    table = PoolTable.load()
    if "feature_row" in table.frame.columns:
        _gather_precomputed(table)
        return
    processes = params.settings.backbone.processes
    if processes > 1 and not under_torchrun():
        relaunch("embed", processes, params.path)
        return
    with process_group():
        _embed(params.settings.backbone)


def _embed(backbone: BackboneSettings) -> None:
    """`run_embed`'s work in one process; ``backbone``: that section of `pipeline.params.Settings`."""
    table = PoolTable.load()
    name = backbone.name
    checkpoint = backbone.checkpoint
    part = backbone.checkpoint_part
    image_size = backbone.image_size
    batch_size = backbone.batch_size
    device = backbone.device
    ids = table.frame["id"].to_numpy()
    images, content = load_images(table, image_size)
    # The whole id order and image content name the resumable work: any change starts afresh.
    shard_size = backbone.shard_size
    model, preprocessing, load_report = load_backbone(name, checkpoint, part, preprocessing_overrides(backbone))
    precision = resolve_precision(backbone.precision, pick_device(device))
    fingerprint = extraction_fingerprint(name, f"{checkpoint}#{part}", image_size, shard_size,
                                         hashlib.sha256(ids.tobytes()).hexdigest(), content, preprocessing, precision)
    work_dir = PARTIAL_ROOT / fingerprint
    if load_report is not None:
        print(f"embed: {checkpoint}: {load_report.summary()}")
    started = time.perf_counter()
    features = extract_features(
        model, images, image_size=image_size, preprocessing=preprocessing, work_dir=work_dir,
        batch_size=batch_size, device=device, shard_size=shard_size, precision=precision,
    )
    seconds = time.perf_counter() - started
    if features is None:  # a torchrun rank other than 0: its shards are written, rank 0 assembles
        return
    failed = getattr(images, "failed", {})
    if failed:  # files that passed prepare's check but failed now (changed since): black images
        rows = sorted(failed)
        with atomic_path(UNREADABLE, suffix=".csv") as tmp:
            pl.DataFrame({"id": ids[rows], "path": [images.paths[r] for r in rows], "error": [failed[r] for r in rows]}).write_csv(tmp)
        print(f"warning: embed: {len(rows)} image(s) could not be decoded and were embedded as black images; see {UNREADABLE}")
    mean, std = feature_statistics(features[table.split_range("pool")])
    write_npy(FEATURES, features)
    write_npz(FEATURE_STATS, mean=mean, std=std)
    write_json(EMBED_META, {
        "backbone": name,
        "checkpoint": checkpoint,
        "checkpoint_load": None if load_report is None else load_report.summary(),
        "preprocessing": {"mean": list(preprocessing.mean), "std": list(preprocessing.std), "interpolation": preprocessing.interpolation},
        "image_size": image_size,
        "device": str(pick_device(device)),
        "precision": precision,
        "rows": int(features.shape[0]),
        "dim": int(features.shape[1]),
        "dtype": str(features.dtype),
        "row_order": "rows of data/prepare/pool.parquet",
        "first_ids": ids[:5].tolist(),
        "processes": int(os.environ.get("WORLD_SIZE", 1)),
        "seconds": round(seconds, 1),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 1),
        "unreadable": len(failed),
    })
    shutil.rmtree(work_dir, ignore_errors=True)
    print(f"embed: {features.shape[0]} x {features.shape[1]} features in {seconds:.0f} s "
          f"({len(images) / max(seconds, 1e-9):.0f} img/s)")


def _gather_precomputed(table: PoolTable) -> None:
    """``data.dataset: features``: no backbone runs; the user's rows are copied in pool-table order
    into data/embed/features.npy (float16, as the extracted features), with the pool's statistics.
    Memory O(chunk * d): the source is memory-mapped and the output written through a memory map."""
    from tqdm import tqdm

    from al_core.data.features import copy_rows, open_features

    source_file = Path(read_json(PREPARE_DIR / "meta.json")["features_file"])
    source = open_features(source_file)
    rows = table.frame["feature_row"].to_numpy()
    started = time.perf_counter()
    with atomic_path(FEATURES, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(rows.shape[0], source.shape[1]))
        copy_rows(source, rows, out, table.frame["id"].to_numpy(), str(source_file),
                  progress=lambda starts: tqdm(starts, desc="embed: copying features", unit="chunk", disable=None))
        out.flush()
        del out
    features = np.load(FEATURES, mmap_mode="r")
    mean, std = feature_statistics(features[table.split_range("pool")])
    write_npz(FEATURE_STATS, mean=mean, std=std)
    seconds = time.perf_counter() - started
    write_json(EMBED_META, {
        "backbone": None, "precomputed": str(source_file), "source_dtype": str(source.dtype),
        "rows": int(features.shape[0]), "dim": int(features.shape[1]), "dtype": str(features.dtype),
        "row_order": "rows of data/prepare/pool.parquet", "first_ids": table.frame["id"].to_numpy()[:5].tolist(),
        "seconds": round(seconds, 1),
    })
    print(f"embed: {features.shape[0]} x {features.shape[1]} precomputed features copied from {source_file} in {seconds:.0f} s")
