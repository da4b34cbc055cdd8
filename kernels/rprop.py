"""Rprop: resilient backpropagation, a step size per coordinate (PyTorch semantics).

    g    = -g                                  (maximize=True)
    s    = sign(g * prev)
    f    = etaplus (s > 0), etaminus (s < 0), 1 (s = 0)
    size = clamp(size * f, step_min, step_max)  (each coordinate's step; it starts at lr)
    g    = 0 where f = etaminus                (the sign flipped: no move, and no flip next)
    p   -= sign(g) * size;   prev = g
"""
from __future__ import annotations

import numpy as np

from . import _rule as r
from ._cpu import sign as sign_of

HYPERPARAMS = (r.lr(1e-2),
               r.Hyper("etas", (0.5, 1.2), "etas", "(etaminus, etaplus): step size factors "
                       "when the grad's sign flips / holds"),
               r.Hyper("step_sizes", (1e-6, 50.0), "step_sizes",
                       "(smallest, largest) step size"),
               r.maximize())
STATE = ("prev", "size")
SCALARS = ("lr", "fresh", "etaminus", "etaplus", "step_min", "step_max", "one", "sign")


def host_scalars(hp, t, lr, extra):
    etaminus, etaplus = hp["etas"]
    step_min, step_max = hp["step_sizes"]
    return ((lr, 1.0 if t == 1 else 0.0, etaminus, etaplus, step_min, step_max, 1.0,
             -1.0 if hp["maximize"] else 1.0), extra)


def reference(p, g, prev, size, scalars):
    """NumPy reference: the formula above with whole-array operations, in place (``size``
    holds each coordinate's step)."""
    lr, fresh, etaminus, etaplus, step_min, step_max, one, sign = scalars
    if fresh:
        size[...] = lr
    s = np.sign(g * prev)
    f = np.where(s > 0, etaplus, np.where(s < 0, etaminus, np.where(s == 0, 1, s)))
    size[...] = np.clip(size * f.astype(size.dtype), step_min, step_max)
    g = np.where(f == etaminus, 0, g).astype(p.dtype)
    p -= np.sign(g) * size
    prev[...] = g


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    prev, size = state
    lr, fresh, etaminus, etaplus, step_min, step_max, one, sign = s
    si = lr if fresh != 0 else size[i]
    d = gi * prev[i]
    f = etaplus if d > 0 else (etaminus if d < 0 else (one if d == 0 else d))
    si = si * f
    si = step_min if si < step_min else (step_max if si > step_max else si)
    size[i] = si
    gi = one - one if f == etaminus else gi        # (0 in the arrays' dtype)
    p[i] = pi - sign_of(gi) * si
    prev[i] = gi


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T si = fresh != 0 ? lr : size;
const T d = gi * prev;
const T f = d > 0 ? etaplus : (d < 0 ? etaminus : (d == 0 ? T(1) : d));
si = si * f;
si = si < step_min ? step_min : (si > step_max ? step_max : si);
size = si;
const T gn = f == etaminus ? T(0) : gi;
const T sg = gn > 0 ? T(1) : (gn < 0 ? T(-1) : (gn == 0 ? T(0) : gn));
p = pi - sg * si;
prev = gn;
"""

RULE = r.Rule("rprop", "Rprop", "Rprop: a step size per coordinate, grown while the grad's "
              "sign holds and cut when it flips.", __doc__, HYPERPARAMS, STATE, SCALARS,
              host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=1e-2, rosenbrock=1e-3, logistic=1e-2, digits=1e-2),
              nonnegative_state=("size",), torch_class="Rprop", full_batch=True,
              torch_state={"prev": "prev", "size": "step_size"})
