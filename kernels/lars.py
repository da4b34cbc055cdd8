"""LARS (You et al. 2017, "Large Batch Training of Convolutional Networks"): SGD with a
learning rate scaled per param by a trust ratio, as pytorch-optimizer's ``LARS`` computes
it (from the VICReg / Barlow Twins code): params of one dimension or none (biases, norms'
weights) take plain SGD steps, without decay or trust ratio.

    g   = -g                                  (maximize=True)
    trust = tc*||p|| / (||g|| + wd*||p||)     per param of 2+ dimensions (1 where ||p|| or
                                               the denominator is 0)
    g   = (g + wd*p) * trust                  (params of 2+ dimensions)
    buf = momentum*buf + (1-dampening)*g      (buf starts at 0)
    d   = g + momentum*buf if nesterov else buf      (d = g when momentum = 0)
    p  -= lr*d

The norms are a first pass over each param (kernels/_rule.py: PerTensor; in float64, in
kernels/_reduce.py's order).
"""
from __future__ import annotations

import numpy as np

from . import _rule as r

HYPERPARAMS = (r.lr(1e-3), r.nonnegative("weight_decay", 0.0, "g += weight_decay*p, before "
                                         "the trust ratio (params of 2+ dimensions)"),
               r.nonnegative("momentum", 0.9, "momentum of buf (0: none)"),
               r.unit_interval("dampening", 0.0, "buf = momentum*buf + (1-dampening)*g",
                               closed=True),
               r.nonnegative("trust_coefficient", 1e-3, "tc in the trust ratio"),
               r.flag("nesterov", False, "Nesterov momentum"), r.maximize())
STATE = ("buf",)
SCALARS = ("lr", "momentum", "gain", "sign")


def variant(hp):
    return {"has_momentum": hp["momentum"] != 0, "nesterov": hp["nesterov"]}


def state_used(hp):
    return STATE if hp["momentum"] != 0 else ()


def host_scalars(hp, t, lr, extra):
    return (lr, hp["momentum"], 1.0 - hp["dampening"], -1.0 if hp["maximize"] else 1.0), extra


def trust_ratios(hp, norms, ndims):
    """Per param: (its weight decay, its trust ratio); (0, 1) for params of < 2 dims."""
    weight, grad = norms[:, 0], norms[:, 1]
    wd, tc = hp["weight_decay"], hp["trust_coefficient"]
    denominator = grad + wd * weight
    with np.errstate(divide="ignore", invalid="ignore"):
        trust = np.where((weight > 0) & (denominator > 0), tc * weight / denominator, 1.0)
    matrix = np.asarray(ndims) > 1
    return np.stack([np.where(matrix, wd, 0.0), np.where(matrix, trust, 1.0)], axis=1)


def norm_values(p, g, buf, scalars, *, has_momentum, nesterov):
    """NumPy: the values whose norms the trust ratio takes: p and g."""
    return p, g


def reference(p, g, buf, scalars, *, has_momentum, nesterov):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, momentum, gain, sign, wd, trust = scalars
    if wd != 0:
        g = g + wd * p
    if trust != 1:
        g = g * trust
    d = g
    if has_momentum:
        buf *= momentum
        buf += gain * g
        d = g + momentum * buf if nesterov else buf
    p -= lr * d


def cpu_values(i, pi, gi, state, s, flags):
    """Numba: element i's values for the norms."""
    return pi, gi


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    (buf,) = state
    has_momentum, nesterov = flags
    lr, momentum, gain, sign, wd, trust = s
    if wd != 0:
        gi = gi + wd * pi
    if trust != 1:
        gi = gi * trust
    d = gi
    if has_momentum:
        b = momentum * buf[i] + gain * gi
        buf[i] = b
        d = gi + momentum * b if nesterov else b
    p[i] = pi - lr * d


# CuPy kernel bodies (one element; see kernels/_gpu.py for the declarations).
CUDA_VALUES = """
T value0 = pi;
T value1 = gi;
"""
CUDA_BODY = """
T gw = wd != 0 ? gi + wd * pi : gi;
T gt = trust != 1 ? gw * trust : gw;
T d = gt;
#if HAS_MOMENTUM
T b = momentum * buf + gain * gt;
buf = b;
d = NESTEROV ? gt + momentum * b : b;
#endif
p = pi - lr * d;
"""

RULE = r.Rule("lars", "LARS", "LARS (You et al. 2017): SGD with a trust ratio per param.",
              __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element,
              CUDA_BODY, tuned_lr=dict(quadratic=1.5e-2, rosenbrock=1e-3, logistic=0.1, digits=1.0),
              flags=("has_momentum", "nesterov"), variant_of=variant, state_used_by=state_used,
              torch_state={"buf": "momentum_buffer"}, torch_step=False,
              per_tensor=r.PerTensor(("weight", "grad"), ("wd", "trust"), norm_values,
                                     cpu_values, CUDA_VALUES, trust_ratios,
                                     reads_state=False))
