"""Image files on disk: a checked, decoded, fixed-size view usable wherever a uint8 array is.

``ImageFiles(paths, size)[a:b]`` decodes files a..b-1 in a thread pool (PIL releases the GIL
while decoding) into a ``(b - a, size, size, 3) uint8`` array, with the usual evaluation
transform: resize the shorter side to size / 0.875, then crop the centre (256 -> 224 for
ImageNet). ``check_images`` decodes every file once at reduced scale to find unreadable ones
before a long extraction starts. Cost: one decode per image; memory O(batch * size^2).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

CROP_FRACTION = 0.875


def _workers() -> int:
    return max(2, 2 * (os.cpu_count() or 1))


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """``(size, size, 3) uint8``: RGB, shorter side resized to size / 0.875, centre crop."""
    from PIL import Image

    with Image.open(path) as image:
        resize_to = max(size, round(size / CROP_FRACTION))
        image.draft("RGB", (resize_to, resize_to))  # JPEG: decode at the smallest sufficient scale
        image = image.convert("RGB")
        width, height = image.size
        scale = resize_to / min(width, height)
        new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(new_size, Image.Resampling.BILINEAR)
        left, top = (new_size[0] - size) // 2, (new_size[1] - size) // 2
        return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _check(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            image.convert("RGB").load()
        return None
    except Exception as error:  # noqa: BLE001  (any decoder failure means "unreadable")
        return f"{type(error).__name__}: {error}"


def check_images(paths: list[str], progress: bool = True) -> dict[int, str]:
    """``{position: error}`` for every file that cannot be opened and decoded."""
    with ThreadPoolExecutor(_workers()) as pool:
        results = list(tqdm(pool.map(_check, paths, chunksize=64), total=len(paths), unit="img",
                            desc="checking images", disable=not progress))
    return {index: error for index, error in enumerate(results) if error is not None}


class ImageFiles:
    """A read-only ``(N, size, size, 3) uint8`` array-like over image files, decoded on slicing.

    A file that fails to decode here (it passed ``check_images`` earlier, so it changed since)
    becomes a black image and its position is recorded in ``failed``.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: list[str], size: int):
        self.paths = [str(path) for path in paths]
        self.size = size
        self.failed: dict[int, str] = {}
        self._pool = ThreadPoolExecutor(_workers())

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size, self.size, 3)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, position: int) -> np.ndarray:
        try:
            return load_image(self.paths[position], self.size)
        except Exception as error:  # noqa: BLE001
            self.failed[position] = f"{type(error).__name__}: {error}"
            return np.zeros((self.size, self.size, 3), dtype=np.uint8)

    def __getitem__(self, index) -> np.ndarray:
        """A slice or an integer array of positions -> ``(B, size, size, 3) uint8``."""
        if isinstance(index, slice):
            positions = range(*index.indices(len(self.paths)))
        else:
            positions = [int(i) for i in np.asarray(index).reshape(-1)]
        images = list(self._pool.map(self._load, positions))
        return np.stack(images) if images else np.empty((0, self.size, self.size, 3), dtype=np.uint8)


def identity(paths: list[str]) -> str:
    """Path, size and modification time of every file, one line each: names a resumable extraction."""
    lines = []
    for path in paths:
        stat = Path(path).stat()
        lines.append(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return "\n".join(lines)
