"""Adagrad (PyTorch semantics).

    g    = g + wd*p
    clr  = lr / (1 + (t-1)*lr_decay)
    sum += g^2                     (sum starts at initial_accumulator_value)
    p   -= clr * g / (sqrt(sum) + eps)
"""
from __future__ import annotations

import numpy as np

from ._cpu import prange
from ._rule import Rule

STATE = ("sum",)
SCALARS = ("clr", "wd", "eps")


def state_used(hp):
    return STATE


def state_fill(name, hp):
    return hp["initial_accumulator_value"]


def host_scalars(hp, t, lr, extra):
    clr = lr / (1.0 + (t - 1) * hp["lr_decay"])
    return (clr, hp["weight_decay"], hp["eps"]), extra


def reference(p, g, sum_, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    clr, wd, eps = scalars
    if wd != 0:
        g = g + wd * p
    sum_ += g * g
    p -= clr * (g / (np.sqrt(sum_) + eps))


def numba_loop():
    """Numba CPU kernel: the formula above in one pass over the arrays."""
    def adagrad(p, g, sum_, scalars):
        clr, wd, eps = scalars
        for i in prange(p.size):
            pi = p[i]
            gi = g[i] + wd * pi if wd != 0 else g[i]
            s = sum_[i] + gi * gi
            sum_[i] = s
            p[i] = pi - clr * (gi / (np.sqrt(s) + eps))
    return adagrad


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T pi = p;
T gi = wd != 0 ? g + wd * pi : g;
T s = sum + gi * gi;
sum = s;
p = pi - clr * (gi / (sqrt(s) + eps));
"""

RULE = Rule("adagrad", STATE, SCALARS, host_scalars, reference, state_used, state_fill,
            numba_loop=numba_loop, cuda_body=CUDA_BODY)
