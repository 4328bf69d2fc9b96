"""A dense ReLU network with a softmax output, trained by minibatch SGD — in plain NumPy.

Logistic regression is the same network with no hidden layer, so both built-ins share this one
implementation. Parameters live in a flat ``{"w0", "b0", "w1", …}`` dict of float32 arrays: that
is what checkpoints store and what data-parallel rounds average.

Everything is float32 (half the memory and twice the BLAS throughput of float64), and scoring
runs in row chunks so the footprint grows with the model's width, not with the validation set.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

Params = dict[str, np.ndarray]

EVAL_CHUNK_ROWS = 4_096


def init_params(
    n_features: int, hidden: Sequence[int], n_classes: int, rng: np.random.Generator
) -> Params:
    """He-normal hidden layers (suits ReLU); a zero output layer for plain logistic regression."""
    sizes = [n_features, *hidden, n_classes]
    params: Params = {}
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        is_output = layer == len(sizes) - 2
        if is_output and not hidden:
            weights = np.zeros((fan_in, fan_out), dtype=np.float32)
        else:
            scale = np.sqrt((1.0 if is_output else 2.0) / fan_in)
            weights = (rng.standard_normal((fan_in, fan_out), dtype=np.float32) * scale).astype(
                np.float32, copy=False
            )
        params[f"w{layer}"] = weights
        params[f"b{layer}"] = np.zeros(fan_out, dtype=np.float32)
    return params


def layer_count(params: Params) -> int:
    return sum(1 for name in params if name.startswith("w"))


def train_epoch(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float,
    batch_size: int,
    l2: float,
    rng: np.random.Generator,
) -> float:
    """One pass over (x, y) in a random order, updating ``params`` in place.

    Returns the epoch's mean cross-entropy (sample-weighted over minibatches, without the L2
    term, so runs with different ``l2`` compare on the same scale).
    """
    order = rng.permutation(x.shape[0])
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        total += _sgd_step(params, x[rows], y[rows], lr, l2) * len(rows)
    return total / max(1, len(order))


def evaluate(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``params`` on (x, y), in bounded-size chunks."""
    if x.shape[0] == 0:
        return float("nan"), float("nan")
    loss_sum = 0.0
    correct = 0
    for start in range(0, x.shape[0], EVAL_CHUNK_ROWS):
        xb, yb = x[start : start + EVAL_CHUNK_ROWS], y[start : start + EVAL_CHUNK_ROWS]
        log_probs = _log_softmax(_forward(params, xb)[-1])
        loss_sum += -float(log_probs[np.arange(len(yb)), yb].sum())
        correct += int((log_probs.argmax(axis=1) == yb).sum())
    return loss_sum / x.shape[0], correct / x.shape[0]


def _forward(params: Params, x: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer: the input, each ReLU output, then the logits."""
    activations = [x]
    layers = layer_count(params)
    for layer in range(layers):
        z = activations[-1] @ params[f"w{layer}"]
        z += params[f"b{layer}"]
        if layer < layers - 1:
            np.maximum(z, 0.0, out=z)
        activations.append(z)
    return activations


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted


def _sgd_step(params: Params, x: np.ndarray, y: np.ndarray, lr: float, l2: float) -> float:
    activations = _forward(params, x)
    log_probs = _log_softmax(activations[-1])
    rows = np.arange(len(y))
    loss = -float(log_probs[rows, y].mean())
    grad = np.exp(log_probs)  # d(loss)/d(logits) = softmax - one_hot, averaged over the batch
    grad[rows, y] -= 1.0
    grad /= np.float32(len(y))
    for layer in reversed(range(layer_count(params))):
        weights = params[f"w{layer}"]
        grad_w = activations[layer].T @ grad
        if l2:
            grad_w += np.float32(l2) * weights
        grad_b = grad.sum(axis=0)
        if layer > 0:  # propagate through the old weights before updating them
            grad = grad @ weights.T
            grad *= activations[layer] > 0
        weights -= np.float32(lr) * grad_w
        params[f"b{layer}"] -= np.float32(lr) * grad_b
    return loss
