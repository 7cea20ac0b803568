"""prepare: pool table (id, label, split) + images."""

from __future__ import annotations

import numpy as np
import polars as pl

from al_core.artifacts import atomic_path, write_json, write_npy, write_parquet
from al_core.data import DATASETS, listed_index, long_tail_index
from al_core.data.images import check_images
from al_core.errors import InputError
from pipeline.artifacts import IMAGES, POOL_TABLE, PREPARE_DIR
from pipeline.params import DataSettings, Params

SKIPPED = PREPARE_DIR / "skipped.csv"


def _read_dataset(data: DataSettings):
    """The dataset ``data`` (that section of `pipeline.params.Settings`) names."""
    if data.dataset not in DATASETS:
        raise InputError(f"params data.dataset {data.dataset!r} is unknown; known: {sorted(DATASETS)}")
    return DATASETS[data.dataset](
        data.root, classes=tuple(map(str, data.classes)) or None, test_fraction=data.test_fraction, split_seed=data.split_seed,
    )


def _drop_unreadable(splits: dict) -> tuple[dict, int]:
    """Check every image file of ``splits`` (name -> Split) once; drop the unreadable ones and
    list them in data/prepare/skipped.csv."""
    paths = [str(path) for split in splits.values() for path in split.paths]
    names = [name for name, split in splits.items() for _ in range(len(split))]
    errors = check_images(paths)
    rows = [{"path": paths[i], "split": names[i], "error": error} for i, error in sorted(errors.items())]
    with atomic_path(SKIPPED, suffix=".csv") as tmp:
        pl.DataFrame(rows, schema={"path": pl.String, "split": pl.String, "error": pl.String}).write_csv(tmp)
    if rows:
        print(f"prepare: skipped {len(rows)} unreadable image(s) of {len(paths)}; list in {SKIPPED}")
    bad = np.zeros(len(paths), dtype=bool)
    bad[list(errors)] = True
    kept, start = {}, 0
    for name, split in splits.items():
        kept[name] = split.take(np.flatnonzero(~bad[start:start + len(split)]))
        start += len(split)
    return kept, len(rows)


def run_prepare(params: Params) -> None:
    """Read the dataset, subsample it when asked, hold out ``data.val_size`` training images.

    Writes data/prepare/pool.parquet (id, label, split in {pool, val, test}, plus path for image
    files, feature_row for precomputed features; rows ordered pool, val, test),
    data/prepare/images.npy (same row order, uint8; only for in-memory datasets),
    data/prepare/skipped.csv (unreadable files; image-file datasets) and meta.json.
    Memory O(N) for the table (and the images of in-memory datasets).
    """
    dataset = _read_dataset(params.settings.data)
    classes = dataset.class_names
    train, test = dataset.train, dataset.test
    split_seed = params.settings.data.split_seed
    meta_extra = {}
    file_list = params.settings.data.file_list
    if file_list:
        train = train.take(listed_index(train, file_list, params.settings.data.root))
        meta_extra["file_list"] = file_list
    ratio = params.settings.data.imbalance_ratio
    unlabeled = dataset.unlabeled_pool
    if unlabeled and (ratio != 1 or file_list):
        raise InputError("data.imbalance_ratio and data.file_list subsample by label: the pool here is unlabeled")
    if ratio != 1:
        train = train.take(long_tail_index(train.labels, len(classes), ratio, split_seed))
        meta_extra["imbalance_ratio"] = ratio
        meta_extra["train_class_counts"] = np.bincount(train.labels, minlength=len(classes)).tolist()
    empty = np.flatnonzero(np.bincount((dataset.val if unlabeled else train).labels, minlength=len(classes)) == 0)
    if empty.size:
        raise InputError(f"class(es) {[classes[c] for c in empty[:5]]} have no {'validation' if unlabeled else 'training'} "
                         f"items ({empty.size} of {len(classes)} classes): they could never be labeled; drop them from "
                         "data.classes or add items")
    splits = {"train": train, "test": test, **({"val": dataset.val} if dataset.val is not None else {})}
    if dataset.stored_as_files:
        splits, skipped = _drop_unreadable(splits)
        meta_extra.update(storage="files", skipped=skipped)
    train, test = splits["train"], splits["test"]
    if dataset.val is not None:  # a validation set of its own (val/ folder, val rows): nothing held out of the pool
        pool, val = train, splits["val"]
        if unlabeled:
            meta_extra["unlabeled_pool"] = True
    else:
        val_size = params.settings.data.val_size
        if not 0 < val_size < len(train):
            raise InputError(f"data.val_size must lie in 1..{len(train) - 1}, got {val_size}")
        rng = np.random.default_rng(split_seed)
        is_val = np.zeros(len(train), dtype=bool)
        is_val[rng.choice(len(train), size=val_size, replace=False)] = True
        pool, val = train.take(np.flatnonzero(~is_val)), train.take(np.flatnonzero(is_val))

    columns = {
        "id": np.concatenate([pool.ids, val.ids, test.ids]).astype(np.int64),
        "label": np.concatenate([pool.labels, val.labels, test.labels]).astype(np.int64),
        "split": ["pool"] * len(pool) + ["val"] * len(val) + ["test"] * len(test),
    }
    if dataset.features_file is not None:
        # Precomputed features: embed gathers these rows of the user's array, in table order.
        columns["feature_row"] = np.concatenate([pool.feature_rows, val.feature_rows, test.feature_rows]).astype(np.int64)
        meta_extra.update(storage="features", features_file=str(dataset.features_file.resolve()))
    if pool.paths is not None:
        columns["path"] = [str(p) for p in np.concatenate([pool.paths, val.paths, test.paths])]
    elif dataset.features_file is None:
        write_npy(IMAGES, np.concatenate([pool.images, val.images, test.images]))
    write_parquet(POOL_TABLE, pl.DataFrame(columns))
    write_json(PREPARE_DIR / "meta.json", {
        "dataset": params.settings.data.dataset,
        "num_classes": len(classes),
        "class_names": list(classes),
        "sizes": {"pool": len(pool), "val": len(val), "test": len(test)},
        **meta_extra,
    })
    print(f"prepare: {len(pool)} pool / {len(val)} val / {len(test)} test images, {len(classes)} classes")
