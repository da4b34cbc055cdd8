"""Runs SciPy's own minimize tests with every unconstrained L-BFGS-B call routed to
``fastopt.minimize`` (the assertions untouched), and reports how the routed tests fared.

    .ci/scipy-suite            # routed through fastopt
    FASTOPT_ROUTE=0 .ci/scipy-suite   # SciPy itself, on the same tests (the baseline)
    FASTOPT_METHODS=cg,bfgs,newton-cg .ci/scipy-suite -k "cg or bfgs or newton"
                               # those methods' calls instead (or as well)

Loaded as a pytest plugin (``-p conftest`` from this folder); SciPy's installed test files
run in place, with SciPy's own conftest.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.optimize

import fastopt

ROUTE = os.environ.get("FASTOPT_ROUTE", "1") != "0"
METHODS = {m.strip().lower() for m in os.environ.get("FASTOPT_METHODS", "l-bfgs-b").split(",")}
scipy_minimize = scipy.optimize.minimize
routed_tests: dict[str, str] = {}
current = {"test": None}


def unconstrained(bounds, constraints) -> bool:
    """True when the bounds bound nothing and there are no constraints."""
    if constraints is not None and len(np.atleast_1d(constraints)) and constraints != ():
        return False
    if bounds is None:
        return True
    if isinstance(bounds, scipy.optimize.Bounds):
        lo, hi = bounds.lb, bounds.ub
    else:
        pairs = [(-np.inf if a is None else a, np.inf if b is None else b) for a, b in bounds]
        lo, hi = (np.array(v, dtype=float) for v in zip(*pairs)) if pairs else ([], [])
    return bool(np.all(np.isneginf(lo)) and np.all(np.isposinf(hi)))


def minimize(fun, x0, args=(), method=None, jac=None, hess=None, hessp=None, bounds=None,
             constraints=(), tol=None, callback=None, options=None):
    if isinstance(method, str) and method.lower() in METHODS and \
            unconstrained(bounds, constraints):
        if current["test"] is not None:
            routed_tests.setdefault(current["test"], "?")
        if ROUTE:
            return fastopt.minimize(fun, x0, args=args, method=method, jac=jac, hess=hess,
                                    hessp=hessp, bounds=bounds, constraints=constraints,
                                    tol=tol, callback=callback, options=options)
    return scipy_minimize(fun, x0, args=args, method=method, jac=jac, hess=hess, hessp=hessp,
                          bounds=bounds, constraints=constraints, tol=tol, callback=callback,
                          options=options)


scipy.optimize.minimize = minimize


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    current["test"] = item.nodeid
    yield
    current["test"] = None


def pytest_runtest_logreport(report):
    if report.nodeid in routed_tests and (report.when == "call" or report.failed):
        if routed_tests[report.nodeid] in ("?", "passed"):
            routed_tests[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter):
    passed = sorted(t for t, o in routed_tests.items() if o == "passed")
    failed = sorted(t for t, o in routed_tests.items() if o != "passed")
    who = "fastopt.minimize" if ROUTE else "SciPy (FASTOPT_ROUTE=0)"
    terminalreporter.section(f"unconstrained {', '.join(sorted(METHODS))} calls answered "
                             f"by {who}")
    for t in failed:
        terminalreporter.write_line(f"FAILED {t} ({routed_tests[t]})")
    terminalreporter.write_line(f"{len(passed)} of {len(routed_tests)} tests with routed "
                                f"calls passed")
