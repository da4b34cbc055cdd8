"""SGD with momentum, dampening and Nesterov (PyTorch semantics).

    g   = g + wd*p
    buf = g                              (t = 1)
    buf = momentum*buf + (1-dampening)*g (t > 1)
    d   = g + momentum*buf if nesterov else buf      (d = g when momentum = 0)
    p  -= lr*d

The host folds the t = 1 case into two scalars: keep = 0, gain = 1 at t = 1, else
keep = momentum, gain = 1 - dampening, so every step runs buf = keep*buf + gain*g.
"""
from __future__ import annotations

from ._cpu import prange
from ._rule import Rule

STATE = ("buf",)
SCALARS = ("lr", "wd", "momentum", "keep", "gain")


def variant(hp):
    return {"has_momentum": hp["momentum"] != 0, "nesterov": hp["nesterov"]}


def state_used(hp):
    return STATE if hp["momentum"] != 0 else ()


def host_scalars(hp, t, lr, extra):
    first = t == 1
    keep = 0.0 if first else hp["momentum"]
    gain = 1.0 if first else 1.0 - hp["dampening"]
    return (lr, hp["weight_decay"], hp["momentum"], keep, gain), extra


def reference(p, g, buf, scalars, *, has_momentum, nesterov):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, wd, momentum, keep, gain = scalars
    if wd != 0:
        g = g + wd * p
    if has_momentum:
        buf *= keep
        buf += gain * g
        d = g + momentum * buf if nesterov else buf
    else:
        d = g
    p -= lr * d


def numba_loop(has_momentum, nesterov):
    """Numba CPU kernel: the formula above in one pass over the arrays."""
    def sgd(p, g, buf, scalars):
        lr, wd, momentum, keep, gain = scalars
        for i in prange(p.size):
            pi = p[i]
            gi = g[i] + wd * pi if wd != 0 else g[i]
            d = gi
            if has_momentum:
                b = keep * buf[i] + gain * gi
                buf[i] = b
                d = gi + momentum * b if nesterov else b
            p[i] = pi - lr * d
    return sgd


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T pi = p;
T gi = wd != 0 ? g + wd * pi : g;
T d = gi;
#if HAS_MOMENTUM
T b = keep * buf + gain * gi;
buf = b;
d = NESTEROV ? gi + momentum * b : b;
#endif
p = pi - lr * d;
"""

RULE = Rule("sgd", STATE, SCALARS, host_scalars, reference, state_used, variant=variant,
            numba_loop=numba_loop, cuda_body=CUDA_BODY)
