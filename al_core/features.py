"""Batched, resumable feature extraction with a frozen backbone.

Images arrive as a ``(N, H, W) uint8`` (grayscale) or ``(N, H, W, 3) uint8`` array, possibly
memory-mapped. Work is split into fixed shards of ``shard_size`` rows; each finished shard is
saved atomically under ``work_dir``, so a killed extraction resumes from the last finished shard.
Cost: one backbone forward per image; memory O(batch_size * image) plus one shard of features.

Under ``torchrun`` (a process group is initialised), rank r computes shards r, r + W, ... into
the shared ``work_dir``; after a barrier every rank reads all shards, so the result is the
single-process result, row for row (each shard's batches are the same whatever the rank).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from al_core.artifacts import read_json, write_json, write_npy
from al_core.backbones import Preprocessing
from al_core.errors import InputError
from al_core.hardware import pick_device


def default_threads() -> int:
    """CPU threads per process: OMP_NUM_THREADS when set, else the cores shared among the processes
    torchrun started on this node. (CPU kernels' results depend on the thread count: runs that
    must match bit for bit need the same threads per process.)"""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


def to_model_input(images: np.ndarray, image_size: int, preprocessing: Preprocessing, device: torch.device) -> torch.Tensor:
    """``(B, H, W[, 3]) uint8`` -> ``(B, 3, S, S) float32`` normalised, channels_last."""
    batch = torch.from_numpy(np.array(images, copy=True)).to(device)
    batch = batch.unsqueeze(1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
    batch = batch.float().div_(255.0)
    if batch.shape[-1] != image_size or batch.shape[-2] != image_size:
        batch = F.interpolate(batch, size=(image_size, image_size), mode=preprocessing.interpolation,
                              **({} if preprocessing.interpolation == "nearest" else {"align_corners": False}))
    batch = batch.expand(-1, 3, -1, -1)
    mean = torch.tensor(preprocessing.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, device=device).view(1, 3, 1, 1)
    return ((batch - mean) / std).contiguous(memory_format=torch.channels_last)


def rank_and_world_size() -> tuple[int, int]:
    """(rank, world size) of the current torch.distributed group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``float32`` or ``bfloat16``: ``auto`` is bfloat16 autocast on CUDA and on CPUs with bfloat16
    instructions (AMX or AVX512-BF16, where torch's CPU kernels use them), float32 elsewhere."""
    if precision not in PRECISIONS:
        raise InputError(f"backbone.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device.type == "cuda":
        return "bfloat16" if precision == "auto" else precision
    from al_core.hardware import machine

    has_bf16 = machine()["bf16"]
    if precision == "bfloat16" and not has_bf16:
        warnings.warn("backbone.precision is bfloat16 but this CPU has no bfloat16 instructions (AMX, AVX512-BF16): "
                      "torch emulates them, several times slower than float32; use float32 or auto", stacklevel=2)
    if precision != "auto":
        return precision
    return "bfloat16" if has_bf16 else "float32"


def extraction_fingerprint(*parts: object) -> str:
    """A short hash naming a resumable extraction (backbone, size, input identity...)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


@torch.inference_mode()
def extract_features(
    model: torch.nn.Module,
    images: np.ndarray,
    *,
    image_size: int,
    preprocessing: Preprocessing,
    work_dir: str | os.PathLike,
    batch_size: int = 256,
    shard_size: int = 8192,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = True,
    precision: str = "float32",
) -> np.ndarray | None:
    """Return ``(N, num_features) float16`` features of ``images``, in input order (None on
    torchrun ranks other than 0, which only compute their shards).

    Finished shards stay in ``work_dir`` until the caller removes it; calling again with the same
    ``work_dir`` skips them (name the precision in it: shards of two precisions must not mix).
    ``precision``: ``float32``, ``bfloat16`` (autocast; on CPU fast only with AMX/AVX512-BF16) or
    ``auto`` (`resolve_precision`). Raises InputError on an empty or non-uint8 input.
    """
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) == 0:
        raise InputError(f"images must be a non-empty (N, H, W[, 3]) uint8 array, got {images.dtype} {images.shape}")
    torch_device = pick_device(device)
    use_bf16 = resolve_precision(precision, torch_device) == "bfloat16"
    torch.set_num_threads(num_threads or default_threads())
    model = model.to(torch_device).to(memory_format=torch.channels_last).eval()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    rank, world_size = rank_and_world_size()
    total = len(images)
    starts = list(range(0, total, shard_size))
    mine = [index for index in range(len(starts)) if index % world_size == rank]
    description = f"embed {image_size}px on {torch_device}" + (f" (rank {rank}/{world_size})" if world_size > 1 else "")
    with tqdm(total=sum(min(starts[i] + shard_size, total) - starts[i] for i in mine), unit="img",
              desc=description, disable=not progress) as bar:
        for index in mine:
            start, stop = starts[index], min(starts[index] + shard_size, total)
            shard_path = work_dir / f"shard_{index:05d}.npy"
            if shard_path.exists():
                bar.update(stop - start)
                continue
            parts = []
            for batch_start in range(start, stop, batch_size):
                batch_stop = min(batch_start + batch_size, stop)
                inputs = to_model_input(images[batch_start:batch_stop], image_size, preprocessing, torch_device)
                with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    outputs = model(inputs)
                parts.append(outputs.float().cpu().numpy().astype(np.float16))
                bar.update(batch_stop - batch_start)
            # The shard's undecodable images are kept beside it, so a resumed run still reports them.
            failed = {position: why for position, why in getattr(images, "failed", {}).items() if start <= position < stop}
            write_json(shard_path.with_suffix(".failed.json"), {str(position): why for position, why in failed.items()})
            write_npy(shard_path, np.concatenate(parts))
    if world_size > 1:
        dist.barrier()
        if rank != 0:
            return None
    shards = []
    for index, start in enumerate(starts):
        shard_path = work_dir / f"shard_{index:05d}.npy"
        shard = np.load(shard_path)
        failures = shard_path.with_suffix(".failed.json")
        if failures.exists() and hasattr(images, "failed"):
            images.failed.update({int(position): why for position, why in read_json(failures).items()})
        if shard.shape[0] != min(start + shard_size, total) - start:
            raise InputError(f"{shard_path} has {shard.shape[0]} rows, expected {min(start + shard_size, total) - start}; delete {work_dir}")
        shards.append(shard)
    features = np.concatenate(shards)
    if not np.isfinite(features).all():
        bad = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise InputError(f"backbone produced NaN/inf features for image {bad} (float16 overflow?)")
    return features
