"""The demo's job: a small fully connected network on handwritten digits.

scikit-learn's bundled 8x8 digits (1,797 images, no download), split 60/20/20 into train,
validation and test sets; a NumPy MLP 64 -> 64 (tanh) -> 10 (softmax) with the mean
cross-entropy loss, its forward and backward passes written here:

    h = tanh(x W1 + b1);  p = softmax(h W2 + b2);  loss = -mean(log p[label])
    dz2 = (p - onehot) / m;  dW2 = h^T dz2;  db2 = sum(dz2)
    dz1 = (dz2 W2^T) * (1 - h^2);  dW1 = x^T dz1;  db1 = sum(dz1)

``train`` runs one rule with mini-batches and early stopping on the validation loss,
restoring the best parameters at the end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import optimizers
from .kernels import RULES
from .training import EarlyStopping

HIDDEN = 64


@dataclass
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_split(seed: int = 0, dtype: Any = np.float64) -> Split:
    """The digits, pixels scaled to [0, 1], split 60/20/20 (stratified, by ``seed``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = (digits.data / 16.0).astype(dtype), digits.target
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, stratify=y,
                                                        random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5,
                                                    stratify=y_rest, random_state=seed)
    return Split(x_train, y_train, x_val, y_val, x_test, y_test)


def init_params(seed: int = 0, n_in: int = 64, hidden: int = HIDDEN, n_out: int = 10,
                dtype: Any = np.float64) -> list[np.ndarray]:
    """[W1, b1, W2, b2], Glorot-uniform weights and zero biases."""
    rng = np.random.default_rng(seed)

    def glorot(a: int, b: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (a + b))
        return rng.uniform(-limit, limit, (a, b)).astype(dtype)
    return [glorot(n_in, hidden), np.zeros(hidden, dtype), glorot(hidden, n_out),
            np.zeros(n_out, dtype)]


def forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hidden activations, class probabilities)."""
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return h, e / e.sum(axis=1, keepdims=True)


def loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """The mean cross-entropy."""
    _, p = forward(params, x)
    return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-300)))


def loss_and_grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray
                   ) -> tuple[float, list[np.ndarray]]:
    """The mean cross-entropy and its gradient for each param (backpropagation)."""
    w1, b1, w2, b2 = params
    h, p = forward(params, x)
    m = len(y)
    f = float(-np.mean(np.log(p[np.arange(m), y] + 1e-300)))
    dz2 = p
    dz2[np.arange(m), y] -= 1.0
    dz2 /= m
    dz1 = (dz2 @ w2.T) * (1.0 - h * h)
    return f, [x.T @ dz1, dz1.sum(axis=0), h.T @ dz2, dz2.sum(axis=0)]


def accuracy(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(forward(params, x)[1].argmax(axis=1) == y))


@dataclass
class Run:
    """What one training run gives the table and the plot."""

    rule: str
    label: str
    backend: str
    lr: float
    epochs: int
    best_epoch: int
    train_loss: float
    test_accuracy: float
    seconds_per_step: float
    seconds_per_epoch: float
    val_losses: list[float] = field(default_factory=list)
    params: list[np.ndarray] = field(default_factory=list)     # the best epoch's


def train(rule: str, hyper: dict[str, Any], split: Split, backend: str, epochs: int = 60,
          batch_size: int = 32, seed: int = 0, patience: int = 8, label: str | None = None,
          on_epoch: Callable[[], None] = lambda: None) -> Run:
    """Train the MLP with ``rule`` (its keywords in ``hyper``, lr included) by mini-batches
    (whole batches for a full-batch rule, Rprop), stopping early on the validation loss;
    the best epoch's params are kept (for a schedule-free rule, its average: evaluated
    after ``opt.eval()``)."""
    if RULES[rule].full_batch:
        batch_size = len(split.y_train)
    params = init_params(seed, dtype=split.x_train.dtype)
    opts = optimizers_for(rule, hyper, params, backend)                 # compiles here
    opt = opts[0][0]
    stopper = EarlyStopping(patience=patience, min_delta=1e-4)
    rng = np.random.default_rng(seed)
    best, val_losses, in_step, steps = [p.copy() for p in params], [], 0.0, 0
    t_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(split.y_train))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            _, grads = loss_and_grads(params, split.x_train[batch], split.y_train[batch])
            t0 = time.perf_counter()
            for each, mine in opts:
                each.step([grads[i] for i in mine])
            in_step += time.perf_counter() - t0
            steps += 1
        evaluating = getattr(opt, "eval", None)     # schedule-free: evaluate the average
        if evaluating:
            evaluating()
        val_losses.append(loss(params, split.x_val, split.y_val))
        on_epoch()
        stop = stopper.update(val_losses[-1])
        if stopper.improved:
            best = [p.copy() for p in params]
        if evaluating:
            opt.train()
        if stop:
            break
    elapsed = time.perf_counter() - t_start
    return Run(rule, label or rule, opt.backend, float(hyper["lr"]), epoch,
               stopper.best_epoch, loss(best, split.x_train, split.y_train),
               accuracy(best, split.x_test, split.y_test), in_step / steps, elapsed / epoch,
               val_losses, best)


def optimizers_for(rule: str, hyper: dict[str, Any], params: list, backend: str
                   ) -> list[tuple[Any, list[int]]]:
    """(optimizer, the indices of its params): ``rule``'s, for every param it takes; a rule
    of matrices only (Muon) leaves the biases to AdamW at its tuned lr, as torch's
    documentation of Muon advises."""
    whole = RULES[rule].whole
    mine = [i for i, p in enumerate(params)
            if whole is None or whole.ndims is None or p.ndim in whole.ndims]
    rest = [i for i in range(len(params)) if i not in mine]
    out = [(getattr(optimizers, rule)([params[i] for i in mine], backend=backend, **hyper),
            mine)]
    if rest:
        out.append((optimizers.AdamW([params[i] for i in rest], backend=backend,
                                     lr=RULES["AdamW"].tuned_lr["digits"]), rest))
    return out


def demo_runs(rules: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(rule, label, keywords) of each run: every rule at its tuned lr for the digits,
    then the variants its description lists (SGD's momentum and Nesterov)."""
    runs = []
    for name in rules:
        rule = RULES[name]
        runs.append((name, name, {"lr": rule.tuned_lr["digits"]}))
        runs += [(name, f"{name} {label}", dict(hyper)) for label, hyper in rule.demo_variants]
    return runs


def softmax_regression(split: Split) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Full-batch softmax regression of the training set, as ``fun(w) -> (f, g)`` over the
    flat (64 + 1) x 10 weights, with a small L2 term (1e-3/2 |W|^2) so a minimum exists."""
    x = np.hstack([split.x_train, np.ones((len(split.y_train), 1))])
    y, m = split.y_train, len(split.y_train)

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        W = w.reshape(x.shape[1], 10)
        z = x @ W
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        f = -np.mean(np.log(p[np.arange(m), y] + 1e-300)) + 0.5e-3 * float(np.sum(W * W))
        p[np.arange(m), y] -= 1.0
        return float(f), (x.T @ p / m + 1e-3 * W).ravel()
    return fun


def softmax_accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    W = np.asarray(w).reshape(x.shape[1] + 1, 10)
    return float(np.mean((np.hstack([x, np.ones((len(y), 1))]) @ W).argmax(axis=1) == y))
