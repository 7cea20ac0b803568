"""Fashion-MNIST from its original IDX files (Debian ``dataset-fashion-mnist`` or torchvision)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from al_core.errors import DatasetMissingError, InputError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
INSTALL_HINT = (
    "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
    f"{DEBIAN_ROOT}), or, where online, `python -c \"import torchvision; "
    "torchvision.datasets.FashionMNIST('data/raw', download=True)\"` and set "
    "data.root: data/raw/FashionMNIST/raw in params.yaml."
)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetMissingError(f"Fashion-MNIST file {stem}[.gz] not found in {root}. {INSTALL_HINT}")


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"{path} is not an unsigned-byte IDX file (bad magic {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise InputError(f"{path} holds {len(data) - offset} bytes of data, header promises {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_fashion_mnist(root: str | Path = DEBIAN_ROOT) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return ``{"train": (images, labels), "test": (images, labels)}``.

    images: ``(N, 28, 28) uint8``; labels: ``(N,) int64`` in 0..9. Raises DatasetMissingError
    with install instructions when the files are absent.
    """
    root = Path(root)
    splits = {}
    for split, (image_stem, label_stem) in _FILES.items():
        images = _read_idx(_find(root, image_stem))
        labels = _read_idx(_find(root, label_stem)).astype(np.int64)
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise InputError(f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} disagree")
        if labels.max() >= len(FASHION_MNIST_CLASSES):
            raise InputError(f"Fashion-MNIST {split} has label {labels.max()}, expected 0..9")
        splits[split] = (images, labels)
    return splits
