"""L-BFGS (``minimize(method="L-BFGS-B")`` without bounds, and the iterations of
``fastopt.LBFGS``): the last m pairs s = x+ - x, y = g+ - g in ring buffers on the
backend's device, the direction d = -H g by the two-loop recursion, a line search.

The two-loop recursion and the pair update run as fused kernels
(``fastopt.kernels.lbfgs``); the line searches work on host scalars.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from .._result import inverse_hessian
from ..kernels import lbfgs as kernels
from . import options as o
from .descent import stopped_by
from .linesearch import LINE_SEARCHES
from .method import Method, Option, Outcome, Run
from .problem import EPS, Problem


class History:
    """The last m (s, y) pairs in ring buffers on the backend's device: m + 1 rows, so that
    a new pair is written into a free row and a pair the curvature test rejects leaves
    the stored ones intact."""

    def __init__(self, ops: Any, n: int, m: int) -> None:
        self.ops, self.m = ops, m
        self.S, self.Y = ops.zeros((m + 1, n)), ops.zeros((m + 1, n))
        self.rho = np.zeros(m + 1)
        self.order: list[int] = []      # rows, oldest first
        self.gamma = 1.0

    def reset(self) -> None:
        self.order, self.gamma = [], 1.0

    def direction(self, g: Any, d: Any) -> None:
        """d = -H g (the scaled steepest descent -g when the memory is empty)."""
        self.ops.two_loop(g, self.S, self.Y, self.rho, np.asarray(self.order, np.int64),
                          self.gamma, d)

    def push(self, x_new: Any, x: Any, g_new: Any, g: Any, descent: float
             ) -> tuple[float, float, float]:
        """Store s = x_new - x, y = g_new - g unless its curvature s.y <= eps * descent,
        where descent = -g.s (L-BFGS-B's test: it holds at every scale of f, where
        s.y <= eps*y.y dropped every pair once f's curvature passed ~1/eps); returns (s.y,
        y.y, max|g_new|)."""
        row = min(set(range(self.m + 1)) - set(self.order))
        sy, yy, gmax = self.ops.update_pair(x_new, x, g_new, g, self.S[row], self.Y[row])
        if sy > EPS * descent and yy > 0:
            if len(self.order) == self.m:
                self.order.pop(0)
            self.order.append(row)
            self.rho[row] = 1.0 / sy
            self.gamma = sy / yy
        return sy, yy, gmax


def set_direction(problem: Problem, history: History) -> float:
    """d = -H g from the history (forgetting it when that is not a descent direction);
    returns g.d."""
    problem.t_trial = None                        # trials along the old d are stale
    history.direction(problem.g, problem.d)
    gtd = problem.ops.dot(problem.g, problem.d)
    if not gtd < 0:
        history.reset()
        history.direction(problem.g, problem.d)
        gtd = problem.ops.dot(problem.g, problem.d)
    return gtd


def iterations(problem: Problem, history: History, search: Callable, maxls: int,
               lr: float, partial_steps: bool) -> Iterator[tuple[float, float, float]]:
    """L-BFGS iterations: yields (f before, step length t, max|g|) after each accepted step;
    ends when the line search finds no decrease even from steepest descent. A search that
    failed but found a lower f is taken with ``partial_steps`` (torch's LBFGS), and
    otherwise treated as no decrease (L-BFGS-B)."""
    while True:
        gtd = set_direction(problem, history)
        # first step from an empty memory: |t d| <= 1, as SciPy (and PyTorch) start
        t0 = lr if history.order or not -gtd > 0 else lr * min(1.0, 1.0 / math.sqrt(-gtd))
        t, f_new, _, _, ok = search(problem.phi, problem.f, gtd, t0, max_evals=maxls)
        if not (ok or partial_steps and t > 0.0) or not f_new <= problem.f:
            if history.order:                # retry once from steepest descent
                history.reset()
                continue
            return
        f_old, x_old, g_old = problem.f, problem.x, problem.g
        problem.accept(t)
        problem.f = f_new
        _, _, gmax = history.push(problem.x, x_old, problem.g, g_old, -t * gtd)
        yield f_old, t, gmax


def ops_for(backend_name: str, n: int, dtype: np.dtype, method: str = "l-bfgs-b",
            lasting: bool = False) -> Any:
    """The operations of a resolved backend for ``method`` (a method's key), for n
    elements of ``dtype``. ``lasting``: for an optimizer that steps for a whole training
    loop, the numba kernels at every size (numba's one-time start, which a single
    minimize below ~1e4 elements never repays, is repaid within a few steps)."""
    if backend_name == "cupy":
        return kernels.CupyOps(n, dtype)
    return kernels.HostOps(n, dtype, compiled=backend_name == "numba", by_size=not lasting,
                           method=method)


# -- minimize(method="L-BFGS-B") ------------------------------------------------------------
def run(problem: Problem, run: Run) -> Outcome:
    """L-BFGS iterations until a stopping test holds. After each iteration, in
    L-BFGS-B's order: the callback, maxiter, maxfun (checked only between iterations, so
    nfev may pass it), then the convergence tests."""
    opts = run.options
    history = History(problem.ops, problem.x.size, opts["history_size"])
    nit, reason = _iterate(problem, history, run)
    return nit, reason, dict(hess_inv=inverse_hessian(history.S, history.Y, history.order))


def _iterate(problem: Problem, history: History, run: Run) -> tuple[int, str]:
    opts, ops = run.options, problem.ops
    gmax = ops.max_abs(problem.g)
    if not (math.isfinite(problem.f) and math.isfinite(gmax)):
        return 0, "nonfinite"
    if gmax <= opts["gtol"]:
        return 0, "gtol"
    steps = iterations(problem, history, LINE_SEARCHES[opts["line_search"]], opts["maxls"],
                       lr=1.0, partial_steps=False)
    nit = 0
    while True:
        step = next(steps, None)
        if step is None:
            return nit, "maxfun" if run.nfev() > opts["maxfun"] else "linesearch"
        f_old, _, gmax = step
        nit += 1
        if stopped_by(run.report, problem, run.shape):
            return nit, "callback"
        if nit >= opts["maxiter"]:
            return nit, "maxiter"
        if run.nfev() > opts["maxfun"]:
            return nit, "maxfun"
        if gmax <= opts["gtol"]:
            return nit, "gtol"
        if (f_old - problem.f) <= opts["ftol"] * max(abs(f_old), abs(problem.f), 1.0):
            return nit, "ftol"


METHOD = Method(
    name="L-BFGS-B",
    summary="limited-memory BFGS with a strong-Wolfe (or Armijo) search, without bounds; "
            "fastopt's default",
    options=dict(maxiter=Option(15000, o.limit), maxfun=Option(15000, o.limit),
                 history_size=Option(10, o.count), gtol=Option(1e-5, o.nonnegative),
                 ftol=Option(2.220446049250313e-09, o.nonnegative), maxls=o.MAXLS,
                 line_search=Option("strong_wolfe", o.one_of(tuple(LINE_SEARCHES))),
                 disp=o.DISP, eps=Option(1e-8), finite_diff_rel_step=o.FINITE_DIFF_REL_STEP,
                 workers=o.WORKERS),
    tol=("ftol", "gtol"),
    messages={       # SciPy 1.17's texts for L-BFGS-B
        "gtol": "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
        "ftol": "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
        "maxiter": "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
        "maxfun": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
        "linesearch": "ABNORMAL: ",
        "nonfinite": "ABNORMAL: THE OBJECTIVE OR ITS GRADIENT IS NOT FINITE AT x0",
        "callback": "`callback` raised `StopIteration`.",
    },
    statuses={"gtol": 0, "ftol": 0, "maxiter": 1, "maxfun": 1, "linesearch": 2,
              "nonfinite": 2, "callback": 99},
    run=run, aliases=("L-BFGS",), option_aliases={"maxcor": "history_size"},
    deprecated={"iprint": "has no effect (SciPy 1.15 deprecated it and prints nothing "
                          "either)"}, warns=False)
