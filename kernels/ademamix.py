"""AdEMAMix: Adam with a second, slow first moment mixed in (Pagliardini et al. 2024;
bitsandbytes' 32-bit AdEMAMix semantics).

    p   = p*(1 - lr*wd)                      (decoupled decay)
    m1  = b1*m1 + (1-b1)*g                   (the fast first moment)
    m2  = b3*m2 + (1-b3)*g                   (the slow one)
    nu  = b2*nu + (1-b2)*g^2
    p  -= lr * (m1/(1-b1^t) + alpha*m2) / (sqrt(nu)/sqrt(1-b2^t) + eps)

with the warm-ups of the paper where asked: alpha_t = min(t*alpha/t_alpha, alpha) and
b3_t = min(exp(ln b1 ln b3 / ((1-s) ln b3 + s ln b1)), b3), s = t/t_beta3.
"""
from __future__ import annotations

import math

import numpy as np

from . import _rule as r

HYPERPARAMS = (r.lr(1e-3),
               r.Hyper("betas", (0.9, 0.999, 0.9999), "betas3",
                       "(b1, b2, b3): decay rates of the fast moment, of nu, of the slow "
                       "moment"),
               r.nonnegative("alpha", 5.0, "weight of the slow moment"),
               r.Hyper("t_alpha", None, "optional_nonnegative",
                       "steps alpha warms up over (None: none)"),
               r.Hyper("t_beta3", None, "optional_nonnegative",
                       "steps b3 warms up over (None: none)"),
               r.nonnegative("eps", 1e-8, "added to the denominator"),
               r.weight_decay(1e-2, decoupled=True))
STATE = ("m1", "m2", "nu")
SCALARS = ("lr", "decay", "b1", "one_minus_b1", "b2", "one_minus_b2", "b3", "one_minus_b3",
           "bc1", "bc2_sqrt", "alpha", "eps")


def warmed_up(hp, t):
    """(alpha_t, b3_t) of step t."""
    b1, _, b3 = hp["betas"]
    alpha, t_alpha, t_beta3 = hp["alpha"], hp["t_alpha"], hp["t_beta3"]
    if t_alpha:
        alpha = min(t * alpha / t_alpha, alpha)
    if t_beta3:
        s = t / t_beta3
        ln1, ln3 = math.log(b1), math.log(b3)
        b3 = min(math.exp(ln1 * ln3 / ((1 - s) * ln3 + s * ln1)), b3)
    return alpha, b3


def host_scalars(hp, t, lr, extra):
    b1, b2, _ = hp["betas"]
    alpha, b3 = warmed_up(hp, t)
    return ((lr, 1.0 - lr * hp["weight_decay"], b1, 1.0 - b1, b2, 1.0 - b2, b3, 1.0 - b3,
             1.0 - b1 ** t, math.sqrt(1.0 - b2 ** t), alpha, hp["eps"]), extra)


def check(owner, hp):
    """The b3 warm-up takes logarithms of b1 and b3: neither may be 0 then."""
    b1, _, b3 = hp["betas"]
    if hp["t_beta3"] and (b1 == 0 or b3 == 0):
        raise ValueError(f"{owner}: t_beta3 warms b3 up from b1 on a log scale: betas[0] and "
                         f"betas[2] must be > 0, got {hp['betas']!r}")


def reference(p, g, m1, m2, nu, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, decay, b1, one_minus_b1, b2, one_minus_b2, b3, one_minus_b3, bc1, bc2_sqrt, alpha, \
        eps = scalars
    m1 *= b1
    m1 += one_minus_b1 * g
    m2 *= b3
    m2 += one_minus_b3 * g
    nu *= b2
    nu += one_minus_b2 * g * g
    p -= lr * ((m1 / bc1 + alpha * m2) / (np.sqrt(nu) / bc2_sqrt + eps))


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    m1, m2, nu = state
    lr, decay, b1, one_minus_b1, b2, one_minus_b2, b3, one_minus_b3, bc1, bc2_sqrt, alpha, \
        eps = s
    a = b1 * m1[i] + one_minus_b1 * gi
    b = b3 * m2[i] + one_minus_b3 * gi
    c = b2 * nu[i] + one_minus_b2 * gi * gi
    m1[i] = a
    m2[i] = b
    nu[i] = c
    p[i] = pi - lr * ((a / bc1 + alpha * b) / (np.sqrt(c) / bc2_sqrt + eps))


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
const T a = b1 * m1 + one_minus_b1 * gi;
const T b = b3 * m2 + one_minus_b3 * gi;
const T c = b2 * nu + one_minus_b2 * gi * gi;
m1 = a;
m2 = b;
nu = c;
p = pi - lr * ((a / bc1 + alpha * b) / (sqrt(c) / bc2_sqrt + eps));
"""

RULE = r.Rule("ademamix", "AdEMAMix", "AdEMAMix: Adam with a slow first moment mixed in.",
              __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element,
              CUDA_BODY,
              tuned_lr=dict(quadratic=2e-2, rosenbrock=2e-2, logistic=2e-2, digits=3e-3),
              check=check, nonnegative_state=("nu",),
              torch_state={"m1": "exp_avg", "m2": "exp_avg_slow", "nu": "exp_avg_sq"})
