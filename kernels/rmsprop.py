"""RMSprop, plain, centered and with momentum (PyTorch semantics).

    g   = -g                        (maximize=True)
    g   = g + wd*p
    sq  = alpha*sq + (1-alpha)*g^2
    avg = sqrt(sq - ga^2) + eps,  ga = alpha*ga + (1-alpha)*g   (centered; inf where sq
                                  is: sq - ga^2 is inf - inf there, which torch's fused
                                  multiply-add never forms)
    avg = sqrt(sq) + eps                                         (otherwise)
    buf = momentum*buf + g/avg;  p -= lr*buf                     (momentum > 0)
    p  -= lr * g/avg                                             (otherwise)
"""
from __future__ import annotations

import numpy as np

from . import _rule as r

HYPERPARAMS = (r.lr(1e-2), r.unit_interval("alpha", 0.99, "decay rate of sq", closed=True),
               r.nonnegative("eps", 1e-8, "added to the root"), r.weight_decay(),
               r.nonnegative("momentum", 0.0, "momentum of buf (0: none)"),
               r.flag("centered", False, "divide by the centered (variance) estimate"),
               r.maximize())
STATE = ("sq", "ga", "buf")
SCALARS = ("lr", "wd", "alpha", "one_minus_alpha", "eps", "momentum", "sign")


def variant(hp):
    return {"centered": hp["centered"], "has_momentum": hp["momentum"] != 0}


def state_used(hp):
    return ("sq",) + (("ga",) if hp["centered"] else ()) + (("buf",) if hp["momentum"] != 0 else ())


def host_scalars(hp, t, lr, extra):
    alpha = hp["alpha"]
    return (lr, hp["weight_decay"], alpha, 1.0 - alpha, hp["eps"], hp["momentum"],
            -1.0 if hp["maximize"] else 1.0), extra


def reference(p, g, sq, ga, buf, scalars, *, centered, has_momentum):
    """NumPy reference: the formula above with whole-array operations, in place."""
    lr, wd, alpha, one_minus_alpha, eps, momentum, sign = scalars
    sq *= alpha
    sq += one_minus_alpha * g * g
    if centered:
        ga *= alpha
        ga += one_minus_alpha * g
        avg = np.sqrt(np.where(sq == np.inf, sq, sq - ga * ga)) + eps
    else:
        avg = np.sqrt(sq) + eps
    if has_momentum:
        buf *= momentum
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * (g / avg)


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    sq, ga, buf = state
    centered, has_momentum = flags
    lr, wd, alpha, one_minus_alpha, eps, momentum, sign = s
    si = alpha * sq[i] + one_minus_alpha * gi * gi
    sq[i] = si
    if centered:
        a = alpha * ga[i] + one_minus_alpha * gi
        ga[i] = a
        avg = np.sqrt(si if si == np.inf else si - a * a) + eps
    else:
        avg = np.sqrt(si) + eps
    if has_momentum:
        b = momentum * buf[i] + gi / avg
        buf[i] = b
        p[i] = pi - lr * b
    else:
        p[i] = pi - lr * (gi / avg)


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T s = alpha * sq + one_minus_alpha * gi * gi;
sq = s;
#if CENTERED
T a = alpha * ga + one_minus_alpha * gi;
ga = a;
T avg = sqrt(isinf(s) ? s : s - a * a) + eps;
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

RULE = r.Rule("rmsprop", "RMSprop", "RMSprop, optionally centered and with momentum.", __doc__,
              HYPERPARAMS, STATE, SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=1e-2, rosenbrock=1e-3, logistic=1e-2, digits=1e-3),
              flags=("centered", "has_momentum"), variant_of=variant, state_used_by=state_used,
              nonnegative_state=("sq",),
              torch_class="RMSprop",
              torch_state={"sq": "square_avg", "ga": "grad_avg", "buf": "momentum_buffer"})
