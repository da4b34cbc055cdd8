"""RMSprop, plain, centered and with momentum (PyTorch semantics).

    g   = g + wd*p
    sq  = alpha*sq + (1-alpha)*g^2
    avg = sqrt(sq - ga^2) + eps,  ga = alpha*ga + (1-alpha)*g   (centered)
    avg = sqrt(sq) + eps                                         (otherwise)
    buf = momentum*buf + g/avg;  p -= lr*buf                     (momentum > 0)
    p  -= lr * g/avg                                             (otherwise)
"""
from __future__ import annotations

import numpy as np

from ._cpu import prange
from ._rule import Rule

STATE = ("sq", "ga", "buf")
SCALARS = ("lr", "wd", "alpha", "one_minus_alpha", "eps", "momentum")


def variant(hp):
    return {"centered": hp["centered"], "has_momentum": hp["momentum"] != 0}


def state_used(hp):
    return ("sq",) + (("ga",) if hp["centered"] else ()) + (("buf",) if hp["momentum"] != 0 else ())


def host_scalars(hp, t, lr, extra):
    alpha = hp["alpha"]
    return (lr, hp["weight_decay"], alpha, 1.0 - alpha, hp["eps"], hp["momentum"]), extra


def reference(p, g, sq, ga, buf, scalars, *, centered, has_momentum):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, wd, alpha, one_minus_alpha, eps, momentum = scalars
    if wd != 0:
        g = g + wd * p
    sq *= alpha
    sq += one_minus_alpha * (g * g)
    if centered:
        ga *= alpha
        ga += one_minus_alpha * g
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if has_momentum:
        buf *= momentum
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * (g / avg)


def numba_loop(centered, has_momentum):
    """Numba CPU kernel: the formula above in one pass over the arrays."""
    def rmsprop(p, g, sq, ga, buf, scalars):
        lr, wd, alpha, one_minus_alpha, eps, momentum = scalars
        for i in prange(p.size):
            pi = p[i]
            gi = g[i] + wd * pi if wd != 0 else g[i]
            s = alpha * sq[i] + one_minus_alpha * (gi * gi)
            sq[i] = s
            if centered:
                a = alpha * ga[i] + one_minus_alpha * gi
                ga[i] = a
                avg = np.sqrt(s - a * a) + eps
            else:
                avg = np.sqrt(s) + eps
            if has_momentum:
                b = momentum * buf[i] + gi / avg
                buf[i] = b
                p[i] = pi - lr * b
            else:
                p[i] = pi - lr * (gi / avg)
    return rmsprop


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T pi = p;
T gi = wd != 0 ? g + wd * pi : g;
T s = alpha * sq + one_minus_alpha * (gi * gi);
sq = s;
#if CENTERED
T a = alpha * ga + one_minus_alpha * gi;
ga = a;
T avg = sqrt(s - a * a) + eps;
#else
T avg = sqrt(s) + eps;
#endif
#if HAS_MOMENTUM
T b = momentum * buf + gi / avg;
buf = b;
p = pi - lr * b;
#else
p = pi - lr * (gi / avg);
#endif
"""

RULE = Rule("rmsprop", STATE, SCALARS, host_scalars, reference, state_used, variant=variant,
            numba_loop=numba_loop, cuda_body=CUDA_BODY)
