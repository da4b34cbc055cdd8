"""The line-search descent loop shared by the CG, BFGS and Newton methods.

Each method gives the search direction; this loop runs the strong-Wolfe search from
SciPy's first trial step, accepts the step, and applies SciPy's stopping tests and
statuses for these methods (``scipy.optimize._optimize``): the gradient's norm against
gtol, maxiter, the callback, a failed search ("precision loss"), NaN.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Protocol

from .linesearch import strong_wolfe
from .method import Run
from .problem import Problem

MESSAGES = {       # SciPy 1.17's texts for CG, BFGS and Newton-CG
    "success": "Optimization terminated successfully.",
    "maxiter": "Maximum number of iterations has been exceeded.",
    "pr_loss": "Desired error not necessarily achieved due to precision loss.",
    "nan": "NaN result encountered.",
    "callback": "`callback` raised `StopIteration`.",
}
STATUS = {"success": 0, "maxiter": 1, "pr_loss": 2, "nan": 3, "callback": 99}


class Direction(Protocol):
    unit_step: bool          # the line search starts from t = 1, not SciPy's first trial

    def direction(self, problem: Problem) -> float:
        """Write the search direction into problem.d; return g.d."""

    def restart(self, problem: Problem) -> bool:
        """After a failed line search: True if a new direction is worth a try."""

    def accepted(self, problem: Problem, t: float, gtd: float, x_old: Any,
                 g_old: Any) -> None:
        """Learn from the step t along d just taken (x_old, g_old: the previous point)."""

    def gnorm(self, problem: Problem, order: float) -> float:
        """The norm of problem.g for the stopping test."""


def norm(ops: Any, v: Any, order: float) -> float:
    """SciPy's vecnorm: max|v| for order inf, min|v| for -inf, else (sum |v|^order)^(1/order)."""
    if order == math.inf:
        return ops.max_abs(v)
    a = abs(v.astype(float, copy=False))
    if order == -math.inf:
        return float(a.min()) if a.size else 0.0
    return float((a ** order).sum() ** (1.0 / order))


def first_trial(f: float, f_prev: float, gtd: float) -> float:
    """SciPy's first trial step: min(1, 1.01 * 2 (f - f_prev) / g.d) (Nocedal & Wright
    eq. 3.60, capped at the unit step), or 1 where that is not a positive number."""
    t = 1.01 * 2.0 * (f - f_prev) / gtd if gtd != 0 else math.nan
    return min(1.0, t) if t > 0 and math.isfinite(t) else 1.0


def line_step(problem: Problem, gtd: float, f_prev: float, c1: float, c2: float,
              maxls: int, unit_step: bool = False) -> float | None:
    """Search along problem.d for a strong-Wolfe step from t = 1 (``unit_step``) or SciPy's
    first trial, and take it (problem.f, x and g move there); the step length, or None
    when the search finds no lower f."""
    t0 = 1.0 if unit_step else first_trial(problem.f, f_prev, gtd)
    t, f_new, _, _, ok = strong_wolfe(problem.phi, problem.f, gtd, t0, c1=c1, c2=c2,
                                      max_evals=maxls)
    if not ok or not f_new <= problem.f:
        return None
    problem.accept(t)
    problem.f = f_new
    return t


def stopped_by(report: Callable | None, problem: Problem, shape: tuple) -> bool:
    """Call the callback with a copy of x (x0's shape) and f; True if it raised
    StopIteration."""
    if report is not None:
        try:
            report(problem.x.reshape(shape).copy(), problem.f)
        except StopIteration:
            return True
    return False


def descend(problem: Problem, method: Direction, run: Run) -> tuple[int, str]:
    """Iterations until max|g| (or the ``norm`` option's norm) <= gtol: (nit, reason)."""
    ops, opts = problem.ops, run.options
    f_prev = problem.f + math.sqrt(ops.dot(problem.g, problem.g)) / 2   # first |t d| ~ 1
    gnorm = norm(ops, problem.g, opts["norm"])
    nit, reason = 0, None
    while gnorm > opts["gtol"] and nit < opts["maxiter"]:
        gtd = method.direction(problem)
        f_before = problem.f
        t = line_step(problem, gtd, f_prev, opts["c1"], opts["c2"], opts["maxls"],
                      method.unit_step)
        if t is None:
            if method.restart(problem):
                continue
            reason = "pr_loss"
            break
        f_prev = f_before
        nit += 1
        # problem.x_trial and problem.g_trial hold the previous point until the next trial
        method.accepted(problem, t, gtd, problem.x_trial, problem.g_trial)
        if stopped_by(run.report, problem, run.shape):
            return nit, "callback"
        gnorm = method.gnorm(problem, opts["norm"])
        if gnorm <= opts["gtol"]:
            break
        if opts.get("xrtol", 0.0) and t * math.sqrt(ops.dot(problem.d, problem.d)) <= \
                opts["xrtol"] * (opts["xrtol"] + math.sqrt(ops.dot(problem.x, problem.x))):
            break
        if not math.isfinite(problem.f):
            reason = "pr_loss"
            break
    if reason is None:
        reason = "maxiter" if nit >= opts["maxiter"] else \
            "nan" if not (math.isfinite(problem.f) and math.isfinite(gnorm)) else "success"
    return nit, reason
