"""select: the next batch to label, chosen by ``sampler`` from the round's unlabeled pool."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from al_core.artifacts import read_npy, write_parquet
from al_core.errors import InputError
from al_core.hardware import machine, pick_device
from al_core.samplers import SAMPLERS, BudgetWarning, select_with_scores
from pipeline.artifacts import (
    CLUSTERS,
    PoolTable,
    labeled_mask,
    load_head,
    load_images,
    load_labeled,
    queried_frame,
    round_dir,
    round_features,
    round_seed,
)
from pipeline.distributed import all_gather_object, process_group, rank_and_processes, relaunch, under_torchrun
from pipeline.label_store import LabelStore, sent_batch_for
from pipeline.params import Params, Settings
from pipeline.sampler_options import check_sampler_settings


def load_cluster_ids(pool_size: int) -> np.ndarray:
    cluster_ids = read_npy(CLUSTERS, mmap=False)
    if cluster_ids.shape != (pool_size,):
        raise InputError(f"{CLUSTERS} has {cluster_ids.shape[0]} entries but the pool has {pool_size} items; "
                         "run `dvc repro cluster` (or `al cluster`) again")
    return cluster_ids


ARTIFACT_OPTIONS = {"cluster_ids": load_cluster_ids}  # options params.yaml cannot hold: arrays a stage computed


def options_for(settings: dict, name: str, pool_size: int) -> dict:
    """What ``params.yaml`` sets for sampler ``name`` (``settings``: its ``select.<name>``, checked),
    plus the arrays it takes from artifacts; the sampler's schema defaults the rest."""
    options = dict(settings)
    spec = SAMPLERS[name]
    for option, load in ARTIFACT_OPTIONS.items():
        if option in spec.options:
            options[option] = load(pool_size)
    return options


def pool_images(table: PoolTable, image_size: int):
    """The pool rows' images (lazily decoded for image files), for samplers that look at pixels."""
    from al_core.data.images import ImageFiles

    images, _ = load_images(table, image_size)
    pool = table.split_range("pool")
    return ImageFiles(images.paths[pool], images.size) if isinstance(images, ImageFiles) else images[pool]


def run_select(params: Params, round_name: str) -> None:
    """Write runs/<round>/queried.parquet: the ``budget`` items to label next (id, round,
    sampler, score, rank), chosen by ``sampler`` from the unlabeled pool.

    With ``select.processes`` > 1 it runs itself under torchrun (gloo on CPU): each process
    streams every W-th block of ``select.chunk_size`` rows, the shards' candidates are merged
    exactly, and rank 0 writes the file one process would (samplers with sharded support; the
    others run in rank 0 alone). Multi-node: start ``torchrun ... -m stages.cli select rK`` yourself.
    """
    settings = params.settings
    processes = settings.select.processes
    if processes > 1 and not under_torchrun():
        relaunch("select", processes, params.path, (round_name,))
        return
    options = check_sampler_settings(params.data, str(params.path), settings.sampler)  # also refuses an unknown sampler
    with process_group():
        _select(settings, options, LabelStore.of(settings.labels, params.path).ledger, round_name)


