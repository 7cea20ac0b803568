"""Precomputed embeddings (CLIP, DINOv2, your own): an N x d array plus a table describing its rows.

``root/features.npy``: ``(N, d)`` float16 or float32, read memory-mapped (never loaded whole).
``root/items.parquet`` (or ``items.csv``): one row per feature row, in the same order, with
``id`` (unique integer), ``label`` (class index 0..C-1 or class name), ``split`` and optionally
``path`` (the item's file or URL, handed to annotators with each batch).

Two layouts, as for manifests:

- labeled (a simulation): ``split`` is train, test or val (the validation set; without val rows
  ``data.val_size`` training rows are held out); every row has a label.
- unlabeled (a labeling campaign): ``split`` is pool, val or test. Pool rows may have no label
  (an empty cell; a labeled pool row belongs to the seed set, s0); val rows (the validation set)
  and test rows are labeled. Classes: ``data.classes``, else the labels of the val and seed rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from al_core.data.dataset import UNLABELED, Dataset, Split, check_labels, read_table
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


def _integer_column(frame: pl.DataFrame, name: str, table_file: Path, allow_missing: bool) -> np.ndarray:
    """An integer column (``2.0`` read as 2), missing cells as -1 where allowed; else an error naming the row."""
    column = frame[name]
    missing = column.is_null().to_numpy()
    if missing.any() and not allow_missing:
        raise InputError(f"{table_file}: row {int(np.argmax(missing)) + 1} has no {name}; every row needs one")
    values = column.fill_null(0).to_numpy()
    if column.dtype.is_float():
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            row = int(np.argmin(whole))
            raise InputError(f"{table_file}: row {row + 1} has {name} {float(values[row])!r}; expected an integer")
    elif not column.dtype.is_integer():
        raise InputError(f"{table_file}: column {name} must hold integers, got {column.dtype}")
    values = values.astype(np.int64)
    values[missing] = -1
    return values


def _labels(frame: pl.DataFrame, table_file: Path, classes: tuple[str, ...] | None, may_be_unlabeled: np.ndarray,
            defines_classes: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class index per row (UNLABELED where a row that may lack a label has none) and the class
    list (``classes``, else from the rows of ``defines_classes``)."""
    raw = frame["label"]
    if raw.dtype == pl.String:
        raw = raw.str.strip_chars().replace("", None)
        numbers = raw.cast(pl.Float64, strict=False)
        named = (numbers.is_null() & raw.is_not_null()).to_numpy()
        if not named.any() and raw.is_not_null().any():
            raw = numbers  # class indices written as text (a CSV with quoted cells): checked as numbers below
        elif named.any() and (numbers.is_not_null()).any():
            row, number_row = int(np.argmax(named)), int(np.argmax(numbers.is_not_null().to_numpy()))
            raise InputError(f"{table_file}: column label mixes class indices (row {number_row + 1}: {raw[number_row]!r}) "
                             f"and class names (row {row + 1}: {raw[row]!r}); use one or the other")
    unlabeled = raw.is_null().to_numpy()
    if (unlabeled & ~may_be_unlabeled).any():
        row = int(np.argmax(unlabeled & ~may_be_unlabeled))
        raise InputError(f"{table_file}: row {row + 1} ({frame['split'][row]}) has no label; only pool rows may be unlabeled")
    if raw.dtype.is_numeric():
        values = _integer_column(frame.with_columns(raw.alias("label")), "label", table_file, allow_missing=True)
        known = values[~unlabeled & defines_classes]
        classes = classes or tuple(str(c) for c in range(int(known.max()) + 1 if known.size else 0))
        labels = values.copy()
        labels[~unlabeled] = check_labels(values[~unlabeled], len(classes), str(table_file))
        return labels, tuple(classes)
    names = raw.cast(pl.String)
    classes = classes or tuple(sorted(names.filter(pl.Series(~unlabeled & defines_classes)).unique().to_list()))
    index = pl.DataFrame({"label": list(classes), "position": np.arange(len(classes), dtype=np.int64)})
    positions = pl.DataFrame({"label": names}).join(index, on="label", how="left", maintain_order="left")["position"]
    unknown_rows = positions.is_null().to_numpy() & ~unlabeled
    if unknown_rows.any():
        unknown = sorted(set(names.filter(pl.Series(unknown_rows)).to_list()))
        raise InputError(f"{table_file}: labels {unknown[:5]} are not among the {len(classes)} classes")
    return positions.fill_null(UNLABELED).to_numpy().astype(np.int64), tuple(classes)


def load_feature_dataset(root: str | Path, classes: tuple[str, ...] | None = None, **_) -> Dataset:
    """Read ``root/items.*`` and check it against ``root/features.npy``. O(N) time and memory
    for the table; the features are only opened (header), never read here."""
    root = Path(root)
    features_file = root / FEATURES_NAME
    tables = [root / name for name in TABLE_NAMES if (root / name).is_file()]
    if len(tables) > 1:
        raise InputError(f"data.dataset features: {root} holds both {' and '.join(TABLE_NAMES)}; keep the one that "
                         "describes features.npy and move the other away")
    table_file = tables[0] if tables else None
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
    ids = _integer_column(frame, "id", table_file, allow_missing=False)
    duplicated = frame.filter(pl.col("id").is_duplicated())["id"]
    if duplicated.len():
        raise InputError(f"{table_file}: id {duplicated[0]} appears more than once; ids must be unique")
    split = frame["split"].cast(pl.String).str.to_lowercase()
    if split.null_count():
        raise InputError(f"{table_file}: row {int(np.argmax(split.is_null().to_numpy())) + 1} has no split")
    paths = frame["path"].cast(pl.String).to_numpy() if "path" in frame.columns else None
    rows = np.arange(frame.height, dtype=np.int64)
    if "pool" in set(split.unique().to_list()):
        split = split.replace({"validation": "val"}).to_numpy()
        bad = sorted(set(split.tolist()) - {"pool", "val", "test"})
        if bad:
            raise InputError(f"{table_file}: with pool rows, column split holds pool, val or test; got {bad[:5]}")
        labels, classes = _labels(frame, table_file, classes, split == "pool", split != "test")
    else:
        split = split.replace({"validation": "val"}).to_numpy()
        bad = sorted(set(split.tolist()) - {"train", "test", "val"})
        if bad:
            raise InputError(f"{table_file}: column split holds {bad[:5]}; expected train, test or val (or pool, val "
                             "and test for an unlabeled pool)")
        if not (split == "train").any() or not (split == "test").any():
            raise InputError(f"{table_file}: needs train rows and test rows (val rows, the validation set, are optional); "
                             f"got {sorted(set(split.tolist()))}")
        labels, classes = _labels(frame, table_file, classes, np.zeros(frame.height, dtype=bool), split != "test")

    def split_of(mask: np.ndarray) -> Split:
        return Split(ids=ids[mask], labels=labels[mask], paths=None if paths is None else paths[mask], feature_rows=rows[mask])

    if "pool" not in set(split.tolist()):
        val = split_of(split == "val") if (split == "val").any() else None
        return Dataset(train=split_of(split == "train"), test=split_of(split == "test"), class_names=classes,
                       features_file=features_file, val=val)
    if not (split == "val").any():
        raise InputError(f"{table_file}: an unlabeled pool needs labeled val rows (the validation set, for early stopping)")
    return Dataset(train=split_of(split == "pool"), test=split_of(split == "test"), class_names=classes,
                   features_file=features_file, val=split_of(split == "val"))


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
