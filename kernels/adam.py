"""Adam, its amsgrad variant, and AdamW (PyTorch semantics).

    g   = -g                        (maximize=True)
    p   = p*(1 - lr*wd)             (AdamW, decoupled_weight_decay: wd not added to g)
    g   = g + wd*p                  (Adam: coupled decay)
    m   = b1*m + (1-b1)*g
    v   = b2*v + (1-b2)*g^2
    vmax = max(vmax, v); use vmax for v   (amsgrad)
    p  -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
"""
from __future__ import annotations

import math

import numpy as np

from . import _rule as r
from ._cpu import nan_max

HYPERPARAMS = (r.lr(1e-3), r.betas((0.9, 0.999)), r.nonnegative("eps", 1e-8, "added to sqrt(v)"),
               r.weight_decay(), r.flag("amsgrad", False, "use the running maximum of v"),
               r.maximize(),
               r.flag("decoupled_weight_decay", False, "AdamW's decay (torch's keyword)"))
STATE = ("m", "v", "vmax")
SCALARS = ("step_size", "wd", "decay", "b1", "one_minus_b1", "b2", "one_minus_b2",
           "bc2_sqrt", "eps", "sign")


def state_used(hp):
    return ("m", "v", "vmax") if hp["amsgrad"] else ("m", "v")


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    wd = hp["weight_decay"]
    decoupled = hp["decoupled"] or hp.get("decoupled_weight_decay", False)
    return (lr / (1.0 - b1 ** t), 0.0 if decoupled else wd,
            1.0 - lr * wd if decoupled else 1.0, b1, 1.0 - b1, b2, 1.0 - b2,
            math.sqrt(1.0 - b2 ** t), hp["eps"], -1.0 if hp["maximize"] else 1.0), extra


def update_moments(m, v, g, b1, one_minus_b1, b2, one_minus_b2) -> None:
    """m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g, in place (shared with Nadam): scaled
    before the second factor, as torch's addcmul, since g*g overflows float32 from
    |g| > 1.8e19 and an infinite v would stop the param for good."""
    m *= b1
    m += one_minus_b1 * g
    v *= b2
    v += one_minus_b2 * g * g


def reference(p, g, m, v, vmax, scalars, *, amsgrad):
    """NumPy reference: the formula above with whole-array operations, in place."""
    step_size, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, sign = scalars
    update_moments(m, v, g, b1, one_minus_b1, b2, one_minus_b2)
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    p -= step_size * (m / (np.sqrt(v) / bc2_sqrt + eps))


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    m, v, vmax = state
    (amsgrad,) = flags
    step_size, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, sign = s
    mi = b1 * m[i] + one_minus_b1 * gi
    vi = b2 * v[i] + one_minus_b2 * gi * gi
    m[i] = mi
    v[i] = vi
    if amsgrad:
        vi = nan_max(vmax[i], vi)
        vmax[i] = vi
    p[i] = pi - step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T mi = b1 * m + one_minus_b1 * gi;
T vi = b2 * v + one_minus_b2 * gi * gi;
m = mi;
v = vi;
#if AMSGRAD
vi = nan_max(vmax, vi);
vmax = vi;
#endif
p = pi - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
"""

RULE = r.Rule("adam", "Adam", "Adam with coupled (L2) weight decay, amsgrad optional.", __doc__,
              HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=5e-2, rosenbrock=3e-2, logistic=5e-2, digits=1e-2),
              flags=("amsgrad",), state_used_by=state_used, fixed=dict(decoupled=False),
              nonnegative_state=("v", "vmax"),
              torch_class="Adam",
              torch_state={"m": "exp_avg", "v": "exp_avg_sq", "vmax": "max_exp_avg_sq"})
ADAMW = RULE.derive("adamw", "AdamW", "Adam with decoupled weight decay.",
                    r.weight_decay(1e-2, decoupled=True), fixed=dict(decoupled=True),
                    torch_class="AdamW", dropped=("decoupled_weight_decay",))
