"""Schedule-free AdamW (Defazio et al. 2024; the ``schedulefree`` package's AdamWScheduleFree).

The params hold y, the point where grads are taken, while training; z is the base
sequence; x, their weighted average, is what to evaluate (``opt.eval()`` moves the params
to x, ``opt.train()`` back to y). Step k = t - 1:

    lr_t   = lr * min(1, (k+1)/warmup_steps)
    w      = (k+1)^r * max(lr_1..lr_t)^weight_lr_power;   c = w / (sum of the w so far)
    v      = b2*v + (1-b2)*g^2
    d      = g / (sqrt(v/(1-b2^t)) + eps) + wd*y
    y      = lerp(y, z, c) + lr_t*(b1*(1-c) - 1)*d
    z      = z - lr_t*d                            (z starts at y)
    eval:  p = lerp(p, z, 1 - 1/b1);   train:  p = lerp(p, z, 1 - b1)

lerp is torch's: a + w*(b - a) for w < 0.5, else b - (b - a)*(1 - w).
"""
from __future__ import annotations

import numpy as np

from . import _rule as r
from ._rule import lerp

HYPERPARAMS = (r.lr(2.5e-3), r.betas((0.9, 0.999)),
               r.nonnegative("eps", 1e-8, "added to the root"),
               r.nonnegative("weight_decay", 0.0, "d += weight_decay*y (after the "
                             "normalisation)"),
               r.nonnegative("warmup_steps", 0, "steps of a linear lr warm-up"),
               r.nonnegative("r", 0.0, "power of k in the average's weights"),
               r.nonnegative("weight_lr_power", 2.0, "power of the largest lr in them"))
STATE = ("z", "v")
SCALARS = ("lr", "fresh", "c", "y_step", "b2", "one_minus_b2", "bc2", "eps", "l2", "one")


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    warmup = hp["warmup_steps"]
    lr_t = lr * (t / warmup if t - 1 < warmup else 1.0)
    lr_max = max(lr_t, extra["lr_max"])
    weight = t ** hp["r"] * lr_max ** hp["weight_lr_power"]
    weight_sum = extra["weight_sum"] + weight
    c = weight / weight_sum if weight_sum else 0.0
    return ((lr_t, 1.0 if t == 1 else 0.0, c, lr_t * (b1 * (1 - c) - 1), b2, 1.0 - b2,
             1.0 - b2 ** t, hp["eps"], hp["weight_decay"], 1.0),
            {"weight_sum": weight_sum, "lr_max": lr_max})


def switch_weight(hp, to_eval: bool) -> float:
    """The lerp weight towards z that moves the params from y to x (eval) or back."""
    b1 = hp["betas"][0]
    return 1.0 - 1.0 / b1 if to_eval else 1.0 - b1


def reference(p, g, z, v, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, fresh, c, y_step, b2, one_minus_b2, bc2, eps, l2, one = scalars
    if fresh:
        z[...] = p
    v *= b2
    v += one_minus_b2 * g * g
    d = g / (np.sqrt(v / bc2) + eps)
    if l2 != 0:
        d = d + l2 * p
    p[...] = lerp(p, z, c) + y_step * d
    z -= lr * d


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    z, v = state
    lr, fresh, c, y_step, b2, one_minus_b2, bc2, eps, l2, one = s
    zi = pi if fresh != 0 else z[i]
    vi = b2 * v[i] + one_minus_b2 * gi * gi
    v[i] = vi
    d = gi / (np.sqrt(vi / bc2) + eps)
    if l2 != 0:
        d = d + l2 * pi
    y = pi + c * (zi - pi) if c < 0.5 else zi - (zi - pi) * (one - c)
    p[i] = y + y_step * d
    z[i] = zi - lr * d


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
const T zi = fresh != 0 ? pi : z;
const T vi = b2 * v + one_minus_b2 * gi * gi;
v = vi;
T d = gi / (sqrt(vi / bc2) + eps);
if (l2 != 0) d = d + l2 * pi;
const T y = c < T(0.5) ? pi + c * (zi - pi) : zi - (zi - pi) * (one - c);
p = y + y_step * d;
z = zi - lr * d;
"""

RULE = r.Rule("schedulefree_adamw", "AdamWScheduleFree",
              "Schedule-free AdamW: no lr schedule, the average of its iterates evaluated.",
              __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element,
              CUDA_BODY,
              tuned_lr=dict(quadratic=5e-2, rosenbrock=1e-2, logistic=5e-2, digits=5e-3),
              extra={"weight_sum": 0.0, "lr_max": -1.0},
              extra_kinds={"weight_sum": "nonnegative"},
              nonnegative_state=("v",), switch_state="z", switch_weight=switch_weight,
              torch_state={"z": "z", "v": "exp_avg_sq", "weight_sum": "weight_sum",
                           "lr_max": "lr_max"})