def _select(settings: Settings, options: dict, ledger: Path | None, round_name: str) -> None:
    """`run_select`'s work in each process: ``options``, the sampler's checked ``select.<sampler>``;
    ``ledger``: the campaign's (`LabelStore.ledger`, None in a simulation)."""
    rank, processes = rank_and_processes()
    sampler = settings.sampler
    if processes > 1 and (sampler not in SAMPLERS or not SAMPLERS[sampler].shardable):
        if rank != 0:
            return
        print(f"select {round_name}: {sampler} does not run sharded; rank 0 selects alone")
        processes = 1
    table = PoolTable.load()
    pool_ids = table.ids("pool")
    sent = sent_batch_for(ledger, round_name, set(load_labeled(round_name)["id"].to_list()), pool_ids)
    if sent is not None:  # a campaign's sent batch is a fact: written back as it went out
        if rank == 0:
            write_parquet(round_dir(round_name) / "queried.parquet", sent)
        return
    head = load_head(round_name)
    budget = settings.budget
    options = options_for(options, sampler, len(pool_ids))
    spec = SAMPLERS[sampler]
    # Only samplers that declare it (the oracle, and balancing's sequential annotation) read labels.
    reads_labels = "labels" in spec.needs
    if reads_labels and settings.labels.source != "oracle":
        raise InputError(f"sampler {sampler!r} reads the true labels of unlabeled items (a simulation), which do not "
                         "exist with labels.source: annotations; pick a sampler that does not (al samplers)")
    labeled = labeled_mask(table, round_name)
    labels = load_labeled(round_name)["label"].to_numpy()
    labeled_counts = np.bincount(labels[labels >= 0], minlength=table.num_classes)  # -1: marked unusable
    features = round_features(round_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BudgetWarning)
        selection = select_with_scores(
            sampler, budget,
            features=features[table.split_range("pool")], head_weight=head["weight"], head_bias=head["bias"],
            labeled_mask=labeled, seed=round_seed(settings.seed, round_name),
            labels=table.labels("pool") if reads_labels else None,
            chunk_size=settings.select.chunk_size, options=options, labeled_class_counts=labeled_counts,
            images=pool_images(table, settings.backbone.image_size) if "images" in spec.needs else None,
            shard=(rank, processes), gather=all_gather_object if processes > 1 else None,
            precision=selection_precision(settings.select.precision),
            device=selection_device(settings.backbone.device),
        )
    if rank != 0:
        return
    for warning in caught:
        print(f"warning: select {round_name}: {warning.message}")
    write_parquet(round_dir(round_name) / "queried.parquet",
                  queried_frame(table, selection.indices, selection.scores, round_name, sampler))
    print(f"select {round_name}: {sampler} picked {len(selection.indices)} items{scoring_note(selection.notes)}")


def selection_precision(requested: str) -> str:
    """``select.precision`` as the samplers take it (``auto``: bfloat16 on CPUs with bfloat16
    instructions for large pools, see ``al_core.samplers.pool.auto_precision``); the picks are
    the same either way. Warns when bfloat16 is asked for on a CPU that would emulate it."""
    if requested == "bfloat16" and not machine()["bf16"]:
        warnings.warn("select.precision is bfloat16 but this CPU has no bfloat16 instructions (AMX, AVX512-BF16): "
                      "torch emulates them, several times slower than float32 (the picks are the same); use float32 or auto")
    return requested


def selection_device(requested: str) -> str | None:
    """``backbone.device`` for the fast product: None (numpy's BLAS) where it resolves to the CPU,
    else the GPU's name (see ``pick_device``); the picks are the same on either."""
    device = pick_device(requested)
    return None if device.type == "cpu" else str(device)


def scoring_note(notes) -> str:
    """``" (float32 product, 812 of 59,000 rows scored exactly)"``, or "" when logits were given;
    after a bfloat16 stream also how many rows took the float32 product, and how many times the
    pool was streamed when more than once (BASE's lists ran out)."""
    if "filter" not in notes:
        return ""
    partial, narrowed = notes.get("partial_rows", 0), notes.get("narrowed_rows", 0)
    where = f" on {notes['device']}" if "device" in notes else ""
    passes, few = notes.get("passes", 1), notes.get("few_class_passes", 0)
    streamed = (f", the pool streamed {passes} times" if passes > 1 else "") + (
        f", {few} more pass{'es' if few > 1 else ''} for a few classes" if few else "")
    return (f" ({notes['filter']} product{where}{streamed}, {notes.get('refined_rows', 0):,} of {notes.get('streamed_rows', 0):,} rows scored exactly"
            + (f", {partial:,} more from the exact logits of a few classes" if partial else "")
            + (f", {narrowed:,} narrowed by a float32 product first" if narrowed else "") + ")")
