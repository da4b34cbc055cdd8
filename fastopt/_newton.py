"""Newton's method: truncated, with an inner CG (``method="Newton-CG"``), and dense with
Levenberg damping (``method="Newton"``).

Newton-CG (SciPy's algorithm): at x, solve H z = -g by linear CG from z = 0,
    r = g, p = -g;  repeat:  alpha = r.r / p.Hp;  z += alpha p;  r += alpha Hp;
                             p = -r + (r+.r+ / r.r) p
until sum|r| <= min(0.5, sqrt(sum|g|)) sum|g|; a direction of non-positive curvature ends
it (at the first inner step: z = -(g.g / |p.Hp|) g). 20 n inner steps without either
end the run (status 3) only if z is not a descent direction: SciPy ends it there in any
case, but the unfinished z of CG steps through positive curvature still descends. Then a
strong-Wolfe step along z from t = 1 (the Newton step; SciPy starts from its
first-trial rule, which shrank the steps on Wood until maxiter);
stop when the step's sum|t z| <= n xtol. H p comes from ``hessp``, from ``hess`` (one
Hessian per outer iteration), or from the gradient: (g(x + h p) - g) / h with
h = eps (1 + |x|) / |p| (SciPy's h = eps along an unnormalised p made float32 products
noise). The inner loop's passes are fused (``kernels.cg``): curvature (with the finite
difference), advance (z, r and their norms), direction.

Newton: d solves (H + mu I) d = -g with mu = 0 when H is positive definite (Cholesky
succeeds); otherwise mu starts at ``damping`` * max(1, max|H_ii|) and grows tenfold until
it does, so d is a descent direction, as the notes teach; then a strong-Wolfe step from
t = 1.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ._descent import STATUS, line_step, norm, stopped_by
from ._result import host_array as host
from .lbfgs import _Problem

EPS64 = float(np.finfo(np.float64).eps)
MESSAGES = {"maxiter": "Warning: Maximum number of iterations has been exceeded.",
            "pr_loss": "Warning: Desired error not necessarily achieved due to precision loss.",
            "cg": "Warning: CG iterations didn't converge. The Hessian is not positive "
                  "definite.",
            "nan": "NaN result encountered.", "success": "Optimization terminated successfully.",
            "callback": "`callback` raised `StopIteration`."}
NEWTON_CG_STATUS = {**STATUS, "cg": 3}


def is_update_strategy(hess: Any) -> bool:
    """Whether ``hess`` is a quasi-Newton approximation as SciPy's HessianUpdateStrategy
    (BFGS(), SR1()) gives it: initialize(n, "hess"), update(dx, dg), dot(p)."""
    return all(hasattr(hess, name) for name in ("initialize", "update", "dot"))


class HessianProducts:
    """H p at the current point, from ``hessp(x, p, *args)``, ``hess(x, *args)`` (called
    once per point), a HessianUpdateStrategy (updated from point to point), or finite
    differences of ``gradient(v, g_out)`` (also for hess "2-point", "3-point", "cs");
    counts nhev."""

    def __init__(self, ops: Any, shape: tuple, args: tuple, hess: Any, hessp: Callable | None,
                 gradient: Callable, eps: float, checked: Callable) -> None:
        self.ops, self.shape, self.args = ops, shape, args
        self.strategy = hess if is_update_strategy(hess) else None
        self.hess = hess if callable(hess) and self.strategy is None else None
        self.hessp, self.gradient, self.eps = hessp, gradient, eps
        self.checked, self.nhev, self.matrix = checked, 0, None
        n = math.prod(shape)
        self.x_eps, self.g_eps = ops.zeros(n), ops.zeros(n)
        self.last_point: tuple[np.ndarray, np.ndarray] | None = None

    def _update_strategy(self, problem: _Problem) -> None:
        """The quasi-Newton approximation moved to the current point (host arrays)."""
        x, g = host(problem.x).astype(float), host(problem.g).astype(float)
        if self.last_point is None:
            self.strategy.initialize(x.size, "hess")
        else:
            self.strategy.update(x - self.last_point[0], g - self.last_point[1])
        self.last_point, self.matrix = (x, g), self.strategy

    def at(self, problem: _Problem) -> None:
        """A new point: evaluate the Hessian there when ``hess`` gives it."""
        self.x_scale = 1.0 + math.sqrt(self.ops.dot(problem.x, problem.x))
        if self.strategy is not None:
            self._update_strategy(problem)
        elif self.hess is not None:
            self.matrix = hessian_matrix(self.hess(self._view(problem.x), *self.args),
                                         self.ops, problem.x.size)
            self.nhev += 1

    def _view(self, a: Any) -> Any:
        """``a`` in x's shape, read-only where the array type allows: hess and hessp get
        the solver's own arrays, as SciPy's Newton-CG passes them (no copy per product),
        and cannot change them."""
        view = a.reshape(self.shape)
        if isinstance(view, np.ndarray):
            view = view.view()
            view.flags.writeable = False
        return view

    def curvature(self, problem: _Problem, p: Any, hp: Any) -> float:
        """H p, as ``last_product`` (hp, or hessp's own result); returns p.Hp."""
        ops = self.ops
        if self.matrix is not None:
            if isinstance(self.matrix, ops.xp.ndarray):
                ops.call("matvec", self.matrix, p, hp)
            else:               # a LinearOperator, a sparse matrix, a quasi-Newton strategy
                hp[...] = ops.xp.asarray(self.matrix.dot(host(p))).reshape(-1)
            self.last_product = hp
            return ops.dot(p, hp)
        if self.hessp is not None:
            out = self.checked(self.hessp(self._view(problem.x), self._view(p), *self.args),
                               "hessp(x, p)").reshape(-1)
            self.nhev += 1
            if not (isinstance(out, type(hp)) and out.dtype == hp.dtype and
                    out.flags.c_contiguous):
                hp[...] = out
                out = hp
            self.last_product = out       # read, never written: no copy needed
            return ops.dot(p, out)
        h = self.eps * self.x_scale / math.sqrt(ops.dot(p, p))   # |h p| = eps (1 + |x|)
        ops.step(self.x_eps, problem.x, h, p)
        self.gradient(self.x_eps, self.g_eps)
        self.last_product = hp
        return ops.call("fd_hessp", self.g_eps, problem.g, h, p, hp)


def hessian_matrix(H: Any, ops: Any, n: int) -> Any:
    """What ``hess`` returned, as the products need it: a dense (n, n) array on the
    backend's device, or an object with ``dot`` (LinearOperator, sparse matrix)."""
    if hasattr(H, "dot") and not isinstance(H, (np.ndarray, ops.xp.ndarray)):
        if tuple(getattr(H, "shape", ())) != (n, n):
            raise ValueError(f"minimize: hess(x) has shape {getattr(H, 'shape', None)}, "
                             f"expected ({n}, {n})")
        return H
    H = ops.xp.asarray(H)
    if H.dtype.kind not in "fiu" or H.shape != (n, n):
        raise ValueError(f"minimize: hess(x) must be an ({n}, {n}) matrix of real numbers, "
                         f"got dtype {H.dtype}, shape {H.shape}")
    return ops.xp.ascontiguousarray(H, dtype=ops.dtype)


def inner_cg(problem: _Problem, products: HessianProducts, r: Any, p: Any, hp: Any,
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


def run_newton_cg(problem: _Problem, products: HessianProducts, opts: dict,
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


class Newton:
    """The dense damped Newton direction, for ``_descent.run``."""

    unit_step = True                          # the line search starts from t = 1

    def __init__(self, problem: _Problem, products: HessianProducts, damping: float) -> None:
        self.ops, self.products, self.damping = problem.ops, products, damping
        self.mu = 0.0                       # the damping of the last direction

    def direction(self, problem: _Problem) -> float:
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

    def restart(self, problem: _Problem) -> bool:
        return False

    def accepted(self, problem: _Problem, t: float, gtd: float, x_old: Any, g_old: Any
                 ) -> None:
        pass

    def gnorm(self, problem: _Problem, order: float) -> float:
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
