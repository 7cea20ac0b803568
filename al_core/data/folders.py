"""Image files named by a directory tree (ImageFolder, the ImageNet layout) or by a manifest table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from al_core.data.dataset import UNLABELED, Dataset, Split, check_labels, read_table
from al_core.errors import DatasetMissingError, InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _image_files(directory: Path) -> list[str]:
    found = []
    for folder, _, files in os.walk(directory, followlinks=True):
        found += [os.path.join(folder, name) for name in files if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def _class_tree(directory: Path, classes: tuple[str, ...] | None, require_images: bool = False) -> tuple[list[str], list[int], tuple[str, ...]]:
    subdirs = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not subdirs:
        raise InputError(f"{directory} has no class subdirectories; expected {directory}/<class>/<image> "
                         "(for a flat folder with a label file, write a manifest: path,label,split)")
    classes = classes or tuple(subdirs)
    index = {name: position for position, name in enumerate(classes)}
    unknown = [name for name in subdirs if name not in index]
    if unknown:
        raise InputError(f"{directory}: class folders {unknown[:5]} are not among the {len(classes)} training classes")
    paths, labels = [], []
    for name in subdirs:
        files = _image_files(directory / name)
        if require_images and not files:
            raise InputError(f"{directory / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}): a class that can "
                             "never be labeled; remove the folder or add its images")
        paths += files
        labels += [index[name]] * len(files)
    return paths, labels, classes


def load_image_folder(root: str | Path, classes: tuple[str, ...] | None = None, **_) -> Dataset:
    """Labeled (a simulation): ``root/train/<class>/*`` (the pool), ``root/test/<class>/*`` (the
    test set) and optionally ``root/val/<class>/*`` (the validation set; without it
    ``data.val_size`` training images are held out).

    Unlabeled (a campaign): ``root/pool/**`` (any files, no classes) beside labeled
    ``root/val/<class>/*`` (validation) and optionally ``root/test/<class>/*`` (test); classes come
    from ``val``. An optional ``root/seed/<class>/*`` holds images labeled already: they join the
    pool with their labels (the seed set that replaces the random s0).

    ``val/`` is the validation set in both layouts, ``test/`` the test set. Classes are the
    training (or validation) subfolders in sorted order, or ``classes``; a folder naming a class not
    in that list is an error. Ids: position in the sorted file list, train then val then test.
    """
    root = Path(root)
    if (root / "pool").is_dir():
        return _unlabeled_folder(root, classes)
    train_dir, val_dir, test_dir = root / "train", root / "val", root / "test"
    if not train_dir.is_dir():
        raise DatasetMissingError(f"{root} must hold train/<class>/* and test/<class>/* image folders (and optionally "
                                  "val/<class>/*), or pool/** beside val/<class>/* for unlabeled images")
    if not test_dir.is_dir():
        hint = (": val/ is the validation set here; the test set goes in test/<class>/* (ImageNet's val/ is a test set: "
                f"ln -s val {test_dir})") if val_dir.is_dir() else ""
        raise DatasetMissingError(f"{root} has train/ but no test/<class>/* folder{hint}")
    train_paths, train_labels, classes = _class_tree(train_dir, classes, require_images=True)
    test_paths, test_labels, _ = _class_tree(test_dir, classes)
    if not train_paths or not test_paths:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {train_dir if not train_paths else test_dir}")
    dataset = _from_files(train_paths, train_labels, test_paths, test_labels, classes)
    if not val_dir.is_dir():
        return dataset
    val_paths, val_labels, _ = _class_tree(val_dir, classes, require_images=True)
    offset = len(train_paths) + len(test_paths)
    val = Split(ids=np.arange(offset, offset + len(val_paths), dtype=np.int64), labels=np.asarray(val_labels, dtype=np.int64),
                paths=np.asarray(val_paths, dtype=object))
    return Dataset(train=dataset.train, test=dataset.test, class_names=dataset.class_names, val=val)


def _unlabeled_folder(root: Path, classes: tuple[str, ...] | None) -> Dataset:
    if not (root / "val").is_dir():
        raise DatasetMissingError(f"{root}/pool holds the unlabeled pool; labeled {root}/val/<class>/* (validation) must "
                                  f"sit beside it (and {root}/test/<class>/* for test accuracy)")
    pool_paths = _image_files(root / "pool")
    if not pool_paths:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root / 'pool'}")
    val_paths, val_labels, classes = _class_tree(root / "val", classes, require_images=True)
    # Without a labeled test set the rounds still train and select; evaluate says what it cannot report.
    test_paths, test_labels, _ = _class_tree(root / "test", classes) if (root / "test").is_dir() else ([], [], classes)
    pool_labels = [UNLABELED] * len(pool_paths)
    if (root / "seed").is_dir():
        seed_paths, seed_labels, _ = _class_tree(root / "seed", classes)
        pool_paths, pool_labels = seed_paths + pool_paths, seed_labels + pool_labels
    dataset = _from_files(pool_paths, pool_labels, test_paths, test_labels, classes)
    val_ids = np.arange(len(val_paths), dtype=np.int64) + len(pool_paths) + len(test_paths)
    return Dataset(train=dataset.train, test=dataset.test, class_names=dataset.class_names,
                   val=Split(ids=val_ids, labels=np.asarray(val_labels, dtype=np.int64), paths=np.asarray(val_paths, dtype=object)))


def _from_files(train_paths, train_labels, test_paths, test_labels, classes) -> Dataset:
    train_ids = np.arange(len(train_paths), dtype=np.int64)
    test_ids = np.arange(len(test_paths), dtype=np.int64) + len(train_paths)
    return Dataset(
        train=Split(ids=train_ids, labels=np.asarray(train_labels, dtype=np.int64), paths=np.asarray(train_paths, dtype=object)),
        test=Split(ids=test_ids, labels=np.asarray(test_labels, dtype=np.int64), paths=np.asarray(test_paths, dtype=object)),
        class_names=tuple(classes),
    )


def load_manifest(root: str | Path, classes: tuple[str, ...] | None = None, test_fraction: float = 0.1,
                  split_seed: int = 0, **_) -> Dataset:
    """A CSV or Parquet table ``path,label[,split]``; relative paths are resolved against its folder.

    Labels are class names or integers. Class list: ``classes`` when given (a label outside it
    is an error), else the sorted distinct labels of the train rows (then a test label unseen in
    training is an error). ``split`` is train, test, or val (the validation set; without val rows
    ``data.val_size`` training rows are held out); without a split column, a seeded
    ``test_fraction`` of the rows is the test set.

    An unlabeled pool: ``split`` holds ``pool`` rows, whose ``label`` may be empty (unlabeled; a
    labeled one belongs to the seed set), ``val`` rows (the validation set) and ``test`` rows;
    classes: ``classes``, else the sorted labels of the val and seed rows.
    """
    path = Path(root)
    if not path.is_file():
        raise DatasetMissingError(f"manifest {path} does not exist (expected a .csv or .parquet with path,label[,split])")
    frame = read_table(path)
    missing = {"path", "label"} - set(frame.columns)
    if missing:
        raise InputError(f"manifest {path} lacks column(s) {sorted(missing)}; it has {frame.columns}")
    files = [str(p) if Path(p).is_absolute() else str(path.parent / p) for p in frame["path"].cast(pl.String)]
    seen: dict[str, int] = {}
    for row, file in enumerate(files):
        if file in seen:
            raise InputError(f"manifest {path} lists {file} twice (rows {seen[file] + 1} and {row + 1}); "
                             "each image may appear once (one label, one split)")
        seen[file] = row
    if "split" in frame.columns and "pool" in set(frame["split"].cast(pl.String).str.to_lowercase().to_list()):
        return _unlabeled_manifest(path, frame, np.asarray(files, dtype=object), classes)
    is_val = np.zeros(frame.height, dtype=bool)
    if "split" in frame.columns:
        split = frame["split"].cast(pl.String).str.to_lowercase().replace({"validation": "val"})
        bad = sorted(set(split.to_list()) - {"train", "test", "val"})
        if bad:
            raise InputError(f"manifest {path}: column split holds {bad[:5]}; expected train, test or val")
        is_test = (split == "test").to_numpy()
        is_val = (split == "val").to_numpy()
        if is_val.any() and not is_test.any():
            raise InputError(f"manifest {path}: val rows are the validation set; the test rows need split test")
    else:
        if not 0 < test_fraction < 1:
            raise InputError(f"data.test_fraction must lie in (0, 1), got {test_fraction}")
        is_test = np.zeros(frame.height, dtype=bool)
        is_test[np.random.default_rng(split_seed).choice(frame.height, size=max(1, round(test_fraction * frame.height)), replace=False)] = True
    raw = frame["label"]
    if raw.dtype.is_integer():
        values = raw.to_numpy().astype(np.int64)
        classes = classes or tuple(str(c) for c in range(int(values[~is_test].max()) + 1))
        labels = check_labels(values, len(classes), f"manifest {path}")
    else:
        names = raw.cast(pl.String).to_list()
        classes = classes or tuple(sorted(set(name for name, test in zip(names, is_test) if not test)))
        index = {name: position for position, name in enumerate(classes)}
        unknown = sorted({name for name in names if name not in index})
        if unknown:
            raise InputError(f"manifest {path}: labels {unknown[:5]} are not among the {len(classes)} classes")
        labels = np.array([index[name] for name in names], dtype=np.int64)
    files = np.asarray(files, dtype=object)
    is_train = ~is_test & ~is_val
    dataset = _from_files(list(files[is_train]), labels[is_train], list(files[is_test]), labels[is_test], classes)
    if not is_val.any():
        return dataset
    offset = int(is_train.sum() + is_test.sum())
    val = Split(ids=np.arange(offset, offset + int(is_val.sum()), dtype=np.int64), labels=labels[is_val], paths=files[is_val])
    return Dataset(train=dataset.train, test=dataset.test, class_names=dataset.class_names, val=val)


def _unlabeled_manifest(path: Path, frame: pl.DataFrame, files: np.ndarray, classes: tuple[str, ...] | None) -> Dataset:
    split = frame["split"].cast(pl.String).str.to_lowercase().replace({"validation": "val"}).to_numpy()
    bad = sorted(set(split.tolist()) - {"pool", "val", "test"})
    if bad:
        raise InputError(f"manifest {path}: with pool rows, column split holds pool, val or test; got {bad[:5]}")
    names = frame["label"].cast(pl.String).fill_null("").to_numpy()
    unlabeled = names == ""
    if unlabeled[split != "pool"].any():
        row = int(np.flatnonzero(unlabeled & (split != "pool"))[0])
        raise InputError(f"manifest {path}: row {row + 1} ({split[row]}) has no label; only pool rows may be unlabeled")
    classes = classes or tuple(sorted(set(names[(split == "val") | ((split == "pool") & ~unlabeled)].tolist())))
    index = {name: position for position, name in enumerate(classes)}
    unknown = sorted({name for name in names[~unlabeled] if name not in index})
    if unknown:
        raise InputError(f"manifest {path}: labels {unknown[:5]} are not among the {len(classes)} classes")
    labels = np.array([index.get(name, UNLABELED) for name in names], dtype=np.int64)
    ids = np.arange(frame.height, dtype=np.int64)

    def take(mask: np.ndarray) -> Split:
        return Split(ids=ids[mask], labels=labels[mask], paths=files[mask])

    if not (split == "val").any():
        raise InputError(f"manifest {path}: an unlabeled pool needs labeled val rows (the validation set)")
    return Dataset(train=take(split == "pool"), test=take(split == "test"), class_names=tuple(classes), val=take(split == "val"))
