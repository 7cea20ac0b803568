"""Dataset readers: ``DATASETS[name](root, **options) -> Dataset`` (train and test splits, class names).

- ``fashion_mnist``: the original IDX files (Debian ``dataset-fashion-mnist``), in memory.
- ``cifar10``: torchvision's ``cifar-10-batches-py`` folder, in memory.
- ``imagefolder``: ``root/train/<class>/*`` and ``root/val/<class>/*`` image files (ImageNet layout).
- ``manifest``: a CSV/Parquet table ``path,label[,split]`` of image files.
- ``features``: precomputed embeddings, ``features.npy`` plus ``items.parquet`` (id, label, split[, path]).
"""

from pathlib import Path

import numpy as np

from al_core.data.cifar10 import load_cifar10
from al_core.data.dataset import Dataset, Split, check_labels, listed_index, long_tail_index
from al_core.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from al_core.data.features import load_feature_dataset
from al_core.data.folders import load_image_folder, load_manifest


def load_fashion_mnist_dataset(root: str | Path, **_) -> Dataset:
    splits = load_fashion_mnist(root)
    (train_images, train_labels), (test_images, test_labels) = splits["train"], splits["test"]
    return Dataset(
        train=Split(ids=np.arange(len(train_labels), dtype=np.int64), labels=train_labels, images=train_images),
        test=Split(ids=np.arange(len(test_labels), dtype=np.int64) + len(train_labels), labels=test_labels, images=test_images),
        class_names=FASHION_MNIST_CLASSES,
    )


DATASETS = {
    "fashion_mnist": load_fashion_mnist_dataset,
    "cifar10": lambda root, **_: load_cifar10(root),
    "imagefolder": load_image_folder,
    "manifest": load_manifest,
    "features": load_feature_dataset,
}

__all__ = ["DATASETS", "Dataset", "FASHION_MNIST_CLASSES", "Split", "check_labels", "listed_index",
           "load_fashion_mnist", "long_tail_index"]
