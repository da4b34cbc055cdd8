"""asv: the L-BFGS two-loop direction and a whole minimize run, per backend."""
import numpy as np

from fastopt import minimize
from fastopt._bench import array_module, minimize_ops, rosenbrock_on

BACKENDS = ["numpy", "numba", "cupy"]


class TwoLoop:
    """d = -H g with a full history of m = 10 pairs, float64."""

    params = (BACKENDS, [100_000, 10_000_000, 100_000_000])
    param_names = ["backend", "n"]
    timeout = 300

    def setup(self, backend, n):
        if n == 100_000_000 and backend != "cupy":
            raise NotImplementedError("1e8 only on the GPU")
        self.ops = minimize_ops(backend, n)
        xp, self.sync = array_module(backend)
        rng = np.random.default_rng(0)
        self.S = xp.asarray(rng.standard_normal((10, n)))
        self.Y = self.S + 0.1
        self.g, self.d = xp.asarray(rng.standard_normal(n)), xp.zeros(n)
        self.rho, self.order = np.full(10, 1e-3), np.arange(10)

    def time_direction(self, backend, n):
        self.ops.two_loop(self.g, self.S, self.Y, self.rho, self.order, 0.5, self.d)
        self.sync()

    def track_gbps(self, backend, n):
        from fastopt._bench import seconds_per_call
        sec = seconds_per_call(lambda: self.time_direction(backend, n), 0.3)
        return (8 * 10 + 3) * n * 8 / sec / 1e9

    track_gbps.unit = "GB/s"


class Minimize:
    """Extended Rosenbrock from (-1.2, 1, ...), n = 1e4, default tolerances."""

    params = (BACKENDS,)
    param_names = ["backend"]

    def setup(self, backend):
        self.x0, self.fun = rosenbrock_on(backend, 10_000)

    def time_minimize(self, backend):
        minimize(self.fun, self.x0, jac=True, backend=backend)

    def track_evaluations(self, backend):
        return minimize(self.fun, self.x0, jac=True, backend=backend).nfev

    track_evaluations.unit = "evaluations"
