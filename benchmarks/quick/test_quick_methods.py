"""minimize's CG, BFGS, Newton-CG (and L-BFGS-B): evaluations against SciPy's same method
on the Moré-Garbow-Hillstrom problems, the solver's own time per iteration against
SciPy's, and the numba backend against the numpy one by size.

    pytest benchmarks/quick/test_quick_methods.py --benchmark-only [-k ...]

"Own time" is wall time less the time spent in the user's functions (fun, jac, hessp).
The sides of a comparison run interleaved, round after round, in one process; the
figures are medians of the per-round ratios.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastopt
from fastopt.backends import available_backends
from fastopt.problems import rosenbrock

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from mgh_problems import evaluations_to_reach, problems  # noqa: E402

from fastopt.solvers import METHODS as REGISTERED  # noqa: E402

METHODS = [m.name for m in REGISTERED if m.scipy and m.name != "L-BFGS-B"]   # SciPy's too
TIGHT = {"CG": dict(gtol=1e-10, maxiter=20000), "BFGS": dict(gtol=1e-10),
         "Newton-CG": dict(xtol=1e-12), "L-BFGS-B": dict(gtol=1e-10, ftol=1e-16)}
HOST = [b for b in ("numpy", "numba") if b in available_backends()]


def rosenbrock_hessp(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Extended Rosenbrock's Hessian times p (2x2 blocks)."""
    a, b, pa, pb = x[0::2], x[1::2], p[0::2], p[1::2]
    out = np.empty_like(p)
    out[0::2] = (1200 * a * a - 400 * b + 2) * pa - 400 * a * pb
    out[1::2] = -400 * a * pa + 200 * pb
    return out


class Timed:
    """A user function that adds up the time spent in it."""

    def __init__(self, fn):
        self.fn, self.inside = fn, 0.0

    def __call__(self, *args):
        t0 = time.perf_counter()
        out = self.fn(*args)
        self.inside += time.perf_counter() - t0
        return out


def own_time_per_iteration(side: str, method: str, x0: np.ndarray, iterations: int) -> float:
    """Seconds per iteration outside fun and hessp, on extended Rosenbrock from x0."""
    fun, hessp = Timed(lambda x: rosenbrock(x)), Timed(rosenbrock_hessp)
    extra = dict(hessp=hessp) if method == "Newton-CG" else {}
    options = dict(maxiter=iterations, **({"xtol": 0.0} if method == "Newton-CG" else
                                          {"gtol": 0.0}))
    t0 = time.perf_counter()
    if side == "scipy":
        from scipy.optimize import minimize
        result = minimize(fun, x0, jac=True, method=method, options=options, **extra)
    else:
        result = fastopt.minimize(fun, x0, jac=True, method=method, options=options,
                                  backend=side, **extra)
    return (time.perf_counter() - t0 - fun.inside - hessp.inside) / max(result.nit, 1)


@pytest.mark.parametrize("method", [*METHODS, "L-BFGS-B"])
def test_mgh_against_scipy(benchmark, figures, method, smoke):
    """Evaluations of fun until each problem's known minimum is first reached, fastopt's
    (numpy backend) against SciPy's same method; the median ratio is the issue's figure."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    chosen = problems()[:2] if smoke else problems()
    rows = []

    def run() -> None:
        rows.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for p in chosen:
                rows.append((p.name, evaluations_to_reach(lambda f, x0: fastopt.minimize(
                    f, x0, jac=True, method=method, options=TIGHT[method], backend="numpy"),
                    p), evaluations_to_reach(lambda f, x0: scipy_optimize.minimize(
                        f, x0, jac=True, method=method, options=TIGHT[method]), p)))

    benchmark.group = f"MGH problems, {method}"
    benchmark.pedantic(run, rounds=1)
    ratios = [ours / theirs for _, ours, theirs in rows if ours and theirs]
    for name, ours, theirs in rows:
        figures(f"MGH evaluations to the minimum, {method}", lambda: dict(
            problem=name, fastopt=ours or "-", scipy=theirs or "-",
            ratio=ours / theirs if ours and theirs else "-"))
    figures("MGH median evaluation ratio (fastopt / SciPy)", lambda: dict(
        method=method, median=float(np.median(ratios)),
        solved_by_scipy=sum(1 for _, _, t in rows if t),
        solved_by_both=len(ratios)))


@pytest.mark.parametrize("method, n, iterations", [("CG", 1_000_000, 25),
                                                   ("Newton-CG", 1_000_000, 20),
                                                   ("BFGS", 2_000, 30)])
def test_own_time_per_iteration_against_scipy(benchmark, figures, method, n, iterations,
                                              smoke):
    """Extended Rosenbrock, float64: SciPy, fastopt numpy and fastopt numba, interleaved."""
    pytest.importorskip("scipy.optimize")
    n, iterations, rounds = (2_000, 3, 1) if smoke else (n, iterations, 5)
    x0 = np.tile([-1.2, 1.0], n // 2)
    sides = ["scipy", *HOST]
    own = {side: [] for side in sides}

    def run() -> None:
        for side in sides:
            own[side].append(own_time_per_iteration(side, method, x0, iterations))

    benchmark.group = f"own time per iteration, {method} n={n:.0e}"
    benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)
    for side in HOST:
        figures("solver's own time per iteration (wall - time in fun, hessp)", lambda: dict(
            method=method, n=f"{n:.0e}", side=side,
            own_ms=float(np.median(own[side])) * 1e3,
            scipy_ms=float(np.median(own["scipy"])) * 1e3,
            scipy_over_fastopt=float(np.median(np.array(own["scipy"]) / own[side]))))


@pytest.mark.sizes(1e2, 1e4, 1e5, 1e6)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["L-BFGS-B", *METHODS])
def test_numba_against_numpy(benchmark, figures, method, dtype, n, smoke):
    """The numba backend's own time per iteration over the numpy backend's (interleaved):
    at most 1 (within noise) at every size, the figures behind kernels.lbfgs.numba_pays."""
    if "numba" not in available_backends():
        pytest.skip("numba is not installed")
    if method == "BFGS" and n > 1e4:
        pytest.skip("BFGS is dense: (n, n)")
    n = 100 if smoke else n
    x0 = np.tile([-1.2, 1.0], n // 2).astype(dtype)
    iterations = 3 if smoke else 20
    ratios, own = [], {"numpy": [], "numba": []}

    def run() -> None:
        for side in ("numba", "numpy"):
            own[side].append(own_time_per_iteration(side, method, x0, iterations))
        ratios.append(own["numba"][-1] / own["numpy"][-1])

    benchmark.group = f"numba against numpy, {method} {dtype} n={n:.0e}"
    benchmark.pedantic(run, rounds=1 if smoke else 7, warmup_rounds=1)
    figures("numba backend over numpy backend, own time per iteration", lambda: dict(
        method=method, dtype=dtype, n=f"{n:.0e}",
        numpy_ms=float(np.median(own["numpy"])) * 1e3,
        numba_ms=float(np.median(own["numba"])) * 1e3,
        numba_over_numpy=float(np.median(ratios))))
