"""Clustering of a whole pool for Cluster-Margin: a k-means codebook, then average linkage on it.

Exact average-linkage agglomerative clustering (HAC) of N items needs the N x N distance
matrix: 6.6 TB of float32 for ImageNet's 1.28M images. Here the pool is first quantised to a
codebook of K << N centroids (k-means), and average linkage is run exactly on the quantised
pool: every item stands at its centroid, so the distance between two groups is the size-weighted
mean of centroid-to-centroid distances. With K = N this is plain average-linkage HAC.

Costs (N items, d features, K codewords, S sample rows for fitting, I Lloyd iterations):
k-means O(S K d I) to fit + O(N K d) to assign every item, memory O(S d + K d + chunk K);
HAC by the nearest-neighbour chain, O(K^2) time and a (K, K) float64 matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
from tqdm import tqdm

from al_core.errors import InputError
from al_core.linear import as_float32
from al_core.schema import positive

MAX_CODEBOOK = 16_384  # the (K, K) float64 linkage matrix stays within 2 GiB
# The settings of `pool_clusters_from_options` (margin_clustering's clustering options).
CLUSTERING_OPTIONS = {
    "clusters": positive(default=100, help="average-linkage clusters of the pool"),
    "codebook_size": positive(default=1000, help="k-means centroids the linkage runs on (capped at the pool size; = pool size is exact HAC)"),
    "iterations": positive(default=10, help="Lloyd iterations of the codebook"),
}


def _nearest_centroids(points: np.ndarray, centroids: np.ndarray, centroid_norms: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each row; ties to the lowest index. O(n K d)."""
    distances = centroid_norms[None, :] - 2.0 * (points @ centroids.T)
    return np.argmin(distances, axis=1)


