"""Tiny stand-ins built by the tests themselves: Fashion-MNIST-format IDX files."""

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(f"{path}.gz", "wb") as handle:
            handle.write(data)
    else:
        Path(path).write_bytes(data)


def write_fake_fashion_mnist(root: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Path:
    """IDX files in Fashion-MNIST's layout; each class is a bright band at its own rows."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label + 3: 2 * label + 7, :] = 250
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def enter_workspace(tmp_path: Path, params: dict, monkeypatch) -> Path:
    """A fresh working folder with ``params`` as its params.yaml, made the current directory."""
    import yaml

    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(work)
    return work


def invoke_al(*args: str, expect: int = 0):
    """Run ``al ARGS`` in-process and check its exit code; returns click's result."""
    from typer.testing import CliRunner

    from stages.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == expect, result.output + repr(result.exception)
    return result
