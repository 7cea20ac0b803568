"""TypiClust (Hacohen, Dekel & Weinshall, ICML 2022): the most typical item of each uncovered cluster.

A low-budget sampler ("Active Learning on a Budget: Opposite Strategies Suit High and Low
Budgets"), TPC_RP in the paper: cluster the whole pool, labeled items included, into |L| + B
clusters by k-means (capped at ``max_clusters``, 500 in the authors' code); visit the clusters
that hold the fewest labeled items first, the largest first among equals, and cycle through them
while budget is left; from each visited cluster take its unlabeled item of highest typicality,

    Typicality(x) = ( (1/K) * sum_{x_i in K-NN(x)} ||x - x_i||_2 )^(-1)        (paper, Sec. 3.2)

K = min(``neighbours``, m // 2) nearest neighbours (at least 1) among the m unlabeled items of the
cluster not picked yet (the authors' code; a lone item is taken as it is, score NaN).

Where the paper and the authors' code differ, option ``distance`` offers both: ``euclidean``
(default, the paper's formula) or ``squared`` (the authors' code, whose faiss index returns squared
L2 distances). With |L| + B clusters at most |L| are covered, so "fewest labeled first" is the
paper's "B largest uncovered clusters" whenever the cap does not bind. Clusters of at most
``min_cluster_size`` items (the code drops them) are visited after all others, so the sampler
always returns the budget. Ties: lowest pool index.

Cost: k-means on a 65,536-row sample, O(S K d I), and one O(N K d) assignment pass (or
``cluster_ids`` given); then each pick O(m^2 d) for the m remaining items of its cluster (the
cluster's typicality is recomputed after it loses its pick), memory O(m d + chunk m). Meant for
small budgets, as in its paper: B picks from clusters of N / K items cost B (N/K)^2 d.
"""

from __future__ import annotations

import numpy as np

from al_core.clustering import kmeans_codebook
from al_core.samplers.pool import CLUSTER_IDS, Pool, progress
from al_core.samplers.registry import Selection, register_sampler
from al_core.schema import at_least, one_of, positive

OPTIONS = {
    "max_clusters": positive(default=500, help="cap on the |L| + B k-means clusters (the authors' code: 500)"),
    "neighbours": positive(default=20, help="K of the K-nearest-neighbour typicality (the paper: 20)"),
    "min_cluster_size": at_least(0, default=5, help="clusters of at most this many items are visited last (the code drops them)"),
    "distance": one_of("euclidean", "squared", default="euclidean",
                       help="typicality from mean euclidean (the paper) or squared euclidean (the authors' code) kNN distances"),
    "iterations": positive(default=10, help="Lloyd iterations of the k-means"),
    "cluster_ids": CLUSTER_IDS,
}
TYPICALITY_BLOCK = 1024  # rows of the (block, m) distance matrix computed at once


def typicality(points: np.ndarray, neighbours: int, squared: bool) -> np.ndarray:
    """``(m,) float64`` inverse mean distance of each row of ``points`` ``(m, d)`` to its
    ``neighbours`` nearest other rows (+inf when that mean is 0). Cost O(m^2 d), memory O(block m)."""
    points = points.astype(np.float64)
    norms = np.einsum("ij,ij->i", points, points)
    out = np.empty(points.shape[0])
    for start in range(0, points.shape[0], TYPICALITY_BLOCK):
        block = slice(start, min(start + TYPICALITY_BLOCK, points.shape[0]))
        distances = np.maximum(norms[block, None] + norms[None, :] - 2.0 * (points[block] @ points.T), 0.0)
        distances[np.arange(distances.shape[0]), np.arange(block.start, block.stop)] = np.inf  # not its own neighbour
        nearest = np.partition(distances, neighbours - 1, axis=1)[:, :neighbours]
        mean = nearest.mean(axis=1) if squared else np.sqrt(nearest).mean(axis=1)
        with np.errstate(divide="ignore"):
            out[block] = 1.0 / mean
    return out


def visiting_order(cluster_ids: np.ndarray, labeled_mask: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """Cluster ids by (too small last, fewest labeled items, largest, lowest id). O(N + K log K)."""
    clusters = int(cluster_ids.max()) + 1
    sizes = np.bincount(cluster_ids, minlength=clusters)
    labeled = np.bincount(cluster_ids[labeled_mask], minlength=clusters)
    present = np.flatnonzero(sizes)
    keys = (present, -sizes[present], labeled[present], sizes[present] <= min_cluster_size)
    return present[np.lexsort(keys)]


def pool_cluster_ids(pool: Pool, budget: int, seed: int) -> np.ndarray:
    """Option ``cluster_ids`` when given, else k-means of the whole pool into min(|L| + B, max_clusters, N)."""
    given = pool.cluster_ids()
    if given is not None:
        return given
    clusters = min(int(pool.labeled_mask.sum()) + budget, pool.option("max_clusters"), pool.size)
    _, assignments = kmeans_codebook(pool.features, clusters, seed=seed, iterations=pool.option("iterations"),
                                     chunk_size=pool.chunk_size)
    return assignments


@register_sampler("typiclust", needs=("features",), options=OPTIONS,
                  summary="TypiClust (TPC_RP): most typical unlabeled item of each least-covered k-means cluster")
def typiclust_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Scores: the typicality of each pick when it was picked (NaN for a lone item)."""
    cluster_ids = pool_cluster_ids(pool, budget, seed)
    order = visiting_order(cluster_ids, pool.labeled_mask, pool.option("min_cluster_size"))
    unlabeled = pool.unlabeled_indices
    grouped = unlabeled[np.argsort(cluster_ids[unlabeled], kind="stable")]  # by cluster, pool order inside
    bounds = np.searchsorted(cluster_ids[grouped], order)
    ends = np.searchsorted(cluster_ids[grouped], order, side="right")
    remaining = {int(cluster): grouped[lo:hi] for cluster, lo, hi in zip(order, bounds, ends)}
    squared = pool.option("distance") == "squared"
    picked, scores = [], []
    position = 0
    steps = progress(range(budget), total=budget, work=budget * (pool.size / max(len(order), 1)) ** 2 * pool.features.shape[1],
                     desc="typiclust: one pick per cluster", unit="pick")
    for _ in steps:
        while remaining[int(order[position % len(order)])].size == 0:  # budget <= unlabeled items: one has some
            position += 1
        cluster = int(order[position % len(order)])
        members = remaining[cluster]
        if members.size == 1:
            best, score = 0, np.nan
        else:
            neighbours = max(1, min(pool.option("neighbours"), members.size // 2))
            values = typicality(pool.gather_features(members), neighbours, squared)
            best = int(np.argmax(values))  # members are in pool order: ties go to the lowest index
            score = float(values[best])
        picked.append(int(members[best]))
        scores.append(score)
        remaining[cluster] = np.delete(members, best)
        position += 1
    return Selection(indices=np.asarray(picked, dtype=np.int64), scores=np.asarray(scores, dtype=np.float64))
