"""``python -m fastopt``: a demo on classic problems, and ``info`` about this machine.

    python -m fastopt            # every rule x every available backend on classic problems
    python -m fastopt info       # versions, threads, GPU
"""
from __future__ import annotations

import argparse
import platform
import time
from typing import Sequence

import numpy as np

from . import __version__, optimizers
from .backends import available_backends
from .lbfgs import minimize
from .problems import Problem, classic_problems

RULE_NAMES = tuple(optimizers.__all__)


def _run(problem: Problem, rule: str, backend: str, steps: int) -> tuple[float, float]:
    """(final loss, seconds per opt.step) of ``steps`` steps of ``rule`` on ``problem``.

    The problems compute on the host; on the cupy backend x lives on the GPU and each
    gradient is copied over before the step (the step alone is timed)."""
    if backend == "cupy":
        import cupy as xp
        sync = xp.cuda.Device().synchronize
    else:
        xp, sync = np, lambda: None
    x = xp.asarray(problem.x0.copy())
    opt = getattr(optimizers, rule)(x, lr=problem.lr[rule], backend=backend)
    in_step = 0.0
    with np.errstate(all="ignore"):
        for _ in range(steps):
            _, g = problem.loss_and_grad(_host(x))
            g = xp.asarray(g)
            t0 = time.perf_counter()
            opt.step(g)
            sync()
            in_step += time.perf_counter() - t0
        f, _ = problem.loss_and_grad(_host(x))
    return f, in_step / steps


def _host(x) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.get()


def demo(rules: Sequence[str], backends: Sequence[str], steps: int | None) -> None:
    print(f"fastopt {__version__}: each rule on classic problems, every available backend\n")
    header = f"{'problem':<11} {'rule':<9} {'backend':<8} {'final loss':>12} {'steps':>6} {'us/step':>9}"
    print(header)
    print("-" * len(header))
    for problem in classic_problems():
        n = steps or problem.steps
        for rule in rules:
            for backend in backends:
                f, sec = _run(problem, rule, backend, n)
                print(f"{problem.name:<11} {rule:<9} {backend:<8} {f:>12.4g} {n:>6} {sec * 1e6:>9.1f}",
                      flush=True)
    print(f"\nL-BFGS (fastopt.minimize) on the same problems\n")
    header = f"{'problem':<11} {'backend':<8} {'final loss':>12} {'nit':>5} {'nfev':>5} {'ms':>8}  message"
    print(header)
    print("-" * len(header))
    for problem in classic_problems():
        for backend in backends:
            xp = np
            if backend == "cupy":
                import cupy as xp

            def fun(x, problem=problem, xp=xp):
                f, g = problem.loss_and_grad(_host(x))
                return f, xp.asarray(g)
            t0 = time.perf_counter()
            r = minimize(fun, xp.asarray(problem.x0), backend=backend)
            ms = (time.perf_counter() - t0) * 1e3
            print(f"{problem.name:<11} {backend:<8} {r.fun:>12.4g} {r.nit:>5} {r.nfev:>5} "
                  f"{ms:>8.1f}  {r.message}", flush=True)
    print(f"\nx0: rosenbrock {classic_problems()[0].x0.size}-d from (-1.2, 1); quadratic "
          f"n={classic_problems()[1].x0.size}, condition 1e3; logistic regression, 50 features. "
          "us/step times opt.step alone.")


def info() -> None:
    import os

    print(f"fastopt {__version__}")
    print(f"python  {platform.python_version()} ({platform.machine()}, {os.cpu_count()} cpus)")
    print(f"numpy   {np.__version__}")
    try:
        import numba
        print(f"numba   {numba.__version__} ({numba.get_num_threads()} threads, "
              f"layer {numba.config.THREADING_LAYER})")
    except ImportError:
        print("numba   not installed (pip install numba)")
    try:
        import cupy
        dev = cupy.cuda.Device()
        name = cupy.cuda.runtime.getDeviceProperties(dev.id)["name"].decode()
        print(f"cupy    {cupy.__version__} (GPU {dev.id}: {name})")
    except ImportError:
        print("cupy    not installed (pip install cupy-cuda12x for the GPU backend)")
    except Exception as exc:  # cupy present but no usable device
        print(f"cupy    installed, no usable GPU ({exc})")
    print(f"backends available: {', '.join(available_backends())}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastopt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="minimise classic problems with every rule (default)")
    for p in (parser, d):
        p.add_argument("--rules", nargs="+", choices=RULE_NAMES, default=list(RULE_NAMES),
                       help="rules to run (default: all)")
        p.add_argument("--backends", nargs="+", default=None,
                       help="backends to run (default: every available one)")
        p.add_argument("--steps", type=int, default=None,
                       help="steps per run (default: each problem's own)")
    sub.add_parser("info", help="versions, threads and the GPU")
    args = parser.parse_args(argv)
    if args.command == "info":
        info()
        return 0
    backends = args.backends or available_backends()
    unknown = sorted(set(backends) - set(available_backends()))
    if unknown:
        parser.error(f"backend(s) {', '.join(unknown)} not available here; available: "
                     f"{', '.join(available_backends())}")
    demo(args.rules, backends, args.steps)
    return 0
