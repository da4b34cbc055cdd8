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

from ._rule import Rule, flag

STATE = ("sq", "ga", "buf")
SCALARS = ("lr", "wd", "alpha", "one_minus_alpha", "eps", "momentum", "centered",
           "has_momentum")


def state_used(hp):
    return ("sq",) + (("ga",) if hp["centered"] else ()) + (("buf",) if hp["momentum"] != 0 else ())


def host_scalars(hp, t, lr, extra):
    alpha = hp["alpha"]
    return (lr, hp["weight_decay"], alpha, 1.0 - alpha, hp["eps"], hp["momentum"],
            flag(hp["centered"]), flag(hp["momentum"] != 0)), extra


def reference(p, g, sq, ga, buf, lr, wd, alpha, one_minus_alpha, eps, momentum, centered,
              has_momentum):
    """NumPy reference: the formula above with whole-array operations, in place."""
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


RULE = Rule("rmsprop", STATE, SCALARS, host_scalars, reference, state_used)
