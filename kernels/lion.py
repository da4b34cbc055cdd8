"""Lion, evolved sign momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
Algorithms"), with decoupled weight decay like AdamW.

    c  = b1*m + (1-b1)*g
    p  = p*(1 - lr*wd) - lr*sign(c)      sign(0) = 0; NaN propagates
    m  = b2*m + (1-b2)*g

sign is NumPy's in every implementation: +0 for either zero, so a zero c leaves p as it is.
"""
from __future__ import annotations

import numpy as np

from . import _rule as r
from ._cpu import sign

HYPERPARAMS = (r.lr(1e-4),
               r.betas((0.9, 0.99), "b1 mixes the update direction, b2 decays the momentum"),
               r.weight_decay(0.0, decoupled=True))
STATE = ("m",)
SCALARS = ("lr", "decay", "b1", "one_minus_b1", "b2", "one_minus_b2")


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    return (lr, 1.0 - lr * hp["weight_decay"], b1, 1.0 - b1, b2, 1.0 - b2), extra


def reference(p, g, m, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, decay, b1, one_minus_b1, b2, one_minus_b2 = scalars
    c = b1 * m + one_minus_b1 * g
    p -= lr * np.sign(c)
    m *= b2
    m += one_minus_b2 * g


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    (m,) = state
    lr, decay, b1, one_minus_b1, b2, one_minus_b2 = s
    mi = m[i]
    c = b1 * mi + one_minus_b1 * gi
    p[i] = pi - lr * sign(c)
    m[i] = b2 * mi + one_minus_b2 * gi


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T c = b1 * m + one_minus_b1 * gi;
T sc = c > 0 ? T(1) : (c < 0 ? T(-1) : (c == 0 ? T(0) : c));
p = pi - lr * sc;
m = b2 * m + one_minus_b2 * gi;
"""

RULE = r.Rule("lion", "Lion", "Lion (Chen et al. 2023): the sign of an interpolated momentum.",
              __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=2e-3, rosenbrock=1e-3, logistic=5e-3, digits=1e-3),
              torch_state={"m": "exp_avg"})
