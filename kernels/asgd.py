"""ASGD: averaged stochastic gradient descent (PyTorch semantics).

    g   = -g                        (maximize=True)
    g   = g + wd*p
    p   = p*(1 - lambd*eta) - eta*g
    ax  = ax + (p - ax)*mu          (ax = p while mu = 1)
then, for the next step:  eta = lr / (1 + lambd*lr*t)^alpha,  mu = 1 / max(1, t - t0)
(eta starts at lr, mu at 1; ``ax``, the average of the iterates from step t0 on, is what
to evaluate the model with).
"""
from __future__ import annotations

from . import _rule as r

HYPERPARAMS = (r.lr(1e-2), r.nonnegative("lambd", 1e-4, "decay term of the step size"),
               r.nonnegative("alpha", 0.75, "power of the step size's decay"),
               r.nonnegative("t0", 1e6, "the step from which the iterates are averaged"),
               r.weight_decay(), r.maximize())
STATE = ("ax",)
SCALARS = ("eta", "shrink", "mu", "averaging", "wd", "sign")


def host_scalars(hp, t, lr, extra):
    eta = lr if t == 1 else extra["eta"]
    mu = extra["mu"]
    lambd, alpha = hp["lambd"], hp["alpha"]
    following = {"eta": lr / (1.0 + lambd * lr * t) ** alpha,
                 "mu": 1.0 / max(1.0, t - hp["t0"])}
    return ((eta, 1.0 - lambd * eta, mu, 0.0 if mu == 1.0 else 1.0, hp["weight_decay"],
             -1.0 if hp["maximize"] else 1.0), following)


def reference(p, g, ax, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    eta, shrink, mu, averaging, wd, sign = scalars
    p *= shrink
    p -= eta * g
    if averaging:
        ax += (p - ax) * mu
    else:
        ax[...] = p


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    (ax,) = state
    eta, shrink, mu, averaging, wd, sign = s
    pn = pi * shrink - eta * gi
    p[i] = pn
    ax[i] = ax[i] + (pn - ax[i]) * mu if averaging != 0 else pn


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
const T pn = pi * shrink - eta * gi;
p = pn;
ax = averaging != 0 ? ax + (pn - ax) * mu : pn;
"""

RULE = r.Rule("asgd", "ASGD", "ASGD: SGD with a decaying step size and the average of its "
              "iterates.", __doc__, HYPERPARAMS, STATE, SCALARS, host_scalars, reference,
              cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=1.5e-2, rosenbrock=1e-3, logistic=1.0, digits=0.2),
              extra={"eta": 0.0, "mu": 1.0},
              extra_kinds={"eta": "nonnegative", "mu": "unit_interval_closed"},
              torch_class="ASGD",
              torch_state={"ax": "ax", "eta": "eta", "mu": "mu"})
