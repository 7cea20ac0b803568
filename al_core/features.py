"""Batched, resumable feature extraction with a frozen backbone.

Images arrive as a ``(N, H, W) uint8`` (grayscale) or ``(N, H, W, 3) uint8`` array, possibly
memory-mapped. Work is split into fixed shards of ``shard_size`` rows; each finished shard is
saved atomically under ``work_dir``, so a killed extraction resumes from the last finished shard.
Cost: one backbone forward per image; memory O(batch_size * image) plus one shard of features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from al_core.artifacts import write_npy
from al_core.backbones import Preprocessing
from al_core.errors import InputError


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def to_model_input(images: np.ndarray, image_size: int, preprocessing: Preprocessing, device: torch.device) -> torch.Tensor:
    """``(B, H, W[, 3]) uint8`` -> ``(B, 3, S, S) float32`` normalised, channels_last."""
    batch = torch.from_numpy(np.array(images, copy=True)).to(device)
    batch = batch.unsqueeze(1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
    batch = batch.float().div_(255.0)
    if batch.shape[-1] != image_size or batch.shape[-2] != image_size:
        batch = F.interpolate(batch, size=(image_size, image_size), mode="bilinear", align_corners=False)
    batch = batch.expand(-1, 3, -1, -1)
    mean = torch.tensor(preprocessing.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, device=device).view(1, 3, 1, 1)
    return ((batch - mean) / std).contiguous(memory_format=torch.channels_last)


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
) -> np.ndarray:
    """Return ``(N, num_features) float16`` features of ``images``, in input order.

    Finished shards stay in ``work_dir`` until the caller removes it; calling again with the same
    ``work_dir`` skips them. Raises InputError on an empty or non-uint8 input.
    """
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) == 0:
        raise InputError(f"images must be a non-empty (N, H, W[, 3]) uint8 array, got {images.dtype} {images.shape}")
    torch_device = pick_device(device)
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    model = model.to(torch_device).to(memory_format=torch.channels_last).eval()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    total = len(images)
    starts = range(0, total, shard_size)
    shards = []
    with tqdm(total=total, unit="img", desc=f"embed {image_size}px on {torch_device}", disable=not progress) as bar:
        for index, start in enumerate(starts):
            stop = min(start + shard_size, total)
            shard_path = work_dir / f"shard_{index:05d}.npy"
            if shard_path.exists():
                shard = np.load(shard_path)
                if shard.shape[0] != stop - start:
                    raise InputError(f"{shard_path} has {shard.shape[0]} rows, expected {stop - start}; delete {work_dir}")
                bar.update(stop - start)
            else:
                parts = []
                for batch_start in range(start, stop, batch_size):
                    batch_stop = min(batch_start + batch_size, stop)
                    inputs = to_model_input(images[batch_start:batch_stop], image_size, preprocessing, torch_device)
                    use_bf16 = torch_device.type == "cuda"
                    with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        outputs = model(inputs)
                    parts.append(outputs.float().cpu().numpy().astype(np.float16))
                    bar.update(batch_stop - batch_start)
                shard = np.concatenate(parts)
                write_npy(shard_path, shard)
            shards.append(shard)
    features = np.concatenate(shards)
    if not np.isfinite(features).all():
        bad = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise InputError(f"backbone produced NaN/inf features for image {bad} (float16 overflow?)")
    return features
