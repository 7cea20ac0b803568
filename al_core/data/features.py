"""Precomputed embeddings (CLIP, DINOv2, your own): an N x d array plus a table describing its rows.

``root/features.npy``: ``(N, d)`` float16 or float32, read memory-mapped (never loaded whole).
``root/items.parquet`` (or ``items.csv``): one row per feature row, in the same order, with
``id`` (unique integer), ``label`` (class index 0..C-1 or class name), ``split`` (train, or
test/val) and optionally ``path`` (the item's file, handed to annotators with each batch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from al_core.data.dataset import Dataset, Split, check_labels, read_table
from al_core.errors import DatasetMissingError, InputError

FEATURES_NAME = "features.npy"
TABLE_NAMES = ("items.parquet", "items.csv")
FEATURE_DTYPES = (np.float16, np.float32)


def open_features(path: Path) -> np.ndarray:
    """``(N, d)`` memory map of a features file, checked for shape and dtype (reads the header only)."""
    try:
        features = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise InputError(f"{path} is not a readable .npy array ({error})") from None
    if features.ndim != 2 or features.dtype not in FEATURE_DTYPES:
        raise InputError(f"{path} must be an (N, d) float16 or float32 array, got shape {features.shape} dtype {features.dtype}")
    return features


def load_feature_dataset(root: str | Path, classes: tuple[str, ...] | None = None, **_) -> Dataset:
    """Read ``root/items.*`` and check it against ``root/features.npy``. O(N) time and memory
    for the table; the features are only opened (header), never read here."""
    root = Path(root)
    features_file = root / FEATURES_NAME
    table_file = next((root / name for name in TABLE_NAMES if (root / name).is_file()), None)
    if not features_file.is_file() or table_file is None:
        raise DatasetMissingError(f"data.dataset features: {root} must hold {FEATURES_NAME} (N x d) and "
                                  f"{' or '.join(TABLE_NAMES)} (id, label, split[, path]; one row per feature row)")
    features = open_features(features_file)
    frame = read_table(table_file)
    missing = {"id", "label", "split"} - set(frame.columns)
    if missing:
        raise InputError(f"{table_file} lacks column(s) {sorted(missing)}; it has {frame.columns}")
    if frame.height != features.shape[0]:
        raise InputError(f"{table_file} has {frame.height} rows but {features_file} has {features.shape[0]}; "
                         "the table must describe every feature row, in order")
    if not frame["id"].dtype.is_integer():
        raise InputError(f"{table_file}: column id must hold integers, got {frame['id'].dtype}")
    ids = frame["id"].to_numpy().astype(np.int64)
    duplicated = frame.filter(pl.col("id").is_duplicated())["id"]
    if duplicated.len():
        raise InputError(f"{table_file}: id {duplicated[0]} appears more than once; ids must be unique")
    split = frame["split"].cast(pl.String).str.to_lowercase().replace({"val": "test", "validation": "test"})
    bad = sorted(set(split.unique().drop_nulls().to_list()) - {"train", "test"}) or (["<empty>"] if split.null_count() else [])
    if bad:
        raise InputError(f"{table_file}: column split holds {bad[:5]}; expected train, test or val")
    is_test = (split == "test").to_numpy()
    raw = frame["label"]
    if raw.dtype.is_integer():
        values = raw.to_numpy().astype(np.int64)
        classes = classes or tuple(str(c) for c in range(int(values[~is_test].max()) + 1))
        labels = check_labels(values, len(classes), str(table_file))
    else:
        names = raw.cast(pl.String)
        classes = classes or tuple(sorted(names.filter(~pl.Series(is_test)).unique().to_list()))
        index = pl.DataFrame({"label": list(classes), "position": np.arange(len(classes), dtype=np.int64)})
        positions = pl.DataFrame({"label": names}).join(index, on="label", how="left", maintain_order="left")["position"]
        if positions.null_count():
            unknown = names.filter(positions.is_null()).unique().sort().to_list()
            raise InputError(f"{table_file}: labels {unknown[:5]} are not among the {len(classes)} classes")
        labels = positions.to_numpy().astype(np.int64)
    paths = frame["path"].cast(pl.String).to_numpy() if "path" in frame.columns else None
    rows = np.arange(frame.height, dtype=np.int64)

    def split_of(mask: np.ndarray) -> Split:
        return Split(ids=ids[mask], labels=labels[mask], paths=None if paths is None else paths[mask], feature_rows=rows[mask])

    if is_test.all() or not is_test.any():
        raise InputError(f"{table_file}: needs rows of both splits (train, and test or val); got only {'test' if is_test.all() else 'train'}")
    return Dataset(train=split_of(~is_test), test=split_of(is_test), class_names=tuple(classes), features_file=features_file)


def copy_rows(source: np.ndarray, rows: np.ndarray, out: np.ndarray, ids: np.ndarray, source_name: str,
              chunk_size: int = 65536, progress=None) -> None:
    """``out[i] = source[rows[i]]`` in chunks (``out`` typically a float16 memmap), refusing rows
    that hold NaN or inf after the conversion (float32 beyond float16's range becomes inf).

    Reads each chunk's source rows in sorted order (sequential on a memmap). Cost O(N*d) time,
    O(chunk*d) memory; ``ids`` name the row at fault.
    """
    starts = range(0, rows.shape[0], chunk_size)
    for start in (starts if progress is None else progress(starts)):
        wanted = rows[start:start + chunk_size]
        order = np.argsort(wanted, kind="stable")
        block = np.empty((wanted.shape[0], source.shape[1]), dtype=out.dtype)
        with np.errstate(over="ignore"):  # out-of-range values become inf, refused just below
            block[order] = np.asarray(source[wanted[order]], dtype=out.dtype)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise InputError(f"{source_name} row {int(wanted[bad])} (id {int(ids[start + bad])}) holds NaN or inf "
                             f"(as {out.dtype}); the features must be finite and within float16's range (|x| < 65504)")
        out[start:start + wanted.shape[0]] = block
