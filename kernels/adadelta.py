"""Adadelta (Zeiler 2012, PyTorch semantics).

    g   = g + wd*p
    sq  = rho*sq + (1-rho)*g^2
    d   = sqrt(acc + eps) / sqrt(sq + eps) * g
    acc = rho*acc + (1-rho)*d^2
    p  -= lr*d
"""
from __future__ import annotations

import numpy as np

from ._rule import Rule

STATE = ("sq", "acc")
SCALARS = ("lr", "wd", "rho", "one_minus_rho", "eps")


def state_used(hp):
    return STATE


def host_scalars(hp, t, lr, extra):
    return (lr, hp["weight_decay"], hp["rho"], 1.0 - hp["rho"], hp["eps"]), extra


def reference(p, g, sq, acc, lr, wd, rho, one_minus_rho, eps):
    """NumPy reference: the formula above with whole-array operations, in place."""
    if wd != 0:
        g = g + wd * p
    sq *= rho
    sq += one_minus_rho * (g * g)
    d = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
    acc *= rho
    acc += one_minus_rho * (d * d)
    p -= lr * d


RULE = Rule("adadelta", STATE, SCALARS, host_scalars, reference, state_used)
