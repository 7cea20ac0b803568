"""The common shape of every dataset reader's result, and the subsets taken of it.

A reader returns a `Dataset`: train and test `Split` s and the class names. A
split holds its images either in memory (``images``, ``(n, H, W[, 3]) uint8``: Fashion-MNIST,
CIFAR-10), as files (``paths``: ImageFolder, manifests), or as rows of a feature array the user
computed elsewhere (``feature_rows``, with optional ``paths`` naming each item's file for
annotators); ``ids`` are stable integer ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from al_core.errors import InputError

UNLABELED = -1  # the label of a pool item nobody has labeled yet (labels then come from annotators)


@dataclass(frozen=True)
class Split:
    ids: np.ndarray  # (n,) int64, unique across the dataset
    labels: np.ndarray  # (n,) int64 in 0..C-1
    images: np.ndarray | None = None  # (n, H, W[, 3]) uint8
    paths: np.ndarray | None = None  # (n,) str
    feature_rows: np.ndarray | None = None  # (n,) int64 rows of Dataset.features_file

    def __post_init__(self):
        if self.feature_rows is None and (self.images is None) == (self.paths is None):
            raise ValueError("a split holds either images or paths (or feature rows)")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, index: np.ndarray) -> "Split":
        return Split(ids=self.ids[index], labels=self.labels[index],
                     images=None if self.images is None else self.images[index],
                     paths=None if self.paths is None else self.paths[index],
                     feature_rows=None if self.feature_rows is None else self.feature_rows[index])


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    class_names: tuple[str, ...]
    features_file: Path | None = None  # (N, d) .npy the splits' feature_rows index; no images then
    val: Split | None = None  # a labeled validation split of its own (unlabeled pools); else held out of train

    @property
    def unlabeled_pool(self) -> bool:
        return bool((self.train.labels == UNLABELED).any())

    @property
    def stored_as_files(self) -> bool:
        """Images are files to decode (and to check at prepare): not for precomputed features."""
        return self.train.paths is not None and self.features_file is None


def read_table(path: Path) -> pl.DataFrame:
    """A user's CSV or Parquet table, or an InputError naming the file and what is wrong with it."""
    try:
        return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=10_000)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(f"{path} is not a readable {'Parquet' if path.suffix == '.parquet' else 'CSV'} table "
                         f"({str(error).splitlines()[0][:160]})") from None


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise InputError(f"{source}: label {int(labels[np.argmax(bad)])} is outside the {num_classes} classes (0..{num_classes - 1})")
    return labels


def long_tail_index(labels: np.ndarray, num_classes: int, imbalance_ratio: float, seed: int) -> np.ndarray:
    """Positions kept for an exponential long tail: class c keeps n_max * ratio^(-c / (C - 1)).

    n_max is the largest class's size; the count is rounded down (at least 1) and a class with
    fewer items keeps them all (as the paper's imbalanced CIFAR-10 with ratio 10). Seeded; the
    kept positions are returned sorted. O(n).
    """
    if imbalance_ratio < 1:
        raise InputError(f"data.imbalance_ratio must be >= 1 (1 = no subsampling), got {imbalance_ratio}")
    if imbalance_ratio == 1:
        return np.arange(labels.shape[0])
    counts = np.bincount(labels, minlength=num_classes)
    rng = np.random.default_rng(seed)
    kept = []
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        exponent = label / max(num_classes - 1, 1)
        target = max(1, int(counts.max() * imbalance_ratio ** -exponent))
        kept.append(members if members.size <= target else rng.choice(members, size=target, replace=False))
    return np.sort(np.concatenate(kept))


def listed_index(split: Split, file_list: str | Path, root: str | Path | None) -> np.ndarray:
    """Positions of the items named in ``file_list`` (ImageNet-LT style: one path or id per line,
    an optional label after a space, which is ignored here). An entry not in the split is an error."""
    file_list = Path(file_list)
    if not file_list.is_file():
        raise InputError(f"data.file_list {file_list} does not exist")
    entries = [line.split()[0] for line in file_list.read_text().splitlines() if line.strip()]
    if split.paths is not None:
        base = Path(root) if root else None
        keys = {str(Path(p).relative_to(base)) if base and Path(p).is_relative_to(base) else str(p): i
                for i, p in enumerate(split.paths)}
    else:
        keys = {str(int(i)): position for position, i in enumerate(split.ids)}
    missing = [entry for entry in entries if entry not in keys]
    if missing:
        raise InputError(f"{file_list}: {len(missing)} entries are not in the training set, e.g. {missing[:3]}")
    return np.sort(np.array([keys[entry] for entry in entries], dtype=np.int64))
