"""Adamax, Adam's infinity-norm variant (PyTorch semantics).

    g  = g + wd*p
    m  = b1*m + (1-b1)*g
    u  = max(b2*u, |g| + eps)        (NaN propagates, as numpy.maximum)
    p -= lr/(1-b1^t) * m/u
"""
from __future__ import annotations

import numpy as np

from ._rule import Rule

STATE = ("m", "u")
SCALARS = ("step_size", "wd", "b1", "one_minus_b1", "b2", "eps")


def state_used(hp):
    return STATE


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    return (lr / (1.0 - b1 ** t), hp["weight_decay"], b1, 1.0 - b1, b2, hp["eps"]), extra


def reference(p, g, m, u, step_size, wd, b1, one_minus_b1, b2, eps):
    """NumPy reference: the formula above with whole-array operations, in place."""
    if wd != 0:
        g = g + wd * p
    m *= b1
    m += one_minus_b1 * g
    u *= b2
    np.maximum(u, np.abs(g) + eps, out=u)
    p -= step_size * (m / u)


RULE = Rule("adamax", STATE, SCALARS, host_scalars, reference, state_used)
