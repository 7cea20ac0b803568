"""CIFAR-10 in torchvision's on-disk format (``cifar-10-batches-py``), read without torchvision."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from al_core.data.dataset import Dataset, Split, check_labels
from al_core.errors import DatasetMissingError, InputError

FOLDER = "cifar-10-batches-py"
INSTALL_HINT = (
    "Where online: python -c \"import torchvision; torchvision.datasets.CIFAR10('data/raw', download=True)\" "
    "and set data.root: data/raw"
)


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetMissingError(f"CIFAR-10 file {path} not found. {INSTALL_HINT}")
    with path.open("rb") as handle:
        batch = pickle.load(handle, encoding="bytes")  # the format is pickled dicts of numpy arrays
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if data is None or labels is None or np.asarray(data).shape[1:] != (3072,):
        raise InputError(f"{path} is not a CIFAR-10 batch (expected b'data' (n, 3072) and b'labels')")
    images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def load_cifar10(root: str | Path) -> Dataset:
    """50,000 train / 10,000 test ``(32, 32, 3) uint8`` images from ``root`` or ``root/cifar-10-batches-py``."""
    root = Path(root)
    folder = root if (root / "data_batch_1").exists() else root / FOLDER
    if not (folder / "batches.meta").is_file():
        raise DatasetMissingError(f"CIFAR-10 not found in {root} (no {FOLDER}/batches.meta). {INSTALL_HINT}")
    with (folder / "batches.meta").open("rb") as handle:
        names = tuple(name.decode() for name in pickle.load(handle, encoding="bytes")[b"label_names"])
    parts = [_batch(folder / f"data_batch_{index}") for index in range(1, 6)]
    train_images = np.concatenate([images for images, _ in parts])
    train_labels = check_labels(np.concatenate([labels for _, labels in parts]), len(names), str(folder))
    test_images, test_labels = _batch(folder / "test_batch")
    test_labels = check_labels(test_labels, len(names), str(folder / "test_batch"))
    train_ids = np.arange(len(train_labels), dtype=np.int64)
    return Dataset(
        train=Split(ids=train_ids, labels=train_labels, images=train_images),
        test=Split(ids=np.arange(len(test_labels), dtype=np.int64) + len(train_labels), labels=test_labels, images=test_images),
        class_names=names,
    )
