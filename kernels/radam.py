"""RAdam: Adam with its variance rectified (PyTorch semantics).

    g   = -g                        (maximize=True)
    p   = p*(1 - lr*wd)             (decoupled_weight_decay: wd not added to g)
    g   = g + wd*p
    m   = b1*m + (1-b1)*g;   v = b2*v + (1-b2)*g^2
    rho_inf = 2/(1-b2) - 1;  rho_t = rho_inf - 2t*b2^t/(1-b2^t)
    rho_t > 5:  p -= (m/(1-b1^t))*lr * (sqrt(1-b2^t)/(sqrt(v) + eps)) * r_t,
                r_t = sqrt((rho_t-4)(rho_t-2)rho_inf / ((rho_inf-4)(rho_inf-2)rho_t))
    otherwise:  p -= (m/(1-b1^t))*lr                (the first steps: SGD with momentum)
"""
from __future__ import annotations

import math

import numpy as np

from . import _rule as r
from .adam import update_moments

HYPERPARAMS = (r.lr(1e-3), r.betas((0.9, 0.999)),
               r.nonnegative("eps", 1e-8, "added to sqrt(v)"), r.weight_decay(),
               r.flag("decoupled_weight_decay", False, "p *= 1 - lr*weight_decay (AdamW's "
                      "decay) instead of g += weight_decay*p"),
               r.maximize())
STATE = ("m", "v")
SCALARS = ("lr", "bc1", "bc2_sqrt", "rect", "adaptive", "wd", "decay", "b1", "one_minus_b1",
           "b2", "one_minus_b2", "eps", "sign")


def rectification(b2: float, t: int) -> float:
    """r_t, or 0 where rho_t <= 5 (no adaptive step yet)."""
    bc2 = 1.0 - b2 ** t
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * t * b2 ** t / bc2
    if rho_t <= 5.0:
        return 0.0
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2)
                                                             * rho_t))


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    wd, decoupled = hp["weight_decay"], hp["decoupled_weight_decay"]
    rect = rectification(b2, t)
    return ((lr, 1.0 - b1 ** t, math.sqrt(1.0 - b2 ** t), rect, 1.0 if rect else 0.0,
             0.0 if decoupled else wd, 1.0 - lr * wd if decoupled else 1.0, b1, 1.0 - b1, b2,
             1.0 - b2, hp["eps"], -1.0 if hp["maximize"] else 1.0), extra)


def reference(p, g, m, v, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, bc1, bc2_sqrt, rect, adaptive, wd, decay, b1, one_minus_b1, b2, one_minus_b2, eps, \
        sign = scalars
    update_moments(m, v, g, b1, one_minus_b1, b2, one_minus_b2)
    step = (m / bc1) * lr
    if adaptive:
        step = step * (bc2_sqrt / (np.sqrt(v) + eps)) * rect
    p -= step


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    m, v = state
    lr, bc1, bc2_sqrt, rect, adaptive, wd, decay, b1, one_minus_b1, b2, one_minus_b2, eps, \
        sign = s
    mi = b1 * m[i] + one_minus_b1 * gi
    vi = b2 * v[i] + one_minus_b2 * gi * gi
    m[i] = mi
    v[i] = vi
    step = (mi / bc1) * lr
    if adaptive != 0:
        step = step * (bc2_sqrt / (np.sqrt(vi) + eps)) * rect
    p[i] = pi - step


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T mi = b1 * m + one_minus_b1 * gi;
T vi = b2 * v + one_minus_b2 * gi * gi;
m = mi;
v = vi;
T step = (mi / bc1) * lr;
if (adaptive != 0) step = step * (bc2_sqrt / (sqrt(vi) + eps)) * rect;
p = pi - step;
"""

RULE = r.Rule("radam", "RAdam", "RAdam: Adam with the variance of its adaptive step rectified.",
              __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element,
              CUDA_BODY,
              tuned_lr=dict(quadratic=3e-2, rosenbrock=5e-3, logistic=5e-2, digits=1e-2),
              nonnegative_state=("v",), torch_class="RAdam",
              torch_state={"m": "exp_avg", "v": "exp_avg_sq"})
