"""Newton's method with Levenberg damping (``minimize(method="Newton")``, fastopt's).

d solves (H + mu I) d = -g with mu = 0 when H is positive definite (Cholesky succeeds);
otherwise mu starts at ``damping`` * max(1, max|H_ii|) and grows tenfold until it does,
so d is a descent direction, as the notes teach; then a strong-Wolfe step from t = 1.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._result import host_array as host
from . import options as o
from .descent import MESSAGES, STATUS, descend, norm
from .hessian import HessianProducts, products_for
from .method import Method, Option, Outcome, Run
from .problem import Problem


class Newton:
    """The dense damped Newton direction, for ``descent.descend``."""

    unit_step = True                          # the line search starts from t = 1

    def __init__(self, problem: Problem, products: HessianProducts, damping: float) -> None:
        self.ops, self.products, self.damping = problem.ops, products, damping
        self.mu = 0.0                       # the damping of the last direction

    def direction(self, problem: Problem) -> float:
        xp = self.ops.xp
        self.products.at(problem)
        H = self.products.matrix
        if not isinstance(H, xp.ndarray):
            raise TypeError("minimize: method Newton needs hess(x) to return a dense matrix; "
                            "use Newton-CG for LinearOperators and sparse matrices")
        if not bool(xp.isfinite(H).all()):
            raise FloatingPointError(f"minimize: hess(x) is not finite at x = "
                                     f"{host(problem.x)!r:.80}")
        scale = max(1.0, float(xp.max(xp.abs(xp.diagonal(H)))))
        mu, eye = 0.0, xp.eye(H.shape[0], dtype=H.dtype)
        while (d := damped_step(H + mu * eye, problem.g, xp)) is None:
            mu = self.damping * scale if mu == 0.0 else 10.0 * mu
            if not math.isfinite(mu * scale):   # damping's limit: along -g (H + mu I, inf)
                d = -problem.g / scale
                break
        self.mu = mu
        problem.d[...] = d
        problem.t_trial = None
        return self.ops.dot(problem.g, problem.d)

    def restart(self, problem: Problem) -> bool:
        return False

    def accepted(self, problem: Problem, t: float, gtd: float, x_old: Any, g_old: Any
                 ) -> None:
        pass

    def gnorm(self, problem: Problem, order: float) -> float:
        return norm(self.ops, problem.g, order)


def damped_step(A: Any, g: Any, xp: Any) -> Any | None:
    """d solving A d = -g when A is positive definite to working precision: its Cholesky
    factorisation succeeds (CuPy's fills NaN where NumPy's raises) and the solve gives a
    finite d (a pivot of rounding size passes Cholesky and makes the solve singular);
    else None."""
    try:
        L = xp.linalg.cholesky(A)
        if not bool(xp.isfinite(L).all()):
            return None
        d = xp.linalg.solve(A, -g)
    except np.linalg.LinAlgError:
        return None
    return d if bool(xp.isfinite(d).all()) else None


def run(problem: Problem, run: Run) -> Outcome:
    products = products_for(problem, run)
    nit, reason = descend(problem, Newton(problem, products, run.options["damping"]), run)
    return nit, reason, dict(nhev=products.nhev)


def needs(jac_mode: str, hess: Any, hessp: Any) -> None:
    if not callable(hess):
        raise ValueError(f"minimize: method Newton needs hess, a function hess(x) returning "
                         f"the (n, n) Hessian, got {hess!r:.60}; Newton-CG takes hessp, "
                         f"finite differences or a HessianUpdateStrategy")


METHOD = Method(
    name="Newton", summary="dense Newton with Levenberg damping, for small problems "
                           "(fastopt's; needs hess)",
    options=dict(o.GRADIENT, c2=Option(0.9, o.fraction), damping=Option(1e-3, o.positive)),
    tol=("gtol",), messages=MESSAGES, statuses=STATUS, run=run, hessian="required",
    needs=needs, scipy=False)
