"""Adadelta (Zeiler 2012, PyTorch semantics).

    g   = -g                        (maximize=True)
    g   = g + wd*p
    sq  = rho*sq + (1-rho)*g^2
    d   = sqrt(acc + eps) / sqrt(sq + eps) * g
    acc = rho*acc + (1-rho)*d^2
    p  -= lr*d
"""
from __future__ import annotations

import numpy as np

from . import _rule as r

HYPERPARAMS = (r.lr(1.0), r.unit_interval("rho", 0.9, "decay rate of both averages", closed=True),
               r.nonnegative("eps", 1e-6, "added inside both square roots"), r.weight_decay(),
               r.maximize())
STATE = ("sq", "acc")
SCALARS = ("lr", "wd", "rho", "one_minus_rho", "eps", "sign")


def host_scalars(hp, t, lr, extra):
    return (lr, hp["weight_decay"], hp["rho"], 1.0 - hp["rho"], hp["eps"],
            -1.0 if hp["maximize"] else 1.0), extra


def reference(p, g, sq, acc, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, wd, rho, one_minus_rho, eps, sign = scalars
    sq *= rho
    sq += one_minus_rho * g * g
    d = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
    acc *= rho
    acc += one_minus_rho * d * d
    p -= lr * d


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    sq, acc = state
    lr, wd, rho, one_minus_rho, eps, sign = s
    a = acc[i]
    si = rho * sq[i] + one_minus_rho * gi * gi
    d = np.sqrt(a + eps) / np.sqrt(si + eps) * gi
    sq[i] = si
    acc[i] = rho * a + one_minus_rho * d * d
    p[i] = pi - lr * d


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T a = acc;
T s = rho * sq + one_minus_rho * gi * gi;
T d = sqrt(a + eps) / sqrt(s + eps) * gi;
sq = s;
acc = rho * a + one_minus_rho * d * d;
p = pi - lr * d;
"""

RULE = r.Rule("adadelta", "Adadelta", "Adadelta (Zeiler 2012).", __doc__, HYPERPARAMS, STATE,
              SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=1.0, rosenbrock=0.05, logistic=1.0, digits=1.0),
              torch_class="Adadelta", nonnegative_state=("sq", "acc"),
              torch_state={"sq": "square_avg", "acc": "acc_delta"})
