"""L-BFGS figures: fastopt.minimize against scipy.optimize.minimize(method="L-BFGS-B").

    python benchmarks/lbfgs_bench.py               # all sections
    python benchmarks/lbfgs_bench.py mgh           # MGH problems: iterations, evaluations, time
    python benchmarks/lbfgs_bench.py large         # n = 1e6, 1e7: the solver's own cost per iteration
    python benchmarks/lbfgs_bench.py direction     # the two-loop direction against its bytes
    python benchmarks/lbfgs_bench.py --gpu direction   # the same on the cupy backend (n up to 1e8)

"Solver cost" is wall time minus the time spent inside fun, per iteration: what the
optimizer itself adds. Ratios come from one run.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import fastopt
from fastopt._bench import seconds_per_call
from fastopt.kernels import lbfgs as K

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TIGHT = dict(gtol=1e-10, ftol=1e-16, maxiter=20000, maxfun=40000)


class Timed:
    """Wraps fun: counts calls, time inside it, and the first call that reached a target."""

    def __init__(self, fun, target=None):
        self.fun, self.target = fun, target
        self.calls, self.inside, self.reached = 0, 0.0, None

    def __call__(self, x):
        t0 = time.perf_counter()
        f, g = self.fun(x)
        self.inside += time.perf_counter() - t0
        self.calls += 1
        if self.reached is None and self.target is not None and self.target(f):
            self.reached = self.calls
        return f, g


def scipy_minimize(fun, x0, options):
    from scipy.optimize import minimize
    return minimize(fun, x0, jac=True, method="L-BFGS-B", options=options)


def mgh() -> None:
    from mgh_problems import problems

    print("MGH problems (tight tolerances), fastopt (numba) vs SciPy L-BFGS-B\n")
    print(f"{'problem':<28} {'nit':>5} {'sp nit':>6} {'nfev':>5} {'sp nfev':>7} "
          f"{'to min':>6} {'sp to min':>9} {'ms':>7} {'sp ms':>7}")
    ratios = []
    for p in problems():
        row = []
        for solve in (lambda f: fastopt.minimize(f, p.x0, options=TIGHT),
                      lambda f: scipy_minimize(f, p.x0, TIGHT)):
            timed = Timed(p, lambda f: abs(f - p.f_min) <= p.f_tol)
            t0 = time.perf_counter()
            r = solve(timed)
            row.append((r.nit, r.nfev, timed.reached, (time.perf_counter() - t0) * 1e3))
        (a, b) = row
        ratios.append(a[2] / b[2])
        print(f"{p.name:<28} {a[0]:>5} {b[0]:>6} {a[1]:>5} {b[1]:>7} {a[2]:>6} {b[2]:>9} "
              f"{a[3]:>7.1f} {b[3]:>7.1f}", flush=True)
    print(f"\nevaluations to reach the minimum, fastopt/SciPy: median ratio {np.median(ratios):.3f}")


def extended_rosenbrock(x):
    a, b = x[0::2], x[1::2]
    r = b - a * a
    g = np.empty_like(x)
    g[0::2] = -400.0 * a * r - 2.0 * (1.0 - a)
    g[1::2] = 200.0 * r
    return float(np.sum(100.0 * r * r + (1.0 - a) ** 2)), g


def large(sizes=(1_000_000, 10_000_000), iters=25) -> None:
    print(f"\nextended Rosenbrock, float64, {iters} iterations, history 10: the solver's own "
          "cost per iteration (wall - time in fun)\n")
    print(f"{'n':>9} {'solver':<9} {'nit':>4} {'nfev':>5} {'wall s':>7} {'in fun s':>9} "
          f"{'own ms/it':>10}")
    for n in sizes:
        x0 = np.tile([-1.2, 1.0], n // 2)
        own = {}
        for name, solve in (("fastopt", lambda f: fastopt.minimize(f, x0, options=dict(
                                maxiter=iters, gtol=0, ftol=0))),
                            ("scipy", lambda f: scipy_minimize(f, x0, dict(maxiter=iters, gtol=0,
                                                                           ftol=0)))):
            solve(Timed(extended_rosenbrock))              # warm-up (compiles, page-faults)
            timed = Timed(extended_rosenbrock)
            t0 = time.perf_counter()
            r = solve(timed)
            wall = time.perf_counter() - t0
            own[name] = (wall - timed.inside) / r.nit
            print(f"{n:>9.0e} {name:<9} {r.nit:>4} {r.nfev:>5} {wall:>7.2f} {timed.inside:>9.2f} "
                  f"{own[name] * 1e3:>10.1f}", flush=True)
        print(f"{'':>9} SciPy's own cost / fastopt's: {own['scipy'] / own['fastopt']:.1f}x\n")


def direction(gpu: bool = False, m: int = 10) -> None:
    sizes = (1_000_000, 10_000_000, 100_000_000) if gpu else (1_000_000, 10_000_000)
    print(f"\ntwo-loop direction, m = {m} full history, float64: time per call against the "
          f"(8m+3)n words a fused pass sequence moves\n")
    print(f"{'n':>9} {'backend':<8} {'ms':>8} {'GB/s':>7}")
    for n in sizes:
        rng = np.random.default_rng(0)
        if gpu:
            import cupy as cp
            ops, xp = K.CupyOps(n, np.float64), cp
            sync = cp.cuda.Device().synchronize
            backends = [("cupy", ops)]
        else:
            xp, sync = np, (lambda: None)
            backends = [("numba", K.HostOps(n, np.float64, compiled=True)),
                        ("numpy", K.HostOps(n, np.float64, compiled=False))]
        S = xp.asarray(rng.standard_normal((m, n)))
        Y = S + 0.1
        g, d = xp.asarray(rng.standard_normal(n)), xp.zeros(n)
        rho, order = np.full(m, 1e-3), np.arange(m)
        for name, ops in backends:
            sec = seconds_per_call(lambda: ops.two_loop(g, S, Y, rho, order, 0.5, d), 0.5,
                                   batches=3, sync=sync)
            print(f"{n:>9.0e} {name:<8} {sec * 1e3:>8.2f} {(8 * m + 3) * n * 8 / sec / 1e9:>7.1f}",
                  flush=True)
        del S, Y


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--gpu"]
    gpu = "--gpu" in sys.argv
    for section in args or ["mgh", "large", "direction"]:
        {"mgh": mgh, "large": large, "direction": lambda: direction(gpu)}[section]()
