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
from al_core.samplers.ranking import exact_scores, interval_candidates, kth_smallest_per_group, select_smallest_scores, smallest_k
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
    summary=("Cluster-Margin: smallest-margin candidates, round-robin over their average-linkage clusters "
             "(of the features, or given as the cluster_ids option; the pipeline's cluster stage makes them)"),
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
    if pool.filters and pool.shard[1] == 1:
        return _refined_margin_clustering(pool, budget, min(available, factor * budget), cluster_ids)
    candidates = select_smallest_scores(pool, min(available, factor * budget), MARGIN)
    order = round_robin(candidates.indices, cluster_ids[candidates.indices], budget)
    return Selection(indices=candidates.indices[order], scores=candidates.scores[order])


def _refined_margin_clustering(pool: Pool, budget: int, count: int, cluster_ids: np.ndarray) -> Selection:
    """The same picks, order and scores as ranking all ``count`` candidates exactly, scoring
    exactly only what decides them (filter and refine, one process).

    1. Membership: among the rows the filter keeps (``interval_candidates``), a row whose upper end
       is below L, the ``count``-th smallest lower end, is among the ``count`` smallest (fewer than
       ``count`` rows can lie below it); the rows whose membership their intervals leave open are
       scored exactly, in rounds (`_members`), and fill the slots left, by (score, index). With
       ``count`` = every unlabeled row all are members.
    2. The round robin takes k_g items from cluster g, a function of the members' cluster sizes
       alone: its k_g smallest margins. Per cluster, a member whose lower end is above the k_g-th
       smallest upper end of its cluster cannot be among them; the others are scored exactly.
    3. Each cluster's members go to the round robin with its k_g smallest first, in exact (score,
       index) order: it takes exactly those, in the order ranking every candidate would give.
    Cost: one streamed pass plus the exact scores of about the budget and the rows whose intervals
    overlap the two cut-offs (not ``count``); memory O(rows kept).
    """
    found = interval_candidates(pool, count, MARGIN)
    exact = np.full(found.rows.shape[0], np.nan)
    # every row's interval; a row scored exactly becomes the point of its score
    lower, upper = np.array(found.lower, dtype=np.float64), np.array(found.upper, dtype=np.float64)
    if count >= found.rows.shape[0]:
        members = np.arange(found.rows.shape[0])
    else:
        members = _members(pool, found, count, exact, lower, upper)
    rows, clusters = found.rows[members], cluster_ids[found.rows[members]]
    group = np.unique(clusters, return_inverse=True)[1]
    # k_g depends on the members' cluster sizes only: any order inside the clusters gives it.
    taken = np.bincount(group[round_robin(rows, clusters, budget)], minlength=int(group.max(initial=-1)) + 1)
    lower, upper = lower[members], upper[members]
    threshold = kth_smallest_per_group(upper, group, taken)  # every cluster holds at least the k_g it gives
    contending = np.flatnonzero(lower <= threshold[group])
    needed = members[contending][np.isnan(exact[members[contending]])]
    exact[needed] = exact_scores(pool, MARGIN, found[needed])
    scores = exact[members]
    # Each cluster's k_g smallest (score, index), in that order, ahead of every other member.
    picked = contending[_smallest_per_group(scores[contending], rows[contending], group[contending], taken)]
    picked = picked[np.lexsort((rows[picked], scores[picked]))]
    ordered = np.concatenate([picked, np.setdiff1d(np.arange(members.shape[0]), picked, assume_unique=True)])
    chosen = ordered[round_robin(rows[ordered], clusters[ordered], budget)]
    return Selection(indices=rows[chosen], scores=scores[chosen])


def _members(pool: Pool, found, count: int, exact: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Positions (into ``found``) of the ``count`` smallest exact scores by (score, row), scoring
    exactly only the rows whose intervals leave their membership open. Fills ``exact`` and turns
    those rows' ``lower``/``upper`` into their scores.

    L, the ``count``-th smallest lower end, is at most the ``count``-th smallest score v, and U, the
    ``count``-th smallest upper end, at least v: a row whose upper end is below L is a member, one
    whose lower end is above U is not. The rows in between are scored in rounds, L and U closing in
    on v as their intervals become points; the first round takes only those whose interval holds
    the ``count``-th smallest midpoint (where v most likely lies), so a row that straddles L or U
    but not v is scored only if a later round still finds it open. The exact-scored rows at or
    above L then fill the slots the sure members leave, by (score, row).
    Cost: the exact scores of the rows straddling v, plus those of any later rounds; O(n) per round
    for the n candidates.
    """
    likely = None
    while True:
        cut, top = np.partition(lower, count - 1)[count - 1], np.partition(upper, count - 1)[count - 1]
        open_rows = np.flatnonzero(np.isnan(exact) & (upper >= cut) & (lower <= top))
        if open_rows.shape[0] == 0:
            break
        if likely is None:
            likely = np.partition(np.where(np.isfinite(upper), 0.5 * (lower + upper), lower), count - 1)[count - 1]
            straddling = open_rows[(lower[open_rows] <= likely) & (upper[open_rows] >= likely)]
            open_rows = straddling if straddling.shape[0] else open_rows
        exact[open_rows] = exact_scores(pool, MARGIN, found[open_rows])
        lower[open_rows] = upper[open_rows] = exact[open_rows]
    sure = np.flatnonzero(upper < cut)
    band = np.flatnonzero((upper >= cut) & ~np.isnan(exact))  # the others there have lower ends above U
    chosen, _ = smallest_k(exact[band], found.rows[band], count - sure.shape[0])
    return np.concatenate([sure, band[np.isin(found.rows[band], chosen)]])


def _smallest_per_group(scores: np.ndarray, rows: np.ndarray, group: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Positions of each group g's ``taken[g]`` smallest (score, row). O(n log n)."""
    order = np.lexsort((rows, scores, group))
    starts = np.searchsorted(group[order], np.arange(taken.shape[0] + 1), side="left")
    rank = np.arange(order.shape[0]) - starts[group[order]]
    return order[rank < taken[group[order]]]
