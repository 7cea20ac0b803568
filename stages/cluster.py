"""cluster: the pool's features clustered once per embedding, for ``margin_clustering``.

Reads data/embed/features.npy (pool rows) and params ``seed``, ``cluster.*``; writes
data/cluster/clusters.npy ``(N_pool,) int64`` (cluster of each pool row, rows as in the pool
table) and data/cluster/meta.json (sizes, timing). Every round's select reuses it.
"""

from __future__ import annotations

import time

import numpy as np

from al_core.artifacts import write_json, write_npy
from al_core.clustering import cluster_pool
from stages.common import CLUSTER_DIR, CLUSTERS, Params, PoolTable, load_features, round_seed


def run_cluster(params: Params) -> None:
    table = PoolTable.load()
    features = load_features()[table.split_range("pool")]
    clusters = params.get("cluster.clusters", int)
    codebook = min(params.get("cluster.codebook_size", int), features.shape[0])
    started = time.perf_counter()
    cluster_ids = cluster_pool(features, clusters, codebook_size=codebook, seed=round_seed(params.get("seed", int), "cluster"),
                               iterations=params.get("cluster.iterations", int), progress=True)
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