def group_sums(values: np.ndarray, groups: np.ndarray, num_groups: int) -> np.ndarray:
    """``(num_groups, d) float64`` sum of the rows of ``values`` in each group. O(n log n + n d)."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sums = np.zeros((num_groups, values.shape[1]), dtype=np.float64)
    sums[sorted_groups[starts]] = np.add.reduceat(values[order].astype(np.float64), starts, axis=0)
    return sums


def _rows(features: np.ndarray, rows: np.ndarray) -> np.ndarray:
    block = as_float32(features[rows])
    if not np.isfinite(block).all():
        bad = rows[np.flatnonzero(~np.isfinite(block).all(axis=1))[0]]
        raise InputError(f"features row {int(bad)} holds NaN or inf")
    return block


def kmeans_codebook(
    features: np.ndarray,
    codebook_size: int,
    *,
    seed: int,
    iterations: int = 10,
    sample_size: int = 65_536,
    chunk_size: int = 8192,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``codebook_size`` centroids on a seeded sample and assign every row to its nearest one.

    features: ``(N, d)`` float, may be memory-mapped (read in chunks of rows). Initial centroids
    are distinct sample rows; an empty cluster is re-seeded with the sample row farthest from its
    centroid. Returns ``(centroids (K, d) float32, assignments (N,) int64)``.
    """
    size = features.shape[0]
    if not 1 <= codebook_size <= size:
        raise InputError(f"codebook size must lie in 1..{size} (the pool size), got {codebook_size}")
    rng = np.random.default_rng(seed)
    sample_rows = np.sort(rng.choice(size, size=min(size, max(sample_size, codebook_size)), replace=False))
    sample = np.concatenate([_rows(features, sample_rows[s:s + chunk_size]) for s in range(0, sample_rows.size, chunk_size)])
    centroids = sample[np.sort(rng.choice(sample.shape[0], size=codebook_size, replace=False))].copy()
    sample_norms = np.einsum("ij,ij->i", sample, sample)
    for _ in tqdm(range(iterations), desc=f"k-means codebook K={codebook_size}", disable=not progress, leave=False):
        norms = np.einsum("ij,ij->i", centroids, centroids)
        nearest = np.concatenate([_nearest_centroids(sample[s:s + chunk_size], centroids, norms)
                                  for s in range(0, sample.shape[0], chunk_size)])
        counts = np.bincount(nearest, minlength=codebook_size)
        sums = group_sums(sample, nearest, codebook_size)
        filled = counts > 0
        centroids[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
        if not filled.all():
            residual = sample_norms - 2.0 * np.einsum("ij,ij->i", sample, centroids[nearest]) + np.einsum("ij,ij->i", centroids[nearest], centroids[nearest])
            farthest = np.argsort(-residual, kind="stable")[: int((~filled).sum())]
            centroids[~filled] = sample[farthest]
    norms = np.einsum("ij,ij->i", centroids, centroids)
    assignments = np.empty(size, dtype=np.int64)
    for start in tqdm(range(0, size, chunk_size), desc="assigning the pool to the codebook", disable=not progress, leave=False):
        rows = np.arange(start, min(start + chunk_size, size))
        assignments[rows] = _nearest_centroids(_rows(features, rows), centroids, norms)
    return centroids, assignments


def average_linkage(points: np.ndarray, weights: np.ndarray, clusters: int) -> np.ndarray:
    """Average-linkage HAC of weighted points cut at ``clusters`` clusters: ``(K,) int64`` labels.

    points ``(K, d)``, weights ``(K,)`` > 0 (how many items each point stands for). Nearest-
    neighbour chain with the Lance-Williams update d(A+B, X) = (n_A d(A, X) + n_B d(B, X)) /
    (n_A + n_B); average linkage is reducible, so sorting the chain's merges by height gives the
    dendrogram. Labels are numbered by first appearance. O(K^2) time, (K, K) float64 memory.
    """
    count = points.shape[0]
    if count > MAX_CODEBOOK:
        raise InputError(f"average linkage over {count} points needs a {count}x{count} matrix; use at most {MAX_CODEBOOK}")
    if not 1 <= clusters <= count:
        raise InputError(f"clusters must lie in 1..{count}, got {clusters}")
    points = np.asarray(points, dtype=np.float64)
    squared = np.einsum("ij,ij->i", points, points)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * points @ points.T, 0.0))
    np.fill_diagonal(distances, np.inf)
    sizes = np.asarray(weights, dtype=np.float64).copy()
    merges: list[tuple[float, int, int]] = []
    chain: list[int] = []
    active = np.ones(count, dtype=bool)
    while len(merges) < count - 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        current = chain[-1]
        row = distances[current]
        nearest = int(np.argmin(row))
        if len(chain) > 1 and row[chain[-2]] <= row[nearest]:
            nearest = chain[-2]
        if len(chain) > 1 and nearest == chain[-2]:
            chain.pop()
            chain.pop()
            merges.append((float(row[nearest]), current, nearest))
            merged = (sizes[current] * distances[current] + sizes[nearest] * distances[nearest]) / (sizes[current] + sizes[nearest])
            distances[current, :] = merged
            distances[:, current] = merged
            distances[current, current] = np.inf
            distances[nearest, :] = np.inf
            distances[:, nearest] = np.inf
            sizes[current] += sizes[nearest]
            active[nearest] = False
        else:
            chain.append(nearest)
    parent = np.arange(count)

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    # Stable sort by height keeps the chain's order among equal heights, which respects causality.
    for _, first, second in sorted(merges, key=lambda merge: merge[0])[: count - clusters]:
        parent[root(second)] = root(first)
    roots = np.array([root(node) for node in range(count)])
    _, labels = np.unique(roots, return_inverse=True)
    first_seen = np.unique(labels, return_index=True)[1]
    renumber = np.empty_like(first_seen)
    renumber[np.argsort(first_seen)] = np.arange(first_seen.size)
    return renumber[labels].astype(np.int64)


def cluster_pool(
    features: np.ndarray,
    clusters: int,
    *,
    codebook_size: int,
    seed: int,
    iterations: int = 10,
    chunk_size: int = 8192,
    progress: bool = False,
) -> np.ndarray:
    """``(N,) int64`` cluster of every pool row: k-means codebook, then average linkage on it.

    Codewords no row ended up nearest to are left out of the linkage. ``clusters`` is capped at
    the number of non-empty codewords, with a warning.
    """
    centroids, assignments = kmeans_codebook(features, codebook_size, seed=seed, iterations=iterations,
                                             chunk_size=chunk_size, progress=progress)
    counts = np.bincount(assignments, minlength=codebook_size)
    used = np.flatnonzero(counts)
    if clusters > used.size:
        warnings.warn(f"clusters is {clusters} but the k-means codebook has {used.size} non-empty codewords (codebook_size "
                      f"{codebook_size}); making {used.size} clusters: raise codebook_size for more", stacklevel=2)
    labels = average_linkage(centroids[used], counts[used], min(clusters, used.size))
    codeword_label = np.full(codebook_size, -1, dtype=np.int64)
    codeword_label[used] = labels
    return codeword_label[assignments]


def pool_clusters_from_options(features: np.ndarray, options: dict, seed: int, progress: bool = False) -> np.ndarray:
    """`cluster_pool` with the settings of ``CLUSTERING_OPTIONS`` (``options`` holds each,
    checked; the codebook is capped at the pool size). Same cost as `cluster_pool`."""
    return cluster_pool(features, options["clusters"], codebook_size=min(options["codebook_size"], features.shape[0]),
                        seed=seed, iterations=options["iterations"], progress=progress)
