"""A benchmark pool like the ones a real head produces: class geometry, long-tailed class sizes,
and a head whose softmax is not saturated.

The ImageNet-shaped pool of ``benchmarks.pools`` has a head that saturates the softmax (top-two
logit gaps of 29-40), where almost no row needs exact scoring. Here:

- classes: C centres drawn on a sphere of radius ``separation``, items ``centre + N(0, I)``;
- sizes: ImageNet-LT-like, a Pareto profile from ``max_size`` down to ``min_size`` items per class
  (the largest class about 200 times the smallest at the defaults, as in ImageNet-LT: 1280 to 5);
- head: the nearest-class-mean classifier (w_c = mu_c, b_c = -||mu_c||^2 / 2), divided by a
  temperature found by bisection so that the **median top-1 softmax probability** over the pool is
  ``median_top1`` (0.65 by default: inside the 0.5-0.8 a head trained on a partly labeled pool has).

Features are float16 on disk (memory-mapped), as the pipeline stores them. Cost: O(N d) to write
the pool, O(S d C) for the temperature on a sample of S rows.

    python -m benchmarks.realistic_pool --n 100000 --d 2048 --c 1000     # writes benchmarks/.work/...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.pools import build_pool, write_pool

WORK = Path("benchmarks/.work")


def long_tail_sizes(n: int, c: int, ratio: float, seed: int) -> np.ndarray:
    """Class sizes summing to n, the largest ``ratio`` times the smallest, Pareto-shaped, shuffled."""
    profile = ratio ** (-np.arange(c) / max(c - 1, 1))
    sizes = np.maximum(1, np.floor(profile / profile.sum() * n)).astype(np.int64)
    sizes[0] += n - sizes.sum()
    return np.random.default_rng(seed).permutation(sizes)


def softmax_top1(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    return 1.0 / shifted.sum(axis=1)


def calibrate(features: np.ndarray, weight: np.ndarray, bias: np.ndarray, median_top1: float) -> float:
    """Temperature T with median over rows of max softmax(x W^T / T + b / T) = median_top1 (bisection)."""
    logits = np.asarray(features, dtype=np.float32) @ weight.T + bias
    low, high = 1e-3, 1e4  # large T: uniform (top-1 1/C); small T: saturated (1)
    for _ in range(60):
        middle = np.sqrt(low * high)
        if np.median(softmax_top1(logits / middle)) > median_top1:
            low = middle
        else:
            high = middle
    return float(np.sqrt(low * high))


def build_realistic_pool(n: int, d: int, c: int, seed: int = 0, separation: float = 6.0, ratio: float = 200.0,
                         median_top1: float = 0.65, work: Path = WORK, chunk: int = 65536):
    """``(features (N, d) float16 memmap, weight (C, d) float32, bias (C,) float32, labels (N,) int64, info)``."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(c, d))
    centres = (separation * directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(np.float32)
    sizes = long_tail_sizes(n, c, ratio, seed)
    labels = rng.permutation(np.repeat(np.arange(c), sizes))
    def block_of(start: int, stop: int) -> np.ndarray:
        return rng.standard_normal(size=(stop - start, d), dtype=np.float32) + centres[labels[start:stop]]

    features = write_pool(work / f"realistic_{n}_{d}_{c}_{seed}.npy", n, d, block_of, chunk)
    weight = centres.copy()
    bias = (-0.5 * np.einsum("ij,ij->i", centres, centres)).astype(np.float32)
    sample = np.sort(np.random.default_rng(seed + 1).choice(n, size=min(n, 20000), replace=False))
    temperature = calibrate(features[sample], weight, bias, median_top1)
    weight, bias = (weight / temperature).astype(np.float32), (bias / temperature).astype(np.float32)
    logits = np.asarray(features[sample], dtype=np.float32) @ weight.T + bias
    top2 = np.sort(logits, axis=1)[:, -2:]
    info = {"pool": "realistic", "n": n, "d": d, "c": c, "seed": seed, "class_sizes": {"largest": int(sizes.max()),
            "smallest": int(sizes.min())}, "temperature": round(temperature, 4),
            "median_top1_probability": round(float(np.median(softmax_top1(logits))), 4),
            "median_top2_logit_gap": round(float(np.median(top2[:, 1] - top2[:, 0])), 4)}
    return features, weight, bias, labels, info



POOLS = ("imagenet", "realistic", "uniform")
POOL_HELP = ("benchmark pool: imagenet (ImageNet-shaped, saturated head, kept for comparability), realistic "
             "(class geometry, long-tailed sizes, median top-1 probability 0.65) or uniform (the imagenet pool's "
             "features under a head of N(0, 0.02) weights and no bias: a near-uniform softmax)")
UNIFORM_HEAD_SCALE = 0.02


def build_named_pool(name: str, workdir: Path, n: int, d: int, c: int, seed: int):
    """``(features, weight, bias, labels)`` of the benchmark pool ``name`` (see ``POOLS``)."""
    if name == "realistic":
        return build_realistic_pool(n, d, c, seed, work=workdir)[:4]
    if name == "imagenet":
        return build_pool(workdir, n, d, c, seed)
    if name == "uniform":  # every class near the top: the intervals overlap most, the worst case for filtering
        features, _, _, labels = build_pool(workdir, n, d, c, seed)
        weight = np.random.default_rng(seed + 3).normal(0.0, UNIFORM_HEAD_SCALE, size=(c, d)).astype(np.float32)
        return features, weight, np.zeros(c, dtype=np.float32), labels
    raise ValueError(f"unknown pool {name!r}; expected one of {', '.join(POOLS)}")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    *_, info = build_realistic_pool(args.n, args.d, args.c, args.seed)
    print(info)


if __name__ == "__main__":
    main()
