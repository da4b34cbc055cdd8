"""Newton-CG, SciPy's truncated Newton method (``minimize(method="Newton-CG")``).

At x, solve H z = -g by linear CG from z = 0,
    r = g, p = -g;  repeat:  alpha = r.r / p.Hp;  z += alpha p;  r += alpha Hp;
                             p = -r + (r+.r+ / r.r) p
until sum|r| <= min(0.5, sqrt(sum|g|)) sum|g|; a direction of non-positive curvature ends
it (at the first inner step: z = -(g.g / |p.Hp|) g). 20 n inner steps without either
end the run (status 3) only if z is not a descent direction: SciPy ends it there in any
case, but the unfinished z of CG steps through positive curvature still descends. Then a
strong-Wolfe step along z from t = 1 (the Newton step; SciPy starts from its
first-trial rule, which shrank the steps on Wood until maxiter);
stop when the step's sum|t z| <= n xtol. H p comes from ``hessp``, ``hess`` (one Hessian
per outer iteration) or the gradient (``hessian.HessianProducts``). The inner loop's
passes are fused (``kernels.cg``): curvature (with the finite difference), advance (z, r
and their norms), direction.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import _numdiff
from . import options as o
from .descent import STATUS, line_step, stopped_by
from .hessian import HessianProducts, is_update_strategy, products_for
from .method import Method, Option, Outcome, Run
from .problem import Problem

EPS64 = float(np.finfo(np.float64).eps)
MESSAGES = {"maxiter": "Warning: Maximum number of iterations has been exceeded.",
            "pr_loss": "Warning: Desired error not necessarily achieved due to precision loss.",
            "cg": "Warning: CG iterations didn't converge. The Hessian is not positive "
                  "definite.",
            "nan": "NaN result encountered.", "success": "Optimization terminated successfully.",
            "callback": "`callback` raised `StopIteration`."}


def inner_cg(problem: Problem, products: HessianProducts, r: Any, p: Any, hp: Any,
             maxiter: int) -> bool:
    """The truncated CG solve of H z = -g into problem.d (= z); False if it did not end
    within ``maxiter`` steps."""
    ops, z, g = problem.ops, problem.d, problem.g
    rr, magnitude = ops.call("cg_start", g, z, r, p)
    products.at(problem)
    target, r_l1 = min(0.5, math.sqrt(magnitude)) * magnitude, magnitude
    for i in range(maxiter):
        if r_l1 <= target:
            return True
        curv = products.curvature(problem, p, hp)
        if 0 <= curv <= 3 * EPS64:
            return True
        if curv < 0:
            if i == 0:                        # steepest descent, scaled by the curvature
                ops.step(z, z, -(rr / -curv), g)
            return True
        rr_new, r_l1 = ops.call("cg_advance", z, r, p, products.last_product, rr / curv)
        ops.call("cg_direction", r, p, rr_new / rr)
        rr = rr_new
    return False


def run_newton_cg(problem: Problem, products: HessianProducts, opts: dict,
                  report: Callable | None, shape: tuple) -> tuple[int, str]:
    """SciPy's Newton-CG iterations: (nit, reason)."""
    ops, n = problem.ops, problem.x.size
    r, p, hp = ops.zeros(n), ops.zeros(n), ops.zeros(n)
    update_l1, nit = math.inf, 0
    while update_l1 > n * opts["xtol"]:
        if nit >= opts["maxiter"]:
            return nit, "maxiter"
        problem.t_trial = None
        converged = inner_cg(problem, products, r, p, hp, 20 * n)
        gtd, d_l1 = ops.call("dot_l1", problem.g, problem.d)
        if not (converged or gtd < 0):       # an unfinished solve still gives a descent step
            return nit, "cg"
        t = line_step(problem, gtd, math.nan, opts["c1"], opts["c2"], opts["maxls"],
                      unit_step=True)
        if t is None:
            return nit, "pr_loss"
        nit += 1
        if stopped_by(report, problem, shape):
            return nit, "callback"
        update_l1 = t * d_l1
    return nit, "nan" if math.isnan(problem.f) or math.isnan(update_l1) else "success"


def run(problem: Problem, run: Run) -> Outcome:
    products = products_for(problem, run)
    nit, reason = run_newton_cg(problem, products, run.options, run.report, run.shape)
    return nit, reason, dict(nhev=products.nhev)


def needs(jac_mode: str, hess: Any, hessp: Any) -> None:
    """A gradient (SciPy's error), and hess and hessp of the kinds the products take."""
    if jac_mode not in ("pair", "jac"):
        raise ValueError("minimize: Jacobian is required for Newton-CG method: pass jac=True "
                         "(fun returns (f, g)) or a function jac(x)")
    if not (hess is None or callable(hess) or hess in _numdiff.METHODS
            or is_update_strategy(hess)):
        raise TypeError(f"minimize: hess must be a function hess(x), '2-point', '3-point', "
                        f"'cs' or a HessianUpdateStrategy, got {hess!r:.60}")
    if hessp is not None and not callable(hessp):
        raise TypeError(f"minimize: hessp must be a function hessp(x, p), got "
                        f"{type(hessp).__name__}")


METHOD = Method(
    name="Newton-CG",
    summary="truncated Newton with an inner CG on Hessian products (hessp, hess or "
            "differences of the gradient), SciPy's Newton-CG",
    options=dict(maxiter=o.MAXITER, disp=o.DISP, return_all=o.RETURN_ALL,
                 xtol=Option(1e-5, o.nonnegative), eps=o.GRADIENT["eps"], c1=o.C1,
                 c2=Option(0.9, o.fraction), maxls=o.MAXLS, workers=o.WORKERS),
    tol=("xtol",), messages=MESSAGES, statuses={**STATUS, "cg": 3}, run=run,
    hessian="optional", uses_hessp=True, needs=needs)
