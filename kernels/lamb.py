"""LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning"): Adam's direction
scaled per param by a trust ratio, as pytorch-optimizer's ``Lamb`` computes it by default
(the paper's version 3: the first moment's bias correction in the step size only, none in
the trust ratio; the weight norm clipped at ``clamp``).

    g   = -g                             (maximize=True)
    p   = p*(1 - lr*wd)                  (decoupled decay)
    m   = b1*m + (1-b1)*g
    v   = b2*v + (1-b2)*g^2
    u   = m / (sqrt(v) + eps)
    trust = min(||p||, clamp) / (||u|| + eps)     per param (1 where a norm is 0)
    p  -= lr/(1-b1^t) * trust*u

The norms are a first pass over each param (kernels/_rule.py: PerTensor; in float64, in
kernels/_reduce.py's order); the update then recomputes m, v and u as it writes them.
"""
from __future__ import annotations

import numpy as np

from . import _rule as r
from ._cpu import scalar_helper

HYPERPARAMS = (r.lr(1e-3), r.betas((0.9, 0.999)), r.weight_decay(0.0, decoupled=True),
               r.nonnegative("eps", 1e-6, "added to sqrt(v) and to the update's norm"),
               r.nonnegative("clamp", 10.0, "the largest weight norm a trust ratio uses"),
               r.maximize())
STATE = ("m", "v")
SCALARS = ("step_size", "decay", "b1", "one_minus_b1", "b2", "one_minus_b2", "eps", "sign")


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    return (lr / (1.0 - b1 ** t), 1.0 - lr * hp["weight_decay"], b1, 1.0 - b1, b2, 1.0 - b2,
            hp["eps"], -1.0 if hp["maximize"] else 1.0), extra


def trust_ratios(hp, norms, ndims):
    """Per param: min(||p||, clamp) / (||u|| + eps), 1 where either norm is 0."""
    weight, update = np.minimum(norms[:, 0], hp["clamp"]), norms[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        trust = np.where((weight == 0) | (update == 0), 1.0, weight / (update + hp["eps"]))
    return trust[:, None]


def norm_values(p, g, m, v, scalars):
    """NumPy: the values whose norms the trust ratio takes: p (decayed) and u."""
    step_size, decay, b1, one_minus_b1, b2, one_minus_b2, eps, sign = scalars
    return p, (b1 * m + one_minus_b1 * g) / (np.sqrt(b2 * v + one_minus_b2 * g * g) + eps)


def reference(p, g, m, v, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    step_size, decay, b1, one_minus_b1, b2, one_minus_b2, eps, sign, trust = scalars
    m *= b1
    m += one_minus_b1 * g
    v *= b2
    v += one_minus_b2 * g * g
    p -= step_size * trust * (m / (np.sqrt(v) + eps))


@scalar_helper
def moments(g, m, v, b1, one_minus_b1, b2, one_minus_b2):
    """Numba: the new m and v of one element, written nowhere."""
    return b1 * m + one_minus_b1 * g, b2 * v + one_minus_b2 * g * g


def cpu_values(i, pi, gi, state, s, flags):
    """Numba: element i's values for the norms."""
    m, v = state
    step_size, decay, b1, one_minus_b1, b2, one_minus_b2, eps, sign = s
    mi, vi = moments(gi, m[i], v[i], b1, one_minus_b1, b2, one_minus_b2)
    return pi, mi / (np.sqrt(vi) + eps)


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    m, v = state
    step_size, decay, b1, one_minus_b1, b2, one_minus_b2, eps, sign, trust = s
    mi, vi = moments(gi, m[i], v[i], b1, one_minus_b1, b2, one_minus_b2)
    m[i] = mi
    v[i] = vi
    p[i] = pi - step_size * trust * (mi / (np.sqrt(vi) + eps))


# CuPy kernel bodies (one element; see kernels/_gpu.py for the declarations).
CUDA_VALUES = """
T value0 = pi;
T value1 = (b1 * m + one_minus_b1 * gi) / (sqrt(b2 * v + one_minus_b2 * gi * gi) + eps);
"""
CUDA_BODY = """
T mi = b1 * m + one_minus_b1 * gi;
T vi = b2 * v + one_minus_b2 * gi * gi;
m = mi;
v = vi;
p = pi - step_size * trust * (mi / (sqrt(vi) + eps));
"""

RULE = r.Rule("lamb", "Lamb", "LAMB (You et al. 2020): Adam's direction with a trust ratio "
              "per param.", __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference,
              cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=5e-2, rosenbrock=3e-2, logistic=5e-2, digits=3e-3),
              nonnegative_state=("v",), torch_state={"m": "exp_avg", "v": "exp_avg_sq"},
              per_tensor=r.PerTensor(("weight", "update"), ("trust",), norm_values,
                                     cpu_values, CUDA_VALUES, trust_ratios))
