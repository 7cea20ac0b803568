"""A cheap fingerprint of a dataset's files on disk, so that a replaced source is never served stale.

DVC decides whether to re-run ``prepare`` and ``embed`` from their dependencies; the dataset in
``data.root`` usually lives outside the project (``/usr/share/datasets``, a mounted bucket), where
DVC does not look. The ``source`` stage writes this fingerprint on every ``dvc repro``; when the
data is unchanged its file is byte-identical, and nothing downstream runs.

What it reads: the path, size and modification time (ns) of every file under the root; the
content of every file that is not an image (tables, arrays, IDX and CIFAR batches, manifests),
whole up to `WHOLE_BYTES`, else `SAMPLES` blocks spread over the file. Images are
checked by size and time only (a million images cannot be read on every run): an image replaced
by another of the same size with its time preserved (``cp -p``) is not noticed.
Cost: one ``stat`` per file, plus reading the non-image files (at most about
``SAMPLES * BLOCK`` bytes each when large).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from al_core.data.folders import IMAGE_EXTENSIONS
from al_core.errors import InputError

WHOLE_BYTES = 64 << 20  # non-image files up to this size are hashed whole
BLOCK = 1 << 20
SAMPLES = 16  # blocks read from a larger file, first and last included


def _content_digest(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= WHOLE_BYTES:
            for block in iter(lambda: handle.read(BLOCK), b""):
                digest.update(block)
        else:
            for index in range(SAMPLES):
                handle.seek((size - BLOCK) * index // (SAMPLES - 1))
                digest.update(handle.read(BLOCK))
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found = []
    for folder, folders, names in os.walk(root):
        folders.sort()
        found.extend(Path(folder) / name for name in sorted(names) if not name.startswith("."))
    return found


def source_fingerprint(roots: list[str | Path]) -> dict:
    """``{"files", "bytes", "images", "digest"}`` of every file under ``roots`` (files or folders).
    A root that does not exist is an error naming it."""
    digest = hashlib.sha256()
    files = images = total = 0
    for root in map(Path, roots):
        if not root.exists():
            raise InputError(f"data source {root} does not exist")
        for path in _files(root):
            info = path.stat()
            is_image = path.suffix.lower() in IMAGE_EXTENSIONS
            content = "" if is_image else _content_digest(path, info.st_size)
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{content}\n".encode())
            files, images, total = files + 1, images + is_image, total + info.st_size
    return {"files": files, "images": images, "bytes": total, "digest": digest.hexdigest()}
