"""Adadelta (Zeiler 2012, PyTorch semantics).

    g   = g + wd*p
    sq  = rho*sq + (1-rho)*g^2
    d   = sqrt(acc + eps) / sqrt(sq + eps) * g
    acc = rho*acc + (1-rho)*d^2
    p  -= lr*d
"""
from __future__ import annotations

import numpy as np

from ._cpu import prange
from ._rule import Rule

STATE = ("sq", "acc")
SCALARS = ("lr", "wd", "rho", "one_minus_rho", "eps")


def state_used(hp):
    return STATE


def host_scalars(hp, t, lr, extra):
    return (lr, hp["weight_decay"], hp["rho"], 1.0 - hp["rho"], hp["eps"]), extra


def reference(p, g, sq, acc, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, wd, rho, one_minus_rho, eps = scalars
    if wd != 0:
        g = g + wd * p
    sq *= rho
    sq += one_minus_rho * (g * g)
    d = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
    acc *= rho
    acc += one_minus_rho * (d * d)
    p -= lr * d


def numba_loop():
    """Numba CPU kernel: the formula above in one pass over the arrays."""
    def adadelta(p, g, sq, acc, scalars):
        lr, wd, rho, one_minus_rho, eps = scalars
        for i in prange(p.size):
            pi = p[i]
            gi = g[i] + wd * pi if wd != 0 else g[i]
            a = acc[i]
            s = rho * sq[i] + one_minus_rho * (gi * gi)
            d = np.sqrt(a + eps) / np.sqrt(s + eps) * gi
            sq[i] = s
            acc[i] = rho * a + one_minus_rho * (d * d)
            p[i] = pi - lr * d
    return adadelta


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T pi = p;
T gi = wd != 0 ? g + wd * pi : g;
T a = acc;
T s = rho * sq + one_minus_rho * (gi * gi);
T d = sqrt(a + eps) / sqrt(s + eps) * gi;
sq = s;
acc = rho * a + one_minus_rho * (d * d);
p = pi - lr * d;
"""

RULE = Rule("adadelta", STATE, SCALARS, host_scalars, reference, state_used,
            numba_loop=numba_loop, cuda_body=CUDA_BODY)
