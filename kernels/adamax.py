"""Adamax, Adam's infinity-norm variant (PyTorch semantics).

    g   = -g                        (maximize=True)
    g  = g + wd*p
    m  = b1*m + (1-b1)*g
    u  = max(b2*u, |g| + eps)        (NaN propagates, as numpy.maximum)
    p -= lr/(1-b1^t) * m/u
"""
from __future__ import annotations

import numpy as np

from . import _rule as r
from ._cpu import nan_max

HYPERPARAMS = (r.lr(2e-3), r.betas((0.9, 0.999)), r.nonnegative("eps", 1e-8, "added to |g|"),
               r.weight_decay(), r.maximize())
STATE = ("m", "u")
SCALARS = ("step_size", "wd", "b1", "one_minus_b1", "b2", "eps", "sign")


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    return (lr / (1.0 - b1 ** t), hp["weight_decay"], b1, 1.0 - b1, b2, hp["eps"],
            -1.0 if hp["maximize"] else 1.0), extra


def reference(p, g, m, u, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    step_size, wd, b1, one_minus_b1, b2, eps, sign = scalars
    m *= b1
    m += one_minus_b1 * g
    u *= b2
    np.maximum(u, np.abs(g) + eps, out=u)
    p -= step_size * (m / u)


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    m, u = state
    step_size, wd, b1, one_minus_b1, b2, eps, sign = s
    mi = b1 * m[i] + one_minus_b1 * gi
    ui = nan_max(b2 * u[i], np.abs(gi) + eps)
    m[i] = mi
    u[i] = ui
    p[i] = pi - step_size * (mi / ui)


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T mi = b1 * m + one_minus_b1 * gi;
T ui = nan_max(b2 * u, fabs(gi) + eps);
m = mi;
u = ui;
p = pi - step_size * (mi / ui);
"""

RULE = r.Rule("adamax", "Adamax", "Adamax, Adam's infinity-norm variant.", __doc__, HYPERPARAMS,
              STATE, SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=5e-2, rosenbrock=3e-2, logistic=5e-2, digits=1e-2),
              torch_class="Adamax", nonnegative_state=("u",),
              torch_state={"m": "exp_avg", "u": "exp_inf"})
