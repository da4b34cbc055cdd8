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

from ._rule import Rule, flag

STATE = ("buf",)
SCALARS = ("lr", "wd", "momentum", "keep", "gain", "nesterov", "has_momentum")


def state_used(hp):
    return STATE if hp["momentum"] != 0 else ()


def host_scalars(hp, t, lr, extra):
    first = t == 1
    keep = 0.0 if first else hp["momentum"]
    gain = 1.0 if first else 1.0 - hp["dampening"]
    return (lr, hp["weight_decay"], hp["momentum"], keep, gain, flag(hp["nesterov"]),
            flag(hp["momentum"] != 0)), extra


def reference(p, g, buf, lr, wd, momentum, keep, gain, nesterov, has_momentum):
    """NumPy reference: the formula above with whole-array operations, in place."""
    if wd != 0:
        g = g + wd * p
    if has_momentum:
        buf *= keep
        buf += gain * g
        d = g + momentum * buf if nesterov else buf
    else:
        d = g
    p -= lr * d


RULE = Rule("sgd", STATE, SCALARS, host_scalars, reference, state_used)
