"""Selection sharded over processes (two gloo processes on CPU) equals one process, item for item."""

import os
import pickle
import socket

import numpy as np
import pytest
import torch.multiprocessing as mp

from al_core.errors import InputError
from al_core.samplers import boundary, select_with_scores
from tests.samplers.conftest import make_problem

CASES = [
    ("base", {"order": "round_robin"}, 23), ("base", {"order": "sequential"}, 23), ("mase", {}, 17),
    ("margin", {}, 17), ("confidence", {}, 17), ("entropy", {}, 17), ("margin_clustering", {"candidates_factor": 3}, 11),
]
CHUNK = 13


def inputs():
    features, weight, bias, mask, _ = make_problem(seed=5, n=400, d=10, c=6, labeled=30)
    cluster_ids = np.random.default_rng(0).integers(0, 9, size=400)
    return dict(features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=3, chunk_size=CHUNK), cluster_ids


def run_cases(shard=(0, 1), gather=None) -> list:
    common, cluster_ids = inputs()
    results = []
    for name, options, budget in CASES:
        options = dict(options, **({"cluster_ids": cluster_ids} if name == "margin_clustering" else {}))
        selection = select_with_scores(name, budget, options=options, shard=shard, gather=gather, **common)
        results.append((selection.indices.tolist(), selection.scores.tobytes()))
    return results


def worker(rank: int, world: int, port: int, out: str, tight: bool) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    if tight:  # BASE's candidate lists run out: the re-stream path, sharded too
        boundary.BASE_SLACK_FACTOR, boundary.BASE_SLACK_EXTRA = 0, 1

    def gather(value):
        values = [None] * world
        dist.all_gather_object(values, value)
        return values

    try:
        results = run_cases((rank, world), gather)
    finally:
        dist.destroy_process_group()
    with open(f"{out}.{rank}", "wb") as handle:
        pickle.dump(results, handle)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("tight", [False, True], ids=["one pass", "re-stream"])
def test_two_processes_select_what_one_process_selects(tmp_path, monkeypatch, tight):
    if tight:
        monkeypatch.setattr(boundary, "BASE_SLACK_FACTOR", 0)
        monkeypatch.setattr(boundary, "BASE_SLACK_EXTRA", 1)
    single = run_cases()
    out = str(tmp_path / "result")
    mp.spawn(worker, args=(2, free_port(), out, tight), nprocs=2, join=True)
    for rank in (0, 1):
        with open(f"{out}.{rank}", "rb") as handle:
            sharded = pickle.load(handle)
        assert len(sharded) == len(single) == len(CASES)
        for (name, options, _), got, expected in zip(CASES, sharded, single):
            assert got == expected, (rank, name, options)


def test_samplers_that_cannot_shard_say_so():
    common, _ = inputs()
    with pytest.raises(InputError, match="sampler 'coreset' does not run sharded"):
        select_with_scores("coreset", 5, shard=(0, 2), gather=lambda value: [value, value], **common)
    with pytest.raises(InputError, match="needs gather"):
        select_with_scores("margin", 5, shard=(0, 2), **common)
