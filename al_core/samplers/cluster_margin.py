"""Cluster-Margin (Citovsky et al., NeurIPS 2021; the paper's ref. [16]).

Cluster the pool once (average-linkage HAC, cached across rounds by the caller), then each
round take the ``candidates_factor * budget`` unlabeled items of smallest margin and fill the
batch round-robin over the clusters those candidates fall in, smallest cluster first: one item
per cluster per pass, each cluster's items in increasing margin.
"""

from __future__ import annotations

import numpy as np

from al_core.clustering import CLUSTERING_OPTIONS, pool_clusters_from_options
from al_core.errors import InputError
from al_core.samplers.pool import CLUSTER_IDS, Pool
from al_core.samplers.ranking import select_smallest_scores
from al_core.samplers.registry import Selection, register_sampler
from al_core.samplers.scores import MARGIN
from al_core.schema import positive

OPTIONS = {
    "candidates_factor": positive(default=10, help="smallest-margin candidates per item of the budget"),
    **CLUSTERING_OPTIONS,  # used when cluster_ids is not given; the `cluster` stage reads the same ones
    "cluster_ids": CLUSTER_IDS,
}


def pool_clusters(pool: Pool, seed: int) -> np.ndarray:
    """``(N,) int64`` cluster ids: option ``cluster_ids`` when given, else clustered here."""
    given = pool.cluster_ids()
    if given is not None:
        return given
    if pool.features is None:
        raise InputError("sampler 'margin_clustering' needs features to cluster the pool, or option cluster_ids")
    return pool_clusters_from_options(pool.features, pool.options, seed)


def round_robin(candidates: np.ndarray, cluster_of: np.ndarray, budget: int) -> np.ndarray:
    """Positions into ``candidates`` (already in increasing margin) in round-robin order.

    Clusters are visited from the one with fewest candidates (ties: smaller cluster id); pass k
    takes the k-th candidate of every cluster that has one. O(m log m) for m candidates.
    """
    _, inverse, counts = np.unique(cluster_of, return_inverse=True, return_counts=True)
    cluster_rank = np.empty_like(counts)
    cluster_rank[np.lexsort((np.arange(counts.size), counts))] = np.arange(counts.size)
    by_cluster = np.argsort(inverse, kind="stable")  # keeps margin order inside each cluster
    starts = np.searchsorted(inverse[by_cluster], inverse[by_cluster], side="left")
    rank_in_cluster = np.empty(candidates.size, dtype=np.int64)
    rank_in_cluster[by_cluster] = np.arange(candidates.size) - starts
    return np.lexsort((cluster_rank[inverse], rank_in_cluster))[:budget]


@register_sampler(
    "margin_clustering",
    shardable=True,
    needs=("logits",),
    summary="Cluster-Margin: smallest-margin candidates, round-robin over their average-linkage clusters",
    options=OPTIONS,
)
def margin_clustering_sampler(pool: Pool, budget: int, seed: int) -> Selection:
    """Cluster-Margin with ``candidates_factor`` x budget margin candidates.

    Cost: one streamed margin pass, O(N d C) from features (O(N C) from logits), memory
    O(chunk (d + C) + m) for m = factor * budget candidates; plus, when ``cluster_ids`` is not
    given, the clustering of ``al_core.clustering.cluster_pool`` (k-means codebook of
    ``codebook_size``, then average linkage into ``clusters``).
    Scores: each item's margin.
    """
    factor = pool.option("candidates_factor")
    cluster_ids = pool_clusters(pool, seed)
    available = int((~pool.labeled_mask).sum())
    candidates = select_smallest_scores(pool, min(available, factor * budget), MARGIN)
    order = round_robin(candidates.indices, cluster_ids[candidates.indices], budget)
    return Selection(indices=candidates.indices[order], scores=candidates.scores[order])
