"""Linear evaluation: a linear head trained on cached, frozen features.

A training set that fits ``memory_limit_bytes`` as float32 (a labeled set of 10,000 x 2048 is
80 MB) lives in memory as one tensor; a larger one (the full-data probe on 1.28M x 2048, 10 GB)
stays in its (memory-mapped) array and each minibatch's rows are read when needed. Both give the
same numbers: standardisation is elementwise, so a batch standardised on its own equals the same
rows of the standardised whole. Features are standardised with statistics passed by the caller
(typically the whole pool's, which needs no labels), and the standardisation is folded back into
the returned head so that ``logits = features @ weight.T + bias`` holds on the raw features the
samplers read.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from al_core.errors import InputError
from al_core.linear import as_float32, chunked_logits, feature_statistics  # noqa: F401  (feature_statistics: re-exported)
from al_core.logistic import fit_logistic_head


SOLVERS = ("sgd", "lbfgs")


@dataclass(frozen=True)
class HeadConfig:
    """``solver`` sgd (default, the paper's head): SGD with momentum and weight decay, cosine
    schedule, early stopping on validation top-1 (the fields from ``lr`` on). lbfgs: penalised
    softmax regression fitted to convergence, the penalty chosen on the validation set
    (`al_core.logistic`; ``max_iter`` L-BFGS iterations at most per penalty)."""

    solver: str = "sgd"
    max_iter: int = 300
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 10
    min_steps_per_epoch: int = 4
    class_weighted: bool = False  # weight the loss by n / (C_seen * n_c): each labeled class counts equally

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise InputError(f"train.solver must be one of {SOLVERS}, got {self.solver!r}")
        for name in ("lr", "batch_size", "max_epochs", "patience", "max_iter"):
            if getattr(self, name) <= 0:
                raise InputError(f"train.{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise InputError(f"train.momentum must lie in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise InputError(f"train.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class LinearHead:
    """``weight (C, d) float32`` and ``bias (C,) float32`` acting on raw features."""

    weight: np.ndarray
    bias: np.ndarray
    history: dict = field(default_factory=dict)

    def logits(self, features: np.ndarray, chunk_size: int = 65536) -> np.ndarray:
        """``(N, C) float32`` logits, computed in chunks (features may be memory-mapped)."""
        return chunked_logits(features, self.weight, self.bias, chunk_size)


def inverse_frequency_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C,) float32`` loss weights n / (C_seen * n_c): every class present counts equally; 0 for absent ones."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    seen = counts > 0
    return torch.where(seen, labels.shape[0] / (seen.sum() * counts.clamp(min=1)), torch.zeros_like(counts)).float()


DEFAULT_MEMORY_LIMIT_BYTES = 2 * 2**30
PROGRESS_MIN_ROWS = 200_000  # training sets from this size on show an epoch bar (on a terminal)


class StandardizedRows:
    """Rows ``rows`` of ``features`` (N, d), standardised as float32 tensors: one in-memory tensor
    when ``len(rows) * d * 4 <= memory_limit_bytes``, else read from ``features`` per batch
    (sorted reads, sequential on a memmap). Memory O(len(rows) * d) or O(batch * d)."""

    def __init__(self, features, rows: np.ndarray, shift: torch.Tensor, scale: torch.Tensor, memory_limit_bytes: int,
                 name: str = "training", row_ids: np.ndarray | None = None):
        self.features, self.rows, self.shift, self.scale, self.name = features, rows, shift, scale, name
        self.row_ids = row_ids
        self.in_memory = None
        if rows.shape[0] * features.shape[1] * 4 <= memory_limit_bytes:
            self.in_memory = self._standardize(rows)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def _standardize(self, rows: np.ndarray) -> torch.Tensor:
        block = as_float32(self.features[rows])
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = int(rows[np.argmin(finite)])
            item = f" (item id {int(self.row_ids[row])})" if self.row_ids is not None else ""
            raise InputError(f"features row {row}{item} of the {self.name} set holds NaN or inf; "
                             "re-run the stage that wrote the features, or drop that item")
        return (torch.from_numpy(block) - self.shift) * self.scale

    def batch(self, positions: torch.Tensor) -> torch.Tensor:
        if self.in_memory is not None:
            return self.in_memory[positions]
        wanted = self.rows[positions.numpy()]
        order = np.argsort(wanted, kind="stable")
        block = self._standardize(wanted[order])
        out = torch.empty_like(block)
        out[torch.from_numpy(order)] = block
        return out

    def all(self) -> torch.Tensor:
        return self.in_memory if self.in_memory is not None else self._standardize(self.rows)


def train_linear_head(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    *,
    num_classes: int,
    config: HeadConfig,
    seed: int,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    train_rows: np.ndarray | None = None,
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
    row_ids: np.ndarray | None = None,
    val_ids: np.ndarray | None = None,
    device: str | None = None,
) -> LinearHead:
    """Train ``num_classes``-way softmax regression: to convergence with the penalty chosen on the
    validation set (``config.solver`` lbfgs, `al_core.logistic`), or by SGD keeping the epoch
    with the best val top-1 (sgd, the paper's head).

    train_features ``(n, d)`` float (may be memory-mapped), train_labels ``(n,) int``; same for
    val. With ``train_rows`` ``(n,) int``, the training set is ``train_features[train_rows]`` of a
    larger ``(N, d)`` array, read per minibatch when it exceeds ``memory_limit_bytes`` as float32.
    ``row_ids`` / ``val_ids`` (one per row of the training / validation array) name an item
    whose features hold NaN or inf in the error. ``device``: a torch device name ("cuda", "cuda:1";
    None or "cpu": the CPU) for the head, the minibatches and the validation set; features are read
    and standardised on the CPU and each minibatch is sent there.
    Cost per epoch (sgd) or L-BFGS evaluation (lbfgs) O((n + n_val) * d * C); memory
    O(min(n, limit) * d + n_val * d + C * d). Deterministic for a seed on one machine (lbfgs draws
    no random number), and the same whether the set is in memory or not.
    """
    rows = np.arange(train_features.shape[0]) if train_rows is None else np.asarray(train_rows, dtype=np.int64)
    if rows.shape[0] == 0:
        raise InputError("cannot train a head on an empty labeled set")
    if rows.shape[0] != train_labels.shape[0]:
        raise InputError(f"{rows.shape[0]} training features but {train_labels.shape[0]} labels")
    if train_features.shape[1] != val_features.shape[1]:
        raise InputError(f"training features have {train_features.shape[1]} columns, validation {val_features.shape[1]}")
    dim = train_features.shape[1]
    mean = np.zeros(dim) if mean is None else np.asarray(mean, dtype=np.float64)
    std = np.ones(dim) if std is None else np.asarray(std, dtype=np.float64)

    device = torch.device(device or "cpu")
    generator = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    scale = torch.from_numpy(1.0 / std).float()
    shift = torch.from_numpy(mean).float()
    x_train = StandardizedRows(train_features, rows, shift, scale, memory_limit_bytes, row_ids=row_ids)
    if x_train.in_memory is not None:
        x_train.in_memory = x_train.in_memory.to(device)
    y_train = torch.tensor(np.asarray(train_labels, dtype=np.int64))
    x_val = StandardizedRows(val_features, np.arange(val_features.shape[0]), shift, scale, memory_limit_bytes, "validation",
                             val_ids).all().to(device)
    y_val = torch.tensor(np.asarray(val_labels, dtype=np.int64)).to(device)

    if config.solver == "lbfgs":
        weights = inverse_frequency_weights(y_train, num_classes)[y_train] if config.class_weighted else None
        fitted = fit_logistic_head(x_train, y_train.numpy(), x_val, y_val, num_classes=num_classes, sample_weights=weights,
                                   device=device, max_iter=config.max_iter)
        history = {"solver": "lbfgs", "l2": fitted["l2"], "val_top1": fitted["val_top1"], "val_loss": fitted["val_loss"],
                   "evaluations": fitted["evaluations"], "seconds": fitted["seconds"], "best_epoch": -1, "epochs_run": 0,
                   "in_memory": x_train.in_memory is not None}
        return _folded(fitted["weight"], fitted["bias"], mean, std, history)

    layer = torch.nn.Linear(dim, num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    layer = layer.to(device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = len(x_train)
    batch_size = min(config.batch_size, max(1, math.ceil(n / config.min_steps_per_epoch)))
    steps_per_epoch = math.ceil(n / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_epochs * steps_per_epoch)
    class_weights = inverse_frequency_weights(y_train, num_classes).to(device) if config.class_weighted else None

    best_accuracy, best_epoch, best_state = -1.0, -1, None
    val_curve = []
    started = time.perf_counter()
    epochs = tqdm(range(config.max_epochs), desc=f"linear head on {n} items", unit="epoch",
                  disable=None if n >= PROGRESS_MIN_ROWS else True)
    for epoch in epochs:
        layer.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(layer(x_train.batch(batch).to(device)), y_train[batch].to(device), weight=class_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if not torch.isfinite(layer.weight).all():
            raise InputError(f"linear head diverged at epoch {epoch} (train.lr={config.lr} too large?)")
        with torch.no_grad():
            accuracy = float((layer(x_val).argmax(dim=1) == y_val).float().mean())
        val_curve.append(accuracy)
        if accuracy > best_accuracy:
            best_accuracy, best_epoch = accuracy, epoch
            best_state = (layer.weight.detach().clone(), layer.bias.detach().clone())
        elif epoch - best_epoch >= config.patience:
            epochs.close()
            break

    weight, bias = (part.cpu() for part in best_state)
    return _folded(weight, bias, mean, std, {
        "solver": "sgd", "best_epoch": best_epoch, "epochs_run": len(val_curve), "val_top1": best_accuracy,
        "seconds_per_epoch": (time.perf_counter() - started) / len(val_curve), "in_memory": x_train.in_memory is not None})


def _folded(weight: torch.Tensor, bias: torch.Tensor, mean: np.ndarray, std: np.ndarray, history: dict) -> LinearHead:
    """The head on raw features: W (x - m) / s + b = (W / s) x + (b - (W / s) m)."""
    folded_weight = weight.double().cpu().numpy() / std[None, :]
    folded_bias = bias.double().cpu().numpy() - folded_weight @ mean
    return LinearHead(weight=folded_weight.astype(np.float32), bias=folded_bias.astype(np.float32), history=history)
