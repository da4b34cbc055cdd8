"""Classic test problems with analytic gradients, for the demo, the tests and benchmarks.

Each problem is a ``Problem``: ``loss_and_grad(x) -> (f, g)`` on a NumPy vector, a
starting point, the known minimum value where there is one, and a learning rate per rule
that makes every rule converge on it (the rules differ in their natural step sizes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Problem:
    name: str
    loss_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]]
    x0: np.ndarray
    f_min: float | None
    lr: dict[str, float] = field(default_factory=dict)
    steps: int = 2000


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Extended Rosenbrock: sum 100 (x[2i+1] - x[2i]^2)^2 + (1 - x[2i])^2; minimum 0 at 1."""
    a, b = x[0::2], x[1::2]
    r = b - a * a
    f = float(np.sum(100.0 * r * r + (1.0 - a) ** 2))
    g = np.empty_like(x)
    g[0::2] = -400.0 * a * r - 2.0 * (1.0 - a)
    g[1::2] = 200.0 * r
    return f, g


def make_quadratic(n: int, condition: float = 1e3) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """0.5 sum h_i x_i^2 with h log-spaced in [1, condition]; minimum 0 at the origin."""
    h = np.logspace(0.0, np.log10(condition), n)

    def quadratic(x: np.ndarray) -> tuple[float, np.ndarray]:
        hx = h * x
        return 0.5 * float(x @ hx), hx

    return quadratic


def make_logistic(n_samples: int = 2000, n_features: int = 50, l2: float = 1e-3,
                  seed: int = 0) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Mean logistic loss + l2/2 |w|^2 on separable-ish generated data."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) / np.sqrt(n_features)
    w_true = rng.standard_normal(n_features) * 3.0
    y = np.where(X @ w_true + 0.3 * rng.standard_normal(n_samples) > 0, 1.0, -1.0)

    def logistic(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = y * (X @ w)
        f = float(np.mean(np.logaddexp(0.0, -z)) + 0.5 * l2 * (w @ w))
        s = -y * np.exp(-np.logaddexp(0.0, z))       # d/dz log(1 + e^-z) = -1/(1 + e^z)
        return f, X.T @ s / n_samples + l2 * w

    return logistic


def param_view(rule: str, x: Any) -> Any:
    """``x`` as ``rule`` takes its params: x itself, or for a rule of matrices only (Muon)
    a 2-D view of it, (a, n/a) with a the largest divisor of its size up to its root."""
    from .kernels import RULES

    whole = RULES[rule].whole
    if whole is None or whole.ndims is None or x.ndim in whole.ndims:
        return x
    rows = max(a for a in range(1, math.isqrt(x.size) + 1) if x.size % a == 0)
    return x.reshape(rows, -1)


def classic_problems(quadratic_n: int = 10_000) -> list[Problem]:
    """Rosenbrock, an ill-conditioned quadratic and a logistic regression, each with the
    learning rate every registered rule declares for it (``Rule.tuned_lr``)."""
    from .kernels import RULES

    def tuned(problem: str) -> dict[str, float]:
        return {name: rule.tuned_lr[problem] for name, rule in RULES.items()}

    return [
        Problem("rosenbrock", rosenbrock, np.tile([-1.2, 1.0], 2), 0.0, steps=5000,
                lr=tuned("rosenbrock")),
        Problem("quadratic", make_quadratic(quadratic_n, condition=100.0), np.ones(quadratic_n),
                0.0, steps=1500, lr=tuned("quadratic")),
        Problem("logistic", make_logistic(), np.zeros(50), None, steps=1000,
                lr=tuned("logistic")),
    ]
