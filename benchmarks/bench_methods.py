"""asv: minimize's methods (fastopt.solvers.METHODS): each method's fused passes
(what an iteration does besides fun) and a small minimize, per backend."""
import numpy as np

from fastopt import minimize
from fastopt._bench import array_module, minimize_ops, rosenbrock_on
from fastopt.solvers import METHODS

BACKENDS = ["numpy", "numba", "cupy"]


class _Vectors:
    """Random float64 vectors on the backend's device."""

    def vectors(self, backend, n, k):
        xp, self.sync = array_module(backend)
        rng = np.random.default_rng(0)
        return [xp.asarray(rng.standard_normal(n)) for _ in range(k)]


class CGIteration(_Vectors):
    """Nonlinear CG's passes at one trial point: the trial pass (the gradient's copy and
    four sums, 4n words) and the new direction (3n)."""

    params = (BACKENDS, [100_000, 10_000_000])
    param_names = ["backend", "n"]

    def setup(self, backend, n):
        self.ops = minimize_ops(backend, n)
        self.g_src, self.d, self.g, self.g_t = self.vectors(backend, n, 4)

    def time_trial_and_direction(self, backend, n):
        self.ops.call("cg_trial", self.g_src, self.d, self.g, self.g_t)
        self.ops.call("cg_direction", self.g_t, self.d, 0.5)
        self.sync()


class NewtonCGInnerStep(_Vectors):
    """One inner CG step of Newton-CG with a finite-difference product: Hp and p.Hp (4n),
    the advance of z and r with their norms (6n), the new p (3n)."""

    params = (BACKENDS, [100_000, 10_000_000])
    param_names = ["backend", "n"]

    def setup(self, backend, n):
        self.ops = minimize_ops(backend, n)
        self.g_eps, self.g, self.p, self.hp, self.z, self.r = self.vectors(backend, n, 6)

    def time_inner_step(self, backend, n):
        self.ops.call("fd_hessp", self.g_eps, self.g, 1e-8, self.p, self.hp)
        self.ops.call("cg_advance", self.z, self.r, self.p, self.hp, 1e-3)
        self.ops.call("cg_direction", self.r, self.p, 0.5)
        self.sync()


class BFGSUpdate(_Vectors):
    """BFGS's per-iteration work on the (n, n) inverse Hessian: H g (BLAS) and the
    rank-two update (3 n^2 words)."""

    params = (BACKENDS, [500, 2000])
    param_names = ["backend", "n"]

    def setup(self, backend, n):
        self.ops = minimize_ops(backend, n)
        xp, _ = array_module(backend)
        self.H = xp.eye(n)
        self.g, self.s, self.u, self.hg = self.vectors(backend, n, 4)
        self.s *= 1e-3
        self.u *= 1e-3

    def time_update(self, backend, n):
        self.ops.call("matvec", self.H, self.g, self.hg)
        self.ops.call("rank_two", self.H, self.s, self.u, 1.0)
        self.sync()


class SmallMinimize:
    """Each registered method on extended Rosenbrock, n = 100, from (-1.2, 1, ...), default
    options (the exact Hessian for a method that needs one: Newton)."""

    params = ([m.name for m in METHODS], BACKENDS)
    param_names = ["method", "backend"]

    def setup(self, method, backend):
        self.x0, self.fun = rosenbrock_on(backend, 100)
        xp, _ = array_module(backend)

        def hess(x):
            x = x.get() if hasattr(x, "get") else x
            a, b = x[0::2], x[1::2]
            H = np.zeros((x.size, x.size))
            i = np.arange(0, x.size, 2)
            H[i, i], H[i, i + 1], H[i + 1, i] = 1200 * a * a - 400 * b + 2, -400 * a, -400 * a
            H[i + 1, i + 1] = 200
            return xp.asarray(H)
        needs_hess = {m.name: m.hessian == "required" for m in METHODS}
        self.extra = dict(hess=hess) if needs_hess[method] else {}

    def _run(self, method, backend):
        return minimize(self.fun, self.x0, jac=True, method=method, backend=backend,
                        **self.extra)

    def time_minimize(self, method, backend):
        self._run(method, backend)

    def track_evaluations(self, method, backend):
        return self._run(method, backend).nfev

    track_evaluations.unit = "evaluations"
