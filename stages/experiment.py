"""One experiment's stage commands in-process, in dvc.yaml's order, for ``al study run`` (which
runs many cells without DVC's bookkeeping). The study's bookkeeping (`pipeline.study`) gets
these two functions from the command line, so the lower floor never imports the stages."""

from __future__ import annotations

from pipeline.params import Params
from stages.cluster import reads_clusters, run_cluster
from stages.embed import run_embed
from stages.evaluate import run_evaluate
from stages.full import run_full
from stages.init import run_init
from stages.labels import run_labels
from stages.prepare import run_prepare
from stages.report import run_report
from stages.select import run_select
from stages.train import run_train


def run_prepare_and_embed(params: Params) -> None:
    """What a dataset needs once (cwd: its folder): the pool table and the features."""
    run_prepare(params)
    run_embed(params)


def run_experiment(params: Params) -> None:
    """Every round of one experiment, then the full probe and the report (cwd: the cell's folder)."""
    run_init(params)
    run_labels(params, "init")
    if reads_clusters(params.settings.sampler):
        run_cluster(params)
    for round_name, previous in params.schedule().items():
        run_train(params, round_name, previous)
        run_evaluate(params, round_name)
        run_select(params, round_name)
        run_labels(params, round_name)
    run_full(params)
    run_report(params)
