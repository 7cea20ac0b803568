"""The ImageNet-shaped synthetic benchmark pool (Gaussian classes of unequal sizes and spreads, a
head near the class centres: a saturated softmax), and the float16 pool writer the other pools share.
``benchmarks.realistic_pool`` builds the unsaturated, long-tailed pool on the same writer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_pool(path: Path, n: int, d: int, block_of, chunk: int = 65536) -> np.ndarray:
    """``path`` as an (n, d) float16 .npy written ``chunk`` rows at a time from ``block_of(start,
    stop)`` (float32 rows), atomically; kept when it exists. Returns its memory map."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, d))
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            out[start:stop] = block_of(start, stop)
        out.flush()
        del out
        os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def build_pool(workdir: Path, n: int, d: int, c: int, seed: int, chunk: int = 65536):
    """Write features.npy (N, d) float16 and labels.npy; return memmaps, head and labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)).astype(np.float32)
    sizes = rng.zipf(1.5, size=c).astype(np.float64).clip(1, 50) + 10  # unequal class sizes
    probabilities = sizes / sizes.sum()
    labels = rng.choice(c, size=n, p=probabilities).astype(np.int64)
    spreads = rng.uniform(0.5, 2.0, size=c).astype(np.float32)  # unequal class spreads
    def block_of(start: int, stop: int) -> np.ndarray:
        block = rng.standard_normal(size=(stop - start, d), dtype=np.float32)
        block *= spreads[labels[start:stop], None]
        block += centers[labels[start:stop]]
        return block

    features = write_pool(workdir / f"features_{n}_{d}_{c}_{seed}.npy", n, d, block_of, chunk)
    head_rng = np.random.default_rng(seed + 1)
    weight = (centers / np.sqrt(d) + 0.01 * head_rng.normal(size=(c, d))).astype(np.float32)
    bias = (0.1 * head_rng.normal(size=c)).astype(np.float32)
    return features, weight, bias, labels
