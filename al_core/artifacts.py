"""Typed, atomic reading and writing of the pipeline's artifacts.

Every writer goes through a temporary file in the destination directory followed by
``os.replace``, so a killed stage never leaves a half-written artifact behind: either the old
file (or none) is there, or the complete new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from al_core.errors import InputError

if TYPE_CHECKING:  # polars is imported where a table is read: the numeric modules import this one without it
    import polars as pl

TEMP_PREFIX = "."  # temporary files are hidden: ".<name>.<random><suffix>"
RERUN = "re-run the stage that writes it (dvc repro -f <stage>), or restore it with dvc checkout"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    The file gets the permissions any new file would (0666 less the umask), not ``mkstemp``'s
    0600, so a project folder shared by a team stays readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the folder that holds ``path`` for the body (``flock`` on the
    folder itself: no lock file is left behind, and the lock goes with the process, even after
    ``kill -9``): writers of the folder's files take turns, never last-wins. When another process
    holds it, ``waiting`` (if given) is printed once, then the call blocks. Not re-entrant."""
    import fcntl

    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def leftover_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files that a killed writer of ``path`` left beside it (``kill -9`` skips cleanup)."""
    path = Path(path)
    return sorted(path.parent.glob(f"{TEMP_PREFIX}{path.name}.*")) if path.parent.is_dir() else []


def write_json(path: str | os.PathLike, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; run the stage that writes it first")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not valid JSON ({error}); {RERUN}") from None


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array, allow_pickle=False)


def read_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; run the stage that writes it first")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path} is not a readable .npy array ({error}); {RERUN}") from None


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; run the stage that writes it first")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"{path} is not a readable .npz archive ({error}); {RERUN}") from None
    missing = [key for key in required if key not in arrays]
    if missing:
        raise InputError(f"{path} lacks arrays {missing}; it holds {sorted(arrays)}")
    return arrays


def write_parquet(path: str | os.PathLike, frame: pl.DataFrame) -> None:
    # No statistics timestamps or row-group randomness: identical frames give identical bytes.
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=False)


def write_user_table(path: str | os.PathLike, frame: pl.DataFrame, what: str, again: str) -> None:
    """`write_parquet` for users' own data (the annotation store, the ledger of sent batches):
    a failed write (a full disk, a read-only folder) is an InputError saying ``what`` is unchanged
    and to ``again`` after fixing it."""
    try:
        write_parquet(path, frame)
    except OSError as error:
        raise InputError(f"could not write {what} {path} ({error.strerror or error}); it is unchanged: free space "
                         f"(or fix the folder's permissions) and {again}") from None


def read_parquet(path: str | os.PathLike, columns: dict[str, tuple[type, ...]] | None = None) -> pl.DataFrame:
    """Read a Parquet table and check that it has ``columns`` (name -> accepted dtype classes)."""
    import polars as pl

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; run the stage that writes it first")
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(f"{path} is not a readable Parquet file ({str(error).splitlines()[0][:160]}); {RERUN}") from None
    for name, dtypes in (columns or {}).items():
        if name not in frame.columns:
            raise InputError(f"{path} has no column {name!r}; columns are {frame.columns}")
        if dtypes and not isinstance(frame.schema[name], dtypes):
            expected = ", ".join(d.__name__ for d in dtypes)
            raise InputError(f"{path} column {name!r} has dtype {frame.schema[name]}, expected {expected}")
    return frame
