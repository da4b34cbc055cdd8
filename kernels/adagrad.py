"""Adagrad (PyTorch semantics).

    g   = -g                        (maximize=True)
    g    = g + wd*p
    clr  = lr / (1 + (t-1)*lr_decay)
    sum += g^2                     (sum starts at initial_accumulator_value)
    p   -= clr * g / (sqrt(sum) + eps)
"""
from __future__ import annotations

import numpy as np

from . import _rule as r

HYPERPARAMS = (r.lr(1e-2), r.nonnegative("lr_decay", 0.0, "lr / (1 + (t-1)*lr_decay)"),
               r.weight_decay(),
               r.nonnegative("initial_accumulator_value", 0.0, "the sum's starting value"),
               r.nonnegative("eps", 1e-10, "added to sqrt(sum)"), r.maximize())
STATE = ("sum",)
SCALARS = ("clr", "wd", "eps", "sign")


def state_fill(name, hp):
    return hp["initial_accumulator_value"]


def host_scalars(hp, t, lr, extra):
    clr = lr / (1.0 + (t - 1) * hp["lr_decay"])
    return (clr, hp["weight_decay"], hp["eps"], -1.0 if hp["maximize"] else 1.0), extra


def reference(p, g, sum_, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    clr, wd, eps, sign = scalars
    sum_ += g * g
    p -= clr * (g / (np.sqrt(sum_) + eps))


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    (sum_,) = state
    clr, wd, eps, sign = s
    si = sum_[i] + gi * gi
    sum_[i] = si
    p[i] = pi - clr * (gi / (np.sqrt(si) + eps))


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T s = sum + gi * gi;
sum = s;
p = pi - clr * (gi / (sqrt(s) + eps));
"""

RULE = r.Rule("adagrad", "Adagrad", "Adagrad with learning-rate decay.", __doc__, HYPERPARAMS,
              STATE, SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=0.5, rosenbrock=0.5, logistic=0.5, digits=0.1),
              state_fill=state_fill,
              torch_class="Adagrad", nonnegative_state=("sum",),
              torch_state={"sum": "sum"})
