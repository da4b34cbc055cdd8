"""L-BFGS: the two-loop direction against its bytes, and fastopt.minimize against
scipy.optimize.minimize(method="L-BFGS-B") on the Moré-Garbow-Hillstrom problems and on
large extended Rosenbrock problems.

    pytest benchmarks/quick/test_quick_lbfgs.py --benchmark-only [-k ...]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastopt
from fastopt._bench import array_module
from fastopt.backends import BACKENDS, available_backends
from fastopt.kernels import lbfgs as K
from fastopt.problems import rosenbrock

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from mgh_problems import problems  # noqa: E402

TIGHT = dict(gtol=1e-10, ftol=1e-16, maxiter=20000, maxfun=40000)
HISTORY = 10


class Counted:
    """``fun`` that counts its calls, the time spent in it, and the first call whose value
    reached ``target`` (instrumentation for the solver's own cost, not a timer harness)."""

    def __init__(self, fun, target=lambda f: False):
        self.fun, self.target = fun, target
        self.calls, self.inside, self.reached = 0, 0.0, None

    def __call__(self, x):
        t0 = time.perf_counter()
        f, g = self.fun(x)
        self.inside += time.perf_counter() - t0
        self.calls += 1
        if self.reached is None and self.target(f):
            self.reached = self.calls
        return f, g


def solver(name: str):
    if name == "scipy":
        scipy_optimize = pytest.importorskip("scipy.optimize")
        return lambda f, x0, options: scipy_optimize.minimize(f, x0, jac=True,
                                                              method="L-BFGS-B", options=options)
    return lambda f, x0, options: fastopt.minimize(f, x0, jac=True, options=options)


@pytest.mark.sizes(1e5, 1e6, 1e7, 1e8)
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_loop_direction(benchmark, figures, backend, n, smoke):
    """d = -H g from a full history of m = 10 pairs, float64: (8m+3)n words moved."""
    if backend not in available_backends() or (n >= 1e8 and backend != "cupy" and not smoke):
        pytest.skip(f"{backend} at {n:.0e} does not run here")
    xp, sync = array_module(backend)
    ops = K.CupyOps(n, np.float64) if backend == "cupy" else K.HostOps(
        n, np.float64, compiled=backend == "numba", by_size=False)
    rng = np.random.default_rng(0)
    S = xp.asarray(rng.standard_normal((HISTORY, n)))
    Y, g, d = S + 0.1, xp.asarray(rng.standard_normal(n)), xp.zeros(n)
    rho, order = np.full(HISTORY, 1e-3), np.arange(HISTORY)

    def direction() -> None:
        ops.two_loop(g, S, Y, rho, order, 0.5, d)
        sync()

    benchmark.group = f"two-loop direction n={n:.0e}"
    benchmark(direction)
    figures("two-loop direction, m = 10, float64", lambda: dict(
        backend=backend, n=f"{n:.0e}", ms=benchmark.stats.stats.median * 1e3,
        GBps=(8 * HISTORY + 3) * n * 8 / benchmark.stats.stats.median / 1e9))


@pytest.mark.parametrize("name", ["fastopt", "scipy"])
@pytest.mark.parametrize("problem", problems(), ids=lambda p: p.name)
def test_mgh(benchmark, figures, problem, name, smoke):
    """Tight tolerances: iterations, evaluations, and evaluations until the known minimum
    was first reached (within the problem's tolerance)."""
    solve = solver(name)
    runs = []

    def run() -> None:
        counted = Counted(problem, lambda f: abs(f - problem.f_min) <= problem.f_tol)
        runs.append((solve(counted, problem.x0, dict(TIGHT, maxiter=5) if smoke else TIGHT),
                     counted))

    benchmark.group = f"MGH {problem.name}"
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    result, counted = runs[-1]
    figures("MGH problems, tight tolerances", lambda: dict(
        problem=problem.name, solver=name, nit=result.nit, nfev=result.nfev,
        evals_to_min=counted.reached, ms=benchmark.stats.stats.median * 1e3))


@pytest.mark.sizes(1e6, 1e7)
@pytest.mark.parametrize("name", ["fastopt", "scipy"])
def test_solver_cost_per_iteration(benchmark, figures, name, n, smoke):
    """Extended Rosenbrock, float64, 25 iterations, history 10: the solver's own cost per
    iteration is its wall time less the time spent in ``fun``."""
    solve, x0 = solver(name), np.tile([-1.2, 1.0], n // 2)
    iterations = 3 if smoke else 25
    runs = []

    def run() -> None:
        counted = Counted(rosenbrock)
        t0 = time.perf_counter()
        result = solve(counted, x0, dict(maxiter=iterations, gtol=0, ftol=0))
        runs.append((time.perf_counter() - t0 - counted.inside) / result.nit)

    benchmark.group = f"minimize extended Rosenbrock n={n:.0e}, {iterations} iterations"
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    figures("solver's own cost per iteration (wall - time in fun)", lambda: dict(
        solver=name, n=f"{n:.0e}", own_ms=float(np.median(runs)) * 1e3))
