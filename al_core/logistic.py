"""A converged linear head: multinomial logistic regression with an L2 penalty, fitted by L-BFGS.

The paper's head (`al_core.train.train_linear_head`: SGD, early stopping on validation) is
a noisy estimator: retrained on the same labels from another seed, or on one more batch, it moves
a few percent of its predictions for no reason in the data. This head minimises a strictly convex
objective to convergence,

    mean_i w_i * CE(W x_i + b, y_i) + (l2 / 2) * ||W||^2          (x_i standardised, b unpenalised)

so its solution is unique: the same labels give the same head whatever the starting point, the
seed or the order of the rows, and a round's head moves only as far as its new labels move it.
The penalty ``l2`` is chosen on the validation set, by its log-loss (smoother from round to
round than its top-1), among `L2_GRID`, walking from the strongest penalty to the weakest
(each fit warm-started from the one before, the first from the previous round's head when the
caller passes it) and stopping once the validation log-loss rose twice in a row.

Cost: each L-BFGS iteration is one or a few passes over the labeled set, O(n * d * C) each
(chunked: memory O(chunk * (d + C) + C * d), float64 products); a fit takes tens of iterations
when warm-started, a few hundred at most (``max_iter``). Deterministic for given inputs on one
machine: no random number is drawn, and the chunks are summed in a fixed order.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from al_core.errors import InputError

L2_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)  # penalties tried, strongest first (standardised features)
IN_MEMORY_BYTES = 4 << 30  # a labeled set up to this size as float64 is converted once, not per evaluation
CHUNK_ROWS = 8192


def _loss_and_gradient(rows, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, l2: float,
                       sample_weights: torch.Tensor, device: torch.device) -> tuple[float, torch.Tensor, torch.Tensor]:
    """The objective and its gradient, summed over ``rows`` (a StandardizedRows) chunk by chunk in a
    fixed order, in float64 (float32 products would leave the optimum blurred at about 1e-3 in
    the logits on ill-conditioned problems: then the order of the rows could flip a prediction)."""
    n = rows.shape[0] if isinstance(rows, torch.Tensor) else len(rows)
    total = torch.zeros((), dtype=torch.float64, device=device)
    grad_weight = torch.zeros_like(weight, dtype=torch.float64)
    grad_bias = torch.zeros_like(bias, dtype=torch.float64)
    for start in range(0, n, CHUNK_ROWS):
        if isinstance(rows, torch.Tensor):  # the whole set, float64, on the device
            block = rows[start:start + CHUNK_ROWS]
        else:
            block = rows.batch(torch.arange(start, min(start + CHUNK_ROWS, n))).to(device).double()
        target = labels[start:start + block.shape[0]]
        scale = sample_weights[start:start + block.shape[0]].double()
        log_probs = torch.log_softmax(block @ weight.T + bias, dim=1)
        total += -(scale * log_probs.gather(1, target[:, None])[:, 0]).sum()
        residual = log_probs.exp()
        residual[torch.arange(block.shape[0], device=device), target] -= 1.0
        residual *= scale[:, None]
        grad_weight += residual.T @ block
        grad_bias += residual.sum(dim=0)
    loss = total / n + 0.5 * l2 * (weight ** 2).sum()
    return float(loss), grad_weight / n + l2 * weight, grad_bias / n


def _fit(rows, labels, num_classes: int, l2: float, start: tuple[torch.Tensor, torch.Tensor], sample_weights,
         device: torch.device, max_iter: int, tolerance: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    weight = start[0].clone().double().to(device).requires_grad_(True)
    bias = start[1].clone().double().to(device).requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, max_eval=max_iter * 5 // 4,
                                  tolerance_grad=tolerance, tolerance_change=1e-12, history_size=20,
                                  line_search_fn="strong_wolfe")
    evaluations = [0]

    def closure():
        with torch.no_grad():
            loss, grad_weight, grad_bias = _loss_and_gradient(rows, labels, weight, bias, l2, sample_weights, device)
        weight.grad, bias.grad = grad_weight, grad_bias
        evaluations[0] += 1
        return torch.tensor(loss, dtype=torch.float64)

    optimizer.step(closure)
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        raise InputError(f"the logistic-regression head diverged (l2 {l2}); the features may hold extreme values")
    return weight.detach(), bias.detach(), evaluations[0]


def validation_log_loss(x_val: torch.Tensor, y_val: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[float, float]:
    """(mean log-loss, top-1) of a head on the standardised validation rows."""
    logits = x_val @ weight.float().T + bias.float()
    log_probs = torch.log_softmax(logits, dim=1)
    loss = float(-log_probs.gather(1, y_val[:, None]).double().mean())
    return loss, float((logits.argmax(dim=1) == y_val).double().mean())


def fit_logistic_head(rows, labels: np.ndarray, x_val: torch.Tensor, y_val: torch.Tensor, *, num_classes: int,
                      start: tuple[np.ndarray, np.ndarray] | None = None, sample_weights: torch.Tensor | None = None,
                      device: str | torch.device | None = None, max_iter: int = 300, tolerance: float = 1e-6,
                      grid: tuple[float, ...] = L2_GRID) -> dict:
    """Fit the penalised softmax regression on standardised ``rows`` (n, d) with ``labels`` (n,), the
    penalty chosen by the validation log-loss on ``x_val``/``y_val`` (see the module docstring).

    ``start``: ``(weight (C, d), bias (C,))`` in the standardised space to warm-start the first fit
    (the previous round's head), else zeros. Returns ``weight``, ``bias`` (float64 tensors on the
    CPU), ``l2``, ``val_top1``, ``val_loss``, ``evaluations`` and ``seconds``. Cost: see the module."""
    device = torch.device(device or "cpu")
    dim = rows.features.shape[1]
    if rows.in_memory is not None and len(rows) * dim * 8 <= IN_MEMORY_BYTES:
        rows = rows.in_memory.to(device).double()
    target = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=device)
    weights = (torch.ones(len(target)) if sample_weights is None else sample_weights.float()).to(device)
    x_val, y_val = x_val.to(device), y_val.to(device)
    if start is None:
        current = (torch.zeros(num_classes, dim, dtype=torch.float64), torch.zeros(num_classes, dtype=torch.float64))
    else:
        current = (torch.as_tensor(start[0], dtype=torch.float64), torch.as_tensor(start[1], dtype=torch.float64))
    started = time.perf_counter()
    best, rises, previous_loss, evaluations = None, 0, math.inf, 0
    for l2 in grid:
        weight, bias, used = _fit(rows, target, num_classes, l2, current, weights, device, max_iter, tolerance)
        evaluations += used
        current = (weight, bias)
        loss, top1 = validation_log_loss(x_val, y_val, weight, bias)
        if best is None or loss < best["val_loss"]:
            best = {"weight": weight.cpu(), "bias": bias.cpu(), "l2": l2, "val_loss": loss, "val_top1": top1}
        rises = rises + 1 if loss > previous_loss else 0
        previous_loss = loss
        if rises >= 2:
            break
    best.update(evaluations=evaluations, seconds=time.perf_counter() - started)
    return best
