"""End-to-end fine-tuning of backbone + linear head on the labeled set (the paper's setting I).

Every round starts again from the pretrained backbone (the caller loads it fresh), trains the
whole network with SGD + momentum on augmented labeled images (random resized crop and
horizontal flip), a cosine or step schedule, and keeps the epoch with the best validation top-1.
The paper's code uses SGD, lr 0.001, momentum 0.9, batch 128, with weight decay 5e-4 and cosine
annealing on CIFAR-10 and a step schedule (x0.1 every 10 epochs) on ImageNet: the defaults here.

Under torchrun the model is wrapped in DistributedDataParallel: each rank takes every W-th item
of each (seeded, shared) batch order, and validation counts are summed over ranks.
Cost per epoch: O(|L| + |V|) forward passes and O(|L|) backward passes; memory: the model, its
optimizer state, one best-state copy and a batch of images.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from al_core.backbones import Preprocessing
from al_core.errors import InputError
from al_core.features import default_threads, pick_device, rank_and_world_size, to_model_input
from al_core.train import inverse_frequency_weights

SCHEDULES = ("cosine", "step")


@dataclass(frozen=True)
class FinetuneConfig:
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    epochs: int = 20
    schedule: str = "cosine"  # cosine over all steps, or step: lr x gamma every step_epochs
    step_epochs: int = 10
    gamma: float = 0.1
    patience: int = 5
    augment: bool = True
    class_weighted: bool = False  # weight the loss by n / (C_seen * n_c), as the linear head's option
    min_steps_per_epoch: int = 4  # small labeled sets: the batch shrinks so an epoch still takes 4 steps

    def __post_init__(self) -> None:
        for name in ("lr", "batch_size", "epochs", "patience", "step_epochs"):
            if getattr(self, name) <= 0:
                raise InputError(f"finetune.{name} must be positive, got {getattr(self, name)}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"finetune.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0 or not 0 < self.gamma <= 1:
            raise InputError("finetune.momentum must lie in [0, 1), weight_decay >= 0 and gamma in (0, 1]")


@dataclass
class FinetunedModel:
    """The fine-tuned backbone and a head ``weight (C, d)``, ``bias (C,)`` on its raw features."""

    backbone: torch.nn.Module
    weight: np.ndarray
    bias: np.ndarray
    history: dict = field(default_factory=dict)


def augment(batch: torch.Tensor, generator: torch.Generator, min_scale: float = 0.35) -> torch.Tensor:
    """Random resized crop (area 35-100%, aspect 3/4-4/3, bilinear) and horizontal flip of each
    image of ``(B, 3, S, S)``, by torchvision's transforms v2, seeded from ``generator``.

    v2 draws from torch's global generator, so one seed drawn from ``generator`` seeds a forked
    global state for this batch: the same generator state gives the same crops, and the caller's
    global random state is left as it was.
    """
    from torchvision.transforms import v2

    size = batch.shape[-1]
    transform = v2.Compose([
        v2.RandomResizedCrop(size, scale=(min_scale, 1.0), ratio=(3 / 4, 4 / 3), interpolation=v2.InterpolationMode.BILINEAR),
        v2.RandomHorizontalFlip(),
    ])
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([transform(image) for image in batch])


def _top1_correct(model, images, rows, labels, image_size, preprocessing, device, batch_size) -> tuple[int, int]:
    rank, world_size = rank_and_world_size()
    mine = np.arange(rank, rows.shape[0], world_size)
    correct = 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, mine.shape[0], batch_size):
            positions = mine[start:start + batch_size]
            inputs = to_model_input(images[rows[positions]], image_size, preprocessing, device)
            correct += int((model(inputs).argmax(dim=1).cpu() == torch.from_numpy(labels[positions])).sum())
    counts = torch.tensor([correct, mine.shape[0]], dtype=torch.int64)
    if world_size > 1:
        dist.all_reduce(counts)
    return int(counts[0]), int(counts[1])


def finetune(
    backbone: torch.nn.Module,
    images,
    train_rows: np.ndarray,
    train_labels: np.ndarray,
    val_rows: np.ndarray,
    val_labels: np.ndarray,
    *,
    num_classes: int,
    image_size: int,
    preprocessing: Preprocessing,
    config: FinetuneConfig,
    seed: int,
    device: str = "auto",
    progress: bool = True,
) -> FinetunedModel:
    """Fine-tune ``backbone`` (maps images to ``(B, d)`` features) plus a new linear head.

    images: ``(N, H, W[, 3]) uint8`` array-like indexed by ``train_rows``/``val_rows``.
    Deterministic for a seed on one machine and process count.
    """
    if train_rows.shape[0] == 0:
        raise InputError("cannot fine-tune on an empty labeled set")
    if train_rows.shape != train_labels.shape or val_rows.shape != val_labels.shape:
        raise InputError("rows and labels must have the same length")
    torch_device = pick_device(device)
    torch.set_num_threads(default_threads())
    rank, world_size = rank_and_world_size()
    if train_rows.shape[0] < 2 * world_size:
        raise InputError(f"fine-tuning needs at least {2 * world_size} labeled items (BatchNorm needs 2 per process)")
    torch.manual_seed(int(seed))
    order_generator = torch.Generator().manual_seed(int(seed))  # the same on every rank
    augment_generator = torch.Generator().manual_seed(int(seed) * 1000 + rank)
    dim = int(getattr(backbone, "num_features", 0)) or int(backbone(torch.zeros(1, 3, image_size, image_size)).shape[1])
    model = torch.nn.Sequential(backbone, torch.nn.Linear(dim, num_classes)).to(torch_device)
    trained = model
    if world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch_device.index] if torch_device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = train_rows.shape[0]
    batch_size = min(config.batch_size, max(2 * world_size, math.ceil(n / config.min_steps_per_epoch)))
    steps_per_epoch = math.ceil(n / batch_size)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_epochs * steps_per_epoch, gamma=config.gamma)
    labels_tensor = torch.from_numpy(np.array(train_labels, dtype=np.int64))  # a writable copy
    class_weights = inverse_frequency_weights(labels_tensor, num_classes).to(torch_device) if config.class_weighted else None
    best = {"top1": -1.0, "epoch": -1, "state": None}
    curve = []
    use_bf16 = torch_device.type == "cuda"
    bar = tqdm(range(config.epochs), desc=f"fine-tune on {train_rows.shape[0]} labels", unit="epoch", disable=not progress or rank != 0)
    for epoch in bar:
        model.train()
        order = torch.randperm(train_rows.shape[0], generator=order_generator).numpy()
        losses = []
        for start in range(0, order.shape[0], batch_size):
            whole = order[start:start + batch_size]
            if whole.shape[0] < 2 * world_size:  # a tail too small for BatchNorm on every rank
                continue
            batch = np.sort(whole[rank::world_size])
            inputs = to_model_input(images[train_rows[batch]], image_size, preprocessing, torch_device)
            if config.augment:
                inputs = augment(inputs, augment_generator)
            with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = F.cross_entropy(trained(inputs).float(), labels_tensor[batch].to(torch_device), weight=class_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        correct, total = _top1_correct(model, images, val_rows, val_labels, image_size, preprocessing, torch_device, config.batch_size)
        top1 = correct / max(total, 1)
        curve.append(round(top1, 5))
        bar.set_postfix(loss=float(np.mean(losses)) if losses else float("nan"), val_top1=top1)
        if top1 > best["top1"]:
            best = {"top1": top1, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        elif epoch - best["epoch"] >= config.patience:
            break
    model.load_state_dict(best["state"])
    model.eval()
    head = model[1]
    return FinetunedModel(
        backbone=model[0],
        weight=head.weight.detach().float().cpu().numpy(),
        bias=head.bias.detach().float().cpu().numpy(),
        history={"val_top1": best["top1"], "best_epoch": best["epoch"], "epochs_run": len(curve), "val_curve": curve},
    )
