"""cluster: the pool's features clustered once per embedding, for the samplers that read clusters
(those with a ``cluster_ids`` option: margin_clustering, typiclust).

Reads data/embed/features.npy (pool rows) and params ``sampler``, ``seed``,
``select.margin_clustering`` (the clustering options: clusters, codebook_size, iterations;
defaults in the sampler); writes data/cluster/clusters.npy ``(N_pool,) int64`` (cluster of each
pool row, rows as in the pool table) and data/cluster/meta.json (sizes, timing). Every round's
select reuses it. For any other sampler it writes an empty clusters.npy at once and computes
nothing (the k-means takes minutes at 1.28M items).
"""

from __future__ import annotations

import time

import numpy as np

from al_core.artifacts import write_json, write_npy
from al_core.clustering import CLUSTERING_OPTIONS, pool_clusters_from_options
from pipeline.artifacts import CLUSTER_DIR, CLUSTERS, PoolTable, load_features, round_seed
from pipeline.params import Params


def clustering_options(data: dict, source: str) -> dict:
    """clusters, codebook_size, iterations: from ``select.margin_clustering`` of the settings
    ``data`` (read from ``source``) or their defaults. Only these keys are read here; the select
    stage checks the sampler's other options."""
    section = (data.get("select") or {}).get("margin_clustering") or {}
    return {
        key: setting.check(f"select.margin_clustering.{key}", section[key], source) if key in section else setting.default
        for key, setting in CLUSTERING_OPTIONS.items()
    }


def reads_clusters(sampler: str) -> bool:
    """Whether ``sampler`` takes the pool's clusters (an unknown name is the select stage's to refuse)."""
    from al_core.samplers import SAMPLERS

    return sampler in SAMPLERS and "cluster_ids" in SAMPLERS[sampler].options


def run_cluster(params: Params) -> None:
    sampler = params.settings.sampler
    options = clustering_options(params.data, str(params.path))  # checked whatever the sampler: a bad value fails at once
    if not reads_clusters(sampler):
        write_npy(CLUSTERS, np.empty(0, dtype=np.int64))
        write_json(CLUSTER_DIR / "meta.json", {"skipped": f"sampler {sampler} reads no clusters"})
        print(f"cluster: skipped, sampler {sampler} reads no clusters")
        return
    table = PoolTable.load()
    features = load_features()[table.split_range("pool")]
    codebook = min(options["codebook_size"], features.shape[0])
    started = time.perf_counter()
    cluster_ids = pool_clusters_from_options(features, options, seed=round_seed(params.settings.seed, "cluster"), progress=True)
    seconds = time.perf_counter() - started
    sizes = np.bincount(cluster_ids)
    write_npy(CLUSTERS, cluster_ids)
    write_json(CLUSTER_DIR / "meta.json", {
        "items": int(features.shape[0]), "clusters": int(sizes.size), "codebook_size": int(codebook),
        "smallest": int(sizes.min()), "largest": int(sizes.max()), "median": float(np.median(sizes)),
        "seconds": round(seconds, 2),
    })
    print(f"cluster: {features.shape[0]} pool items into {sizes.size} clusters (sizes {sizes.min()}..{sizes.max()}, "
          f"median {np.median(sizes):.0f}) via a {codebook}-word codebook in {seconds:.1f} s")
