"""Nadam: Adam with Nesterov momentum (PyTorch semantics, and the textbook form).

    g   = -g                        (maximize=True)
    p   = p*(1 - lr*wd)          (decoupled_weight_decay: wd not added to g)
    g   = g + wd*p
    m   = b1*m + (1-b1)*g;   v = b2*v + (1-b2)*g^2
    den = sqrt(v/(1-b2^t)) + eps
    p  -= cg*g/den + cm*m/den

PyTorch (momentum_decay = psi):  mu_t = b1*(1 - 0.5*0.96^(t*psi)), mu_next at t+1,
    mu_product *= mu_t,  cg = lr*(1-mu_t)/(1-mu_product),
    cm = lr*mu_next/(1-mu_product*mu_next).
Textbook / optax (momentum_decay = None):  cg = lr*(1-b1)/(1-b1^t),
    cm = lr*b1/(1-b1^(t+1)).
"""
from __future__ import annotations

import numpy as np

from . import _rule as r
from .adam import update_moments

HYPERPARAMS = (r.lr(2e-3), r.betas((0.9, 0.999)),
               r.nonnegative("eps", 1e-8, "added to the denominator"), r.weight_decay(),
               r.Hyper("momentum_decay", 4e-3, "optional_nonnegative",
                       "psi of the momentum schedule; None: the textbook (optax) form"),
               r.flag("decoupled_weight_decay", False, "p *= 1 - lr*weight_decay (AdamW's "
                      "decay) instead of g += weight_decay*p"),
               r.maximize())
STATE = ("m", "v")
SCALARS = ("cg", "cm", "wd", "decay", "b1", "one_minus_b1", "b2", "one_minus_b2", "bc2", "eps",
           "sign")


def momentum_coefficients(hp, t, lr, mu_product):
    """(cg, cm, new mu_product) of step t."""
    b1 = hp["betas"][0]
    psi = hp["momentum_decay"]
    if psi is None:
        return lr * (1.0 - b1) / (1.0 - b1 ** t), lr * b1 / (1.0 - b1 ** (t + 1)), mu_product
    mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product = mu_product * mu
    return (lr * (1.0 - mu) / (1.0 - mu_product),
            lr * mu_next / (1.0 - mu_product * mu_next), mu_product)


def host_scalars(hp, t, lr, extra):
    b1, b2 = hp["betas"]
    cg, cm, mu_product = momentum_coefficients(hp, t, lr, extra["mu_product"])
    wd, decoupled = hp["weight_decay"], hp["decoupled_weight_decay"]
    return ((cg, cm, 0.0 if decoupled else wd, 1.0 - lr * wd if decoupled else 1.0, b1, 1.0 - b1,
             b2, 1.0 - b2, 1.0 - b2 ** t, hp["eps"], -1.0 if hp["maximize"] else 1.0),
            {"mu_product": mu_product})


def check_loaded_extra(owner, hp, t, extra):
    """A loaded mu_product against the step count: exactly 1 before the first step (no
    factor taken yet). After it any value in [0, 1] can be right: live changes of beta1 or
    of the form (None to a number starts the product at that step) shape the product."""
    if t == 0 and extra["mu_product"] != 1.0:
        raise ValueError(f"{owner}: mu_product={extra['mu_product']!r} does not fit step 0: "
                         "before the first step it is 1")


def reference(p, g, m, v, scalars):
    """NumPy reference: the formula above with whole-array operations, in place."""
    cg, cm, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2, eps, sign = scalars
    update_moments(m, v, g, b1, one_minus_b1, b2, one_minus_b2)
    den = np.sqrt(v / bc2) + eps
    p -= cg * (g / den)
    p -= cm * (m / den)


def cpu_element(i, pi, gi, p, state, s, flags):
    """Numba element body: the formula above for element i."""
    m, v = state
    cg, cm, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2, eps, sign = s
    mi = b1 * m[i] + one_minus_b1 * gi
    vi = b2 * v[i] + one_minus_b2 * gi * gi
    m[i] = mi
    v[i] = vi
    den = np.sqrt(vi / bc2) + eps
    p[i] = pi - cg * (gi / den) - cm * (mi / den)


# CuPy kernel body (one element; see kernels/_gpu.py for the declarations).
CUDA_BODY = """
T mi = b1 * m + one_minus_b1 * gi;
T vi = b2 * v + one_minus_b2 * gi * gi;
m = mi;
v = vi;
T den = sqrt(vi / bc2) + eps;
p = pi - cg * (gi / den) - cm * (mi / den);
"""

RULE = r.Rule("nadam", "Nadam", "Nadam: Adam with Nesterov momentum.", __doc__, HYPERPARAMS,
              STATE, SCALARS, host_scalars, reference, cpu_element, CUDA_BODY,
              tuned_lr=dict(quadratic=5e-2, rosenbrock=1e-2, logistic=5e-2, digits=3e-3),
              extra={"mu_product": 1.0}, extra_kinds={"mu_product": "unit_interval_closed"},
              check_loaded_extra=check_loaded_extra, nonnegative_state=("v",),
              torch_class="NAdam",
              torch_state={"m": "exp_avg", "v": "exp_avg_sq", "mu_product": "mu_product"})
