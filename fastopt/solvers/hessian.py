"""H p for Newton's methods: from ``hessp``, from ``hess`` (a matrix, a LinearOperator, a
sparse matrix, or a quasi-Newton HessianUpdateStrategy), or by finite differences of the
gradient: (g(x + h p) - g) / h with h = eps (1 + |x|) / |p| (SciPy's h = eps along an
unnormalised p made float32 products noise)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .._result import host_array as host
from .method import Run
from .problem import Problem


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

    def _update_strategy(self, problem: Problem) -> None:
        """The quasi-Newton approximation moved to the current point (host arrays)."""
        x, g = host(problem.x).astype(float), host(problem.g).astype(float)
        if self.last_point is None:
            self.strategy.initialize(x.size, "hess")
        else:
            self.strategy.update(x - self.last_point[0], g - self.last_point[1])
        self.last_point, self.matrix = (x, g), self.strategy

    def at(self, problem: Problem) -> None:
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

    def curvature(self, problem: Problem, p: Any, hp: Any) -> float:
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


def products_for(problem: Problem, run: Run) -> HessianProducts:
    """The products the run's hess, hessp or gradient give."""
    return HessianProducts(problem.ops, run.shape, run.args, run.hess, run.hessp,
                           run.gradient, run.options["eps"],
                           run.checked)
