"""BFGS with the dense inverse Hessian H (``minimize(method="BFGS")``), on the backend's
device.

    d = -H g;   after a strong-Wolfe step s = t d, y = g+ - g:
    H+ = (I - rho s y^T) H (I - rho y s^T) + rho s s^T,     rho = 1 / s.y

as one matrix-vector product, two vector passes and one rank-two pass (``kernels.bfgs``):
with Hg+ = H g+, Hy = Hg+ + d, u = (rho^2 y.Hy + rho)/2 s - rho Hy, H+ = H + s u^T + u s^T
and the next direction is -(Hg+ + s (u.g+) + u (s.g+)). A pair without curvature
(s.y <= eps |g.s|) leaves H as it is. H starts as the identity, or ``hess_inv0``; the
first update scales it by s.y / y.y (Nocedal & Wright eq. 6.20) unless ``hess_inv0`` was
given. On the GPU the update's one host synchronisation is the seven sums.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import options as o
from .descent import MESSAGES, STATUS, descend, norm
from .method import Method, Option, Outcome, Run
from .problem import EPS, Problem


class BFGS:
    unit_step = False                         # SciPy's first trial step: fewer evaluations here

    def __init__(self, problem: Problem, hess_inv0: Any | None) -> None:
        ops, n = problem.ops, problem.x.size
        self.ops, self.xp = ops, ops.xp
        self.H = ops.zeros((n, n))
        if hess_inv0 is None:
            self.xp.fill_diagonal(self.H, 1)
        else:
            self.H[...] = hess_inv0
        self.scale_first = hess_inv0 is None
        self.hg, self.s, self.y, self.u = (ops.zeros(n) for _ in range(4))
        self.d_new = ops.zeros(n)         # the direction the last update made
        self.updated = False

    def direction(self, problem: Problem) -> float:
        if self.updated:
            problem.d, self.d_new = self.d_new, problem.d
            self.updated = False
        else:
            self.ops.call("matvec", self.H, problem.g, self.hg)
            self.xp.negative(self.hg, out=problem.d)
        return self.ops.dot(problem.g, problem.d)

    def restart(self, problem: Problem) -> bool:
        """A failed search is retried once from H = I (steepest descent)."""
        if self.scale_first:
            return False
        self.H[...] = 0
        self.xp.fill_diagonal(self.H, 1)
        self.scale_first, self.updated = True, False
        return True

    def accepted(self, problem: Problem, t: float, gtd: float, x_old: Any, g_old: Any
                 ) -> None:
        """The update from one matrix-vector product, one pass for seven sums (the only
        copy to the host), one for u and the next direction, one rank-two pass."""
        ops, g, d = self.ops, problem.g, problem.d
        ops.call("matvec", self.H, g, self.hg)
        sy, yy, yhg, yd, sg, hgg, dg = ops.call("bfgs_sums", problem.x, x_old, g, g_old,
                                                self.hg, d, self.s, self.y)
        self.updated = True
        if not sy > EPS * abs(t * gtd):                     # no curvature: d = -H g
            ops.call("bfgs_vectors", self.s, self.hg, d, 0.0, 0.0, 1.0, 0.0, 0.0, self.u,
                     self.d_new)
            return
        scale = sy / yy if self.scale_first else 1.0       # H = (s.y / y.y) H first
        self.scale_first = False
        rho = 1.0 / sy
        a = (rho * rho * scale * (yhg + yd) + rho) / 2    # Hy = scale (H g_new + d)
        b = -rho * scale
        ug = a * sg + b * (hgg + dg)
        ops.call("bfgs_vectors", self.s, self.hg, d, a, b, scale, ug, sg, self.u, self.d_new)
        ops.call("rank_two", self.H, self.s, self.u, scale)

    def gnorm(self, problem: Problem, order: float) -> float:
        return norm(self.ops, problem.g, order)


def checked_hess_inv0(value: Any, n: int, xp: Any) -> Any:
    """hess_inv0 as an (n, n) array of the backend: symmetric positive definite (SciPy's
    check), or an error."""
    if value is None:
        return None
    H = np.asarray(value.get() if hasattr(value, "get") else value, dtype=float)
    if H.shape != (n, n):
        raise ValueError(f"minimize: option hess_inv0 must be an ({n}, {n}) matrix, got shape "
                         f"{H.shape}")
    if not np.array_equal(H, H.T):
        raise ValueError("minimize: 'hess_inv0' matrix isn't positive definite. (It is not "
                         "symmetric.)")
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError("minimize: 'hess_inv0' matrix isn't positive definite.") from None
    return xp.asarray(H)


def run(problem: Problem, run: Run) -> Outcome:
    method = BFGS(problem, checked_hess_inv0(run.options["hess_inv0"], problem.x.size,
                                             problem.ops.xp))
    nit, reason = descend(problem, method, run)
    return nit, reason, dict(hess_inv=method.H)


METHOD = Method(
    name="BFGS", summary="BFGS with the dense inverse Hessian (n^2 memory), SciPy's BFGS",
    options=dict(o.GRADIENT, c2=Option(0.9, o.fraction), xrtol=Option(0.0, o.nonnegative),
                 hess_inv0=Option(None)),
    tol=("gtol",), messages=MESSAGES, statuses=STATUS, run=run)
