"""
L-BFGS against SciPy's L-BFGS-B
===============================

``fastopt.minimize`` answers ``scipy.optimize.minimize(method="L-BFGS-B")`` for
unconstrained problems. On the extended Rosenbrock function both reach the minimum (f = 0
at x = 1) in a similar number of iterations; the left panel follows f at each iteration,
the right one the same against wall time, where fastopt's fused two-loop recursion and
line search cost less per iteration at large n. Each solver runs once first, for two
iterations, so neither's time includes its start-up (numba compiles fastopt's kernels at
their first use of a size and dtype, and keeps them in its disk cache).
"""
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize

import fastopt

QUICK = os.environ.get("FASTOPT_DOCS_QUICK") == "1"      # CI's docs build: a small n
N = 1_000 if QUICK else 1_000_000


def rosenbrock(x):
    """The extended Rosenbrock function and its gradient (pairs of coordinates)."""
    a, b = x[0::2], x[1::2]
    t, u = 1.0 - a, 10.0 * (b - a * a)
    g = np.empty_like(x)
    g[0::2] = -2.0 * t - 40.0 * a * u
    g[1::2] = 20.0 * u
    return float(t @ t + u @ u), g


def trace(minimize):
    """f at x0 and after each iteration, and the seconds since the start."""
    x0 = np.tile([-1.2, 1.0], N // 2)
    minimize(rosenbrock, x0, jac=True, method="L-BFGS-B", options=dict(maxiter=2))  # warm
    fs, seconds, start = [rosenbrock(x0)[0]], [0.0], time.perf_counter()

    def callback(intermediate_result):
        fs.append(intermediate_result.fun)
        seconds.append(time.perf_counter() - start)

    res = minimize(rosenbrock, x0, jac=True, method="L-BFGS-B", callback=callback,
                   options=dict(maxiter=500, gtol=1e-8))
    print(f"{minimize.__module__:15s} nit {res.nit:4d} nfev {res.nfev:4d} f {res.fun:.2e} "
          f"in {seconds[-1]:.3f} s")
    return np.array(fs), np.array(seconds)


fig, (by_iteration, by_time) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for label, minimize in (("fastopt", fastopt.minimize), ("SciPy", scipy.optimize.minimize)):
    fs, seconds = trace(minimize)
    by_iteration.semilogy(fs + 1e-300, label=label)
    by_time.semilogy(seconds, fs + 1e-300, label=label)
by_iteration.set(xlabel="iteration", ylabel="f", title=f"extended Rosenbrock, n = {N:,}")
by_time.set(xlabel="seconds", title="the same against wall time")
by_iteration.legend()
plt.show()
