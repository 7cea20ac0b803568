"""CIFAR-10 from torchvision's on-disk format (``cifar-10-batches-py``), read by torchvision.

``torchvision.datasets.CIFAR10`` checks every file against its published MD5 before reading,
so a truncated or foreign file is refused rather than half-read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from al_core.data.dataset import Dataset, Split, check_labels
from al_core.errors import DatasetMissingError

FOLDER = "cifar-10-batches-py"
INSTALL_HINT = (
    "Where online: python -c \"import torchvision; torchvision.datasets.CIFAR10('data/raw', download=True)\" "
    "and set data.root: data/raw"
)


def load_cifar10(root: str | Path) -> Dataset:
    """50,000 train / 10,000 test ``(32, 32, 3) uint8`` images from ``root/cifar-10-batches-py``
    (or ``root`` being that folder). Cost: reads and MD5-checks the six files (~180 MB)."""
    from torchvision.datasets import CIFAR10

    root = Path(root)
    if root.name == FOLDER and (root / "batches.meta").exists():
        root = root.parent
    splits = {}
    for name, train in (("train", True), ("test", False)):
        try:
            splits[name] = CIFAR10(str(root), train=train, download=False)
        except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
            raise DatasetMissingError(f"CIFAR10 not found or corrupted in {root / FOLDER} (torchvision: {error}). "
                                      f"{INSTALL_HINT}") from None
    names = tuple(splits["train"].classes)
    train_labels = check_labels(np.asarray(splits["train"].targets, dtype=np.int64), len(names), str(root / FOLDER))
    test_labels = check_labels(np.asarray(splits["test"].targets, dtype=np.int64), len(names), str(root / FOLDER / "test_batch"))
    return Dataset(
        train=Split(ids=np.arange(len(train_labels), dtype=np.int64), labels=train_labels,
                    images=np.ascontiguousarray(splits["train"].data, dtype=np.uint8)),
        test=Split(ids=np.arange(len(test_labels), dtype=np.int64) + len(train_labels), labels=test_labels,
                   images=np.ascontiguousarray(splits["test"].data, dtype=np.uint8)),
        class_names=names,
    )
