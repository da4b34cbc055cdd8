"""SGD with momentum, dampening and Nesterov (PyTorch semantics).

    g   = -g                        (maximize=True)
    g   = g + wd*p
    buf = g                              (t = 1)
    buf = momentum*buf + (1-dampening)*g (t > 1)
    d   = g + momentum*buf if nesterov else buf      (d = g when momentum = 0)
    p  -= lr*d

The host folds the t = 1 case into two scalars: keep = 0, gain = 1 at t = 1, else
keep = momentum, gain = 1 - dampening, so every step runs buf = keep*buf + gain*g.
"""
from __future__ import annotations

from . import _rule as r

HYPERPARAMS = (r.lr(1e-3), r.nonnegative("momentum", 0.0, "momentum of buf (0: plain SGD)"),
               r.unit_interval("dampening", 0.0, "buf = momentum*buf + (1-dampening)*g",
                               closed=True),
               r.weight_decay(), r.flag("nesterov", False, "Nesterov momentum"), r.maximize())
STATE = ("buf",)
SCALARS = ("lr", "wd", "momentum", "keep", "gain", "sign")


def variant(hp):
    return {"has_momentum": hp["momentum"] != 0, "nesterov": hp["nesterov"]}


def check(owner, hp):
    """Nesterov momentum needs momentum and no dampening (as in PyTorch)."""
    if hp["nesterov"] and (hp["momentum"] == 0 or hp["dampening"] != 0):
        raise ValueError(f"{owner}: nesterov=True needs momentum > 0 and dampening = 0, got "
                         f"momentum={hp['momentum']!r}, dampening={hp['dampening']!r}")


def state_used(hp):
    return STATE if hp["momentum"] != 0 else ()


def host_scalars(hp, t, lr, extra):
    first = t == 1
    keep = 0.0 if first else hp["momentum"]
    gain = 1.0 if first else 1.0 - hp["dampening"]
    return (lr, hp["weight_decay"], hp["momentum"], keep, gain,
            -1.0 if hp["maximize"] else 1.0), extra


def reference(p, g, buf, scalars, *, has_momentum, nesterov):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, wd, momentum, keep, gain, sign = scalars
    if has_momentum:
        buf *= keep
        buf += gain * g
        d = g + momentum * buf if nesterov else buf
    else:
        d = g
    p -= lr * d


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    (buf,) = state
    has_momentum, nesterov = flags
    lr, wd, momentum, keep, gain, sign = s
    d = gi
    if has_momentum:
        b = keep * buf[i] + gain * gi
        buf[i] = b
        d = gi + momentum * b if nesterov else b
    p[i] = pi - lr * d


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T d = gi;
#if HAS_MOMENTUM
T b = keep * buf + gain * gi;
buf = b;
d = NESTEROV ? gi + momentum * b : b;
#endif
p = pi - lr * d;
"""

RULE = r.Rule("sgd", "SGD", "Stochastic gradient descent with optional (Nesterov) momentum.",
              __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element,
              CUDA_BODY, tuned_lr=dict(quadratic=1.5e-2, rosenbrock=1e-3, logistic=1.0, digits=0.2),
              flags=("has_momentum", "nesterov"), variant_of=variant, state_used_by=state_used,
              check=check, torch_class="SGD", torch_state={"buf": "momentum_buffer"},
              torch_step=False,
              demo_variants=(("momentum", dict(lr=0.05, momentum=0.9)),
                             ("nesterov", dict(lr=0.05, momentum=0.9, nesterov=True))))
