"""The converged head (train.solver lbfgs): the documented objective's optimum, whatever the start or the order.

The reference here is the objective as al_core/logistic.py's docstring writes it, evaluated in
numpy float64: at the head's solution its gradient must vanish (checked by properties only: no
independent solver is at hand).
"""

import numpy as np
import pytest
import torch

from al_core import logistic
from al_core.train import HeadConfig, StandardizedRows, train_linear_head
from tests.test_train import blobs


def objective_gradient(x, y, weight, bias, l2, num_classes):
    """d/d(W, b) of mean_i CE(W x_i + b, y_i) + l2/2 ||W||^2, in float64."""
    logits = x @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(y)), y] -= 1.0
    return probs.T @ x / len(y) + l2 * weight, probs.mean(axis=0)


def standardized(x):
    rows = StandardizedRows(x, np.arange(len(x)), torch.zeros(x.shape[1]), torch.ones(x.shape[1]), 1 << 30)
    return rows


def test_the_solution_zeroes_the_objectives_gradient():
    x, y = blobs(0, 300, d=12, c=4, offset=0.0)
    x = (x / 7).astype(np.float32)
    xv, yv = blobs(0, 120, d=12, c=4, offset=0.0)
    fitted = logistic.fit_logistic_head(standardized(x), y, torch.from_numpy(xv / 7).float(), torch.from_numpy(yv),
                                        num_classes=4, tolerance=1e-7)
    grad_weight, grad_bias = objective_gradient(x.astype(np.float64), y, fitted["weight"].numpy(), fitted["bias"].numpy(),
                                                fitted["l2"], 4)
    assert fitted["l2"] in logistic.L2_GRID
    assert np.abs(grad_weight).max() < 1e-5 and np.abs(grad_bias).max() < 1e-5


def test_the_penalty_is_the_one_with_the_lowest_validation_log_loss():
    x, y = blobs(1, 60, d=20, c=3)
    xv, yv = blobs(1, 300, d=20, c=3)
    x, xv = ((a - 5) / 7 for a in (x, xv))
    losses = {}
    for l2 in logistic.L2_GRID:
        single = logistic.fit_logistic_head(standardized(x.astype(np.float32)), y, torch.from_numpy(xv).float(),
                                            torch.from_numpy(yv), num_classes=3, grid=(l2,))
        losses[l2] = single["val_loss"]
    chosen = logistic.fit_logistic_head(standardized(x.astype(np.float32)), y, torch.from_numpy(xv).float(),
                                        torch.from_numpy(yv), num_classes=3)
    walked = list(logistic.L2_GRID)[:list(logistic.L2_GRID).index(chosen["l2"]) + 1]
    assert chosen["l2"] == min(walked, key=losses.get)
    assert chosen["val_loss"] == pytest.approx(losses[chosen["l2"]], rel=1e-3, abs=1e-5)


def test_same_labels_same_head_whatever_the_order_the_seed_or_the_chunks(monkeypatch):
    x, y = blobs(3, 400)
    xv, yv = blobs(3, 200)
    config = HeadConfig(solver="lbfgs")
    first = train_linear_head(x, y, xv, yv, num_classes=4, config=config, seed=0)
    again = train_linear_head(x, y, xv, yv, num_classes=4, config=config, seed=0)
    assert first.weight.tobytes() == again.weight.tobytes() and first.bias.tobytes() == again.bias.tobytes()
    order = np.random.default_rng(5).permutation(len(y))
    monkeypatch.setattr(logistic, "CHUNK_ROWS", 37)
    shuffled = train_linear_head(x[order], y[order], xv, yv, num_classes=4, config=config, seed=9)
    assert shuffled.history["l2"] == first.history["l2"]
    assert np.array_equal(first.logits(xv).argmax(axis=1), shuffled.logits(xv).argmax(axis=1))
    np.testing.assert_allclose(shuffled.weight, first.weight, atol=2e-3 * np.abs(first.weight).max())


def test_class_weights_and_the_sgd_head():
    x, y = blobs(6, 200)
    xv, yv = blobs(6, 100)
    weighted = train_linear_head(x, y, xv, yv, num_classes=4, config=HeadConfig(solver="lbfgs", class_weighted=True), seed=0)
    assert weighted.history["solver"] == "lbfgs" and (weighted.logits(xv).argmax(axis=1) == yv).mean() > 0.9
    sgd = train_linear_head(x, y, xv, yv, num_classes=4, config=HeadConfig(solver="sgd", max_epochs=5), seed=0)
    assert sgd.history["solver"] == "sgd" and sgd.history["epochs_run"] <= 5
