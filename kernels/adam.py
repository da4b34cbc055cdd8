"""Adam, its amsgrad variant, and AdamW (PyTorch semantics).

    p   = p*(1 - lr*wd)             (AdamW: decoupled decay, wd not added to g)
    g   = g + wd*p                  (Adam: coupled decay)
    m   = b1*m + (1-b1)*g
    v   = b2*v + (1-b2)*g^2
    vmax = max(vmax, v); use vmax for v   (amsgrad)
    p  -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
"""
from __future__ import annotations

import math

import numpy as np

from ._cpu import nan_max, prange
from ._rule import Rule

STATE = ("m", "v", "vmax")
SCALARS = ("step_size", "wd", "decay", "b1", "one_minus_b1", "b2", "one_minus_b2",
           "bc2_sqrt", "eps")


def variant(hp):
    return {"amsgrad": hp["amsgrad"]}


def state_used(hp):
    return ("m", "v", "vmax") if hp["amsgrad"] else ("m", "v")


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    wd = hp["weight_decay"]
    decoupled = hp.get("decoupled", False)
    return (lr / (1.0 - b1 ** t), 0.0 if decoupled else wd,
            1.0 - lr * wd if decoupled else 1.0, b1, 1.0 - b1, b2, 1.0 - b2,
            math.sqrt(1.0 - b2 ** t), hp["eps"]), extra


def update_moments(m, v, g, b1, one_minus_b1, b2, one_minus_b2) -> None:
    """m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2, in place (shared with Nadam)."""
    m *= b1
    m += one_minus_b1 * g
    v *= b2
    v += one_minus_b2 * (g * g)


def reference(p, g, m, v, vmax, scalars, *, amsgrad):
    """NumPy reference: the formula above with whole-array operations, in place."""
    step_size, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps = scalars
    if decay != 1:
        p *= decay
    if wd != 0:
        g = g + wd * p
    update_moments(m, v, g, b1, one_minus_b1, b2, one_minus_b2)
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    p -= step_size * (m / (np.sqrt(v) / bc2_sqrt + eps))


def numba_loop(amsgrad):
    """Numba CPU kernel: the formula above in one pass over the arrays."""
    def adam(p, g, m, v, vmax, scalars):
        step_size, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps = scalars
        for i in prange(p.size):
            pi = p[i] * decay
            gi = g[i] + wd * pi if wd != 0 else g[i]
            mi = b1 * m[i] + one_minus_b1 * gi
            vi = b2 * v[i] + one_minus_b2 * (gi * gi)
            m[i] = mi
            v[i] = vi
            if amsgrad:
                vi = nan_max(vmax[i], vi)
                vmax[i] = vi
            p[i] = pi - step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))
    return adam


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T pi = p * decay;
T gi = wd != 0 ? g + wd * pi : g;
T mi = b1 * m + one_minus_b1 * gi;
T vi = b2 * v + one_minus_b2 * (gi * gi);
m = mi;
v = vi;
#if AMSGRAD
vi = nan_max(vmax, vi);
vmax = vi;
#endif
p = pi - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
"""

RULE = Rule("adam", STATE, SCALARS, host_scalars, reference, state_used, variant=variant,
            numba_loop=numba_loop, cuda_body=CUDA_BODY)
