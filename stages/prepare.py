"""prepare: pool table (id, label, split) + images; init: the seeded random initial set s0."""

from __future__ import annotations

import numpy as np
import polars as pl

from al_core.artifacts import write_json, write_npy, write_parquet
from al_core.data import FASHION_MNIST_CLASSES, load_fashion_mnist
from al_core.errors import InputError
from stages.common import IMAGES, INIT_ROUND, POOL_TABLE, PREPARE_DIR, Params, PoolTable, round_dir

DATASETS = {"fashion_mnist": (load_fashion_mnist, FASHION_MNIST_CLASSES)}


def run_prepare(params: Params) -> None:
    """Read the dataset, hold out ``data.val_size`` training images for early stopping.

    Writes data/prepare/pool.parquet (id, label, split in {pool, val, test}; rows ordered pool,
    val, test), data/prepare/images.npy (same row order, uint8) and data/prepare/meta.json.
    """
    name = params.get("data.dataset", str)
    if name not in DATASETS:
        raise InputError(f"params data.dataset {name!r} is unknown; known: {sorted(DATASETS)}")
    loader, class_names = DATASETS[name]
    splits = loader(params.get("data.root", str))
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    val_size = params.get("data.val_size", int)
    if not 0 < val_size < len(train_images):
        raise InputError(f"data.val_size must lie in 1..{len(train_images) - 1}, got {val_size}")
    rng = np.random.default_rng(params.get("data.split_seed", int))
    is_val = np.zeros(len(train_images), dtype=bool)
    is_val[rng.choice(len(train_images), size=val_size, replace=False)] = True
    pool_index, val_index = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    test_ids = np.arange(len(test_images)) + len(train_images)

    frame = pl.DataFrame({
        "id": np.concatenate([pool_index, val_index, test_ids]).astype(np.int64),
        "label": np.concatenate([train_labels[pool_index], train_labels[val_index], test_labels]).astype(np.int64),
        "split": ["pool"] * len(pool_index) + ["val"] * len(val_index) + ["test"] * len(test_ids),
    })
    images = np.concatenate([train_images[pool_index], train_images[val_index], test_images])
    write_npy(IMAGES, images)
    write_parquet(POOL_TABLE, frame)
    write_json(PREPARE_DIR / "meta.json", {
        "dataset": name,
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "sizes": {"pool": int(len(pool_index)), "val": int(val_size), "test": int(len(test_ids))},
    })
    print(f"prepare: {len(pool_index)} pool / {val_size} val / {len(test_ids)} test images, {len(class_names)} classes")


def run_init(params: Params) -> None:
    """Write runs/init/labeled.parquet (empty) and runs/init/queried.parquet (s0, seeded random)."""
    from al_core.samplers import select_with_scores
    from stages.rounds import labeled_frame, queried_frame

    table = PoolTable.load()
    pool_ids = table.ids("pool")
    size = params.get("initial_size", int)
    seed = params.get("seed", int)
    if size <= 0:
        raise InputError(f"params initial_size must be positive, got {size}")
    selection = select_with_scores("random", size, labeled_mask=np.zeros(len(pool_ids), dtype=bool), seed=seed)
    out = round_dir(INIT_ROUND)
    write_parquet(out / "labeled.parquet", labeled_frame(np.empty(0, np.int64), np.empty(0, np.int64), [], []))
    write_parquet(out / "queried.parquet", queried_frame(pool_ids[selection.indices], selection.scores, INIT_ROUND, "random"))
    print(f"init: {len(selection.indices)} items drawn at random with seed {seed}")
