"""``minimize``: SciPy's ``scipy.optimize.minimize`` interface to fastopt's L-BFGS.

What SciPy does for unconstrained ``method="L-BFGS-B"``, fastopt does: the signature,
``args``, every ``jac`` (True, a callable, or finite differences with SciPy's steps and
counts), ``hess``/``hessp`` warned about and ignored, the callback's two forms and
StopIteration, the options, the messages and statuses, ``hess_inv``. Bounds that bound
something and constraints are refused: fastopt cannot honour them.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import multiprocessing
import warnings
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from . import _numdiff
from ._result import LbfgsInvHessProduct, OptimizeResult, host_array
from .backends import FLOAT_DTYPES, resolve_backend
from .kernels import _checks
from .lbfgs import (LINE_SEARCHES, History, _iterations, _ops_for, _Problem, checked_grad,
                    checked_loss, pair)

METHODS = ("L-BFGS-B", "L-BFGS")
OPTIONS = dict(maxiter=15000, maxfun=15000, history_size=10, gtol=1e-5,
               ftol=2.220446049250313e-09, maxls=20, line_search="strong_wolfe", disp=False,
               eps=1e-8, finite_diff_rel_step=None, workers=None)
MESSAGES = {       # SciPy 1.17's texts for L-BFGS-B
    "gtol": "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    "ftol": "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
    "maxiter": "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    "maxfun": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    "linesearch": "ABNORMAL: ",
    "nonfinite": "ABNORMAL: THE OBJECTIVE OR ITS GRADIENT IS NOT FINITE AT x0",
    "callback": "`callback` raised `StopIteration`.",
}
STATUS = {"gtol": 0, "ftol": 0, "maxiter": 1, "maxfun": 1, "linesearch": 2, "nonfinite": 2,
          "callback": 99}


# -- arguments --------------------------------------------------------------------------
def _method_name(method: Any) -> str:
    """The method as SciPy's warnings name it; None is L-BFGS-B, fastopt's only method."""
    if method is None:
        return "L-BFGS-B"
    if isinstance(method, str) and method.upper() in METHODS:
        return method
    raise ValueError(f"minimize: method must be one of {list(METHODS)} (or None), got "
                     f"{method!r}; fastopt has L-BFGS only")


def _limit(name: str, value: Any) -> float:
    """maxiter and maxfun: any number >= 0, as SciPy takes (100.1 and inf included)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not value >= 0:
        raise ValueError(f"minimize: option {name} must be a number >= 0, got {value!r}")
    return float(value)


def _options(options: Mapping[str, Any] | None, tol: float | None) -> dict:
    """SciPy's L-BFGS-B options (maxcor is history_size; iprint is accepted and unused, as
    in SciPy 1.15+) and fastopt's line_search; ``tol`` sets ftol and gtol unless given."""
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"minimize: options must be a dict of option names and values, got "
                        f"{type(options).__name__}")
    given = dict(options or {})
    if "maxcor" in given:
        given.setdefault("history_size", given.pop("maxcor"))
    given.pop("iprint", None)
    unknown = set(given) - set(OPTIONS)
    if unknown:
        raise ValueError(f"minimize: unknown option(s) {sorted(unknown)}; known: "
                         f"{sorted([*OPTIONS, 'maxcor', 'iprint'])}")
    opts = dict(OPTIONS)
    if tol is not None:
        opts.update(ftol=tol, gtol=tol)
    opts.update(given)
    for k in ("maxiter", "maxfun"):
        opts[k] = _limit(k, opts[k])
    for k in ("history_size", "maxls"):
        _checks.count("minimize", f"option {k}", opts[k])
    for k in ("gtol", "ftol"):
        _checks.nonnegative("minimize", f"option {k}", opts[k])
    disp = opts["disp"]          # SciPy takes verbosity levels: any integer
    opts["disp"] = bool(disp) if isinstance(disp, (int, np.integer)) else \
        _checks.boolean("minimize", "option disp", disp)
    if opts["line_search"] not in LINE_SEARCHES:
        raise ValueError(f"minimize: option line_search must be one of {sorted(LINE_SEARCHES)}, "
                         f"got {opts['line_search']!r}")
    _steps_checked("eps", opts["eps"])
    if opts["finite_diff_rel_step"] is not None:
        _steps_checked("finite_diff_rel_step", opts["finite_diff_rel_step"])
    workers = opts["workers"]
    if not (workers is None or callable(workers) or isinstance(workers, (int, np.integer))
            and not isinstance(workers, bool) and (workers >= 1 or workers == -1)):
        raise ValueError(f"minimize: option workers must be a map-like callable, a number of "
                         f"processes >= 1, or -1 (all cores); got {workers!r}")
    return opts


def _steps_checked(name: str, value: Any) -> None:
    """A finite-difference step: finite real numbers (one, or one per coordinate)."""
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else np.array([])
    if arr.dtype.kind not in "fiu" or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"minimize: option {name} must be a finite number or array of them, "
                         f"got {value!r}")


def _make_ops(backend_name: str, x0: Any) -> tuple[str, Any, Any, tuple]:
    """(backend name, L-BFGS ops, x0 copied into a flat float vector of the backend, the
    shape fun sees: x0's, at least 1-d, as SciPy's)."""
    backend = resolve_backend(backend_name, [x0])
    if backend.name == "cupy":
        arr = backend.cp.array(x0, copy=True)
    elif not isinstance(x0, np.ndarray) and hasattr(x0, "__cuda_array_interface__"):
        raise TypeError(f"minimize: x0 is a device array; backend {backend.name!r} takes "
                        f"NumPy arrays")
    else:
        try:
            arr = np.array(x0, copy=True)
        except ValueError as exc:        # ragged nested lists
            raise ValueError(f"minimize: x0 must be an array of numbers: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"minimize: x0 must hold real numbers, got dtype {arr.dtype} from "
                        f"{x0!r:.60}")
    if arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(np.float64)
    shape = arr.shape if arr.ndim else (1,)
    return backend.name, _ops_for(backend.name, arr.size, arr.dtype), arr.reshape(-1), shape


def _is_unbounded(value: Any, upper: bool) -> bool:
    if value is None:
        return True
    v = float(value)
    return v == (math.inf if upper else -math.inf)


def _refuse_bounds(bounds: Any, n: int) -> None:
    """None, or bounds that bound nothing (None or -inf/inf, as pairs or a ``Bounds``);
    anything else is an error: fastopt's L-BFGS cannot honour it."""
    if bounds is None:
        return
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):        # scipy.optimize.Bounds
        pairs = zip(np.broadcast_to(bounds.lb, (n,)), np.broadcast_to(bounds.ub, (n,)))
    else:
        try:
            pairs = [tuple(b) for b in bounds]
        except TypeError:
            raise TypeError(f"minimize: bounds must be None, a sequence of (min, max) pairs "
                            f"or a Bounds, got {bounds!r:.60}") from None
        if len(pairs) != n or any(len(p) != 2 for p in pairs):
            raise ValueError(f"minimize: bounds must be {n} (min, max) pairs, one per "
                             f"coordinate of x0; got {bounds!r:.80}")
    for i, (lo, hi) in enumerate(pairs):
        if not (_is_unbounded(lo, False) and _is_unbounded(hi, True)):
            raise ValueError(f"minimize: bounds[{i}] = ({lo}, {hi}) bounds x[{i}], and "
                             f"fastopt's L-BFGS does not handle bounds; use "
                             f"scipy.optimize.minimize(method='L-BFGS-B') for bounded problems")


def _refuse_constraints(constraints: Any) -> None:
    """No constraints: (), [] or None; anything else is an error."""
    if constraints is None or isinstance(constraints, (tuple, list)) and not constraints:
        return
    raise ValueError(f"minimize: fastopt's L-BFGS does not handle constraints, got "
                     f"{constraints!r:.80}; use scipy.optimize.minimize(method='SLSQP' or "
                     f"'trust-constr')")


def _warn_unused(method: str, hess: Any, hessp: Any) -> None:
    """SciPy's warnings for Hessian information L-BFGS does not use."""
    if hess is not None:
        warnings.warn(f"Method {method} does not use Hessian information (hess).",
                      RuntimeWarning, stacklevel=3)
    if hessp is not None:
        warnings.warn(f"Method {method} does not use Hessian-vector product information "
                      f"(hessp).", RuntimeWarning, stacklevel=3)


def _callback(callback: Callable | None) -> Callable[[Any, float], Any] | None:
    """``report(x, f)``: SciPy's two callback forms, told apart by the signature:
    ``callback(intermediate_result)`` (an OptimizeResult of x and fun) or ``callback(xk)``."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"minimize: callback must be callable, got {type(callback).__name__}")
    try:
        parameters = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):          # no signature to read (some builtins)
        parameters = set()
    if parameters == {"intermediate_result"}:
        return lambda x, f: callback(intermediate_result=OptimizeResult(x=x, fun=f))
    return lambda x, f: callback(x)


@contextlib.contextmanager
def _workers(workers: Any) -> Iterator[Callable]:
    """The map that evaluates finite-difference points: ``map``, the user's map-like
    callable, or a pool of that many processes (-1: one per core), closed afterwards."""
    if workers is None or workers == 1:
        yield map
    elif callable(workers):
        yield workers
    else:
        with multiprocessing.Pool(None if workers == -1 else int(workers)) as pool:
            yield pool.map


# -- evaluating f and g -----------------------------------------------------------------
class Objective:
    """f(x) as a float (a complex for the complex step), with fun seeing x in x0's shape
    on the backend; picklable, for ``workers`` that are processes."""

    def __init__(self, fun: Callable, args: tuple, shape: tuple, gpu: bool,
                 complex_step: bool = False) -> None:
        self.fun, self.args, self.shape = fun, args, shape
        self.gpu, self.complex_step = gpu, complex_step

    def __call__(self, x: Any) -> Any:
        if self.gpu:
            import cupy
            x = cupy.asarray(x)
        f = self.fun(x.reshape(self.shape), *self.args)
        if isinstance(f, (tuple, list)):
            raise TypeError("minimize: fun returned a tuple, but jac is not True: fun(x) must "
                            "return f alone (or pass jac=True when it returns (f, g))")
        if self.complex_step:
            return complex(np.asarray(f).item())
        return checked_loss("minimize", "f", f)


class Evaluations:
    """f and g at the solver's points for every ``jac`` SciPy takes; fun and jac get
    copies of x. Counts nfev (finite-difference calls included) and njev."""

    def __init__(self, fun: Callable, jac: Any, args: tuple, shape: tuple, opts: dict,
                 gpu: bool) -> None:
        self.fun, self.jac, self.args, self.shape, self.gpu = fun, jac, args, shape, gpu
        self.nfev = self.njev = 0
        self.workers: Callable = map
        if jac is True or jac is np.True_:
            self.mode = "pair"
        elif callable(jac):
            self.mode = "jac"
        elif jac is None or jac is False or jac is np.False_ or jac in _numdiff.METHODS:
            self.mode = jac if jac in _numdiff.METHODS else "2-point"
            self.abs_step = opts["eps"] if jac not in _numdiff.METHODS else None
            self.rel_step = opts["finite_diff_rel_step"]
        else:
            raise ValueError(f"minimize: jac must be True (fun returns (f, g)), a function "
                             f"jac(x), or None, False, '2-point', '3-point' or 'cs' (finite "
                             f"differences); got {jac!r}")
        self.objective = Objective(fun, args, shape, gpu, complex_step=self.mode == "cs")
        self.value = Objective(fun, args, shape, gpu)

    def points_per_gradient(self, n: int) -> int:
        """Calls of fun per evaluated point."""
        return {"2-point": n + 1, "cs": n + 1, "3-point": 2 * n + 1}.get(self.mode, 1)

    def __call__(self, v: Any, g_out: Any) -> float:
        """f(v); writes g(v) into g_out (v and g_out: flat vectors of the backend)."""
        x = v.reshape(self.shape)
        if self.mode == "pair":
            f, g = pair("minimize", "fun (with jac=True)", self.fun(x.copy(), *self.args))
            f = checked_loss("minimize", "f", f)
        else:
            f = self.value(x.copy())
            g = self.jac(x.copy(), *self.args) if self.mode == "jac" else \
                self._finite_differences(v, f)
        self.nfev += 1
        self.njev += 1
        g = checked_grad("minimize", "the gradient", g, self.shape, v.size)
        g_out[...] = g.reshape(-1)
        return f

    def _finite_differences(self, v: Any, f: float) -> Any:
        x = host_array(v)
        h = _numdiff.steps(self.mode, x, self.abs_step, self.rel_step).astype(x.dtype)
        g, calls = _numdiff.gradient(self.objective, x, f, self.mode, h, self.workers)
        self.nfev += calls
        if self.gpu:
            import cupy
            return cupy.asarray(g)
        return g


# -- the run ----------------------------------------------------------------------------
def _run(problem: _Problem, history: History, opts: dict, report: Callable | None,
         evaluations: Evaluations, shape: tuple) -> tuple[int, str]:
    """L-BFGS iterations until a stopping test holds: (iterations, reason)."""
    ops = problem.ops
    gmax = ops.max_abs(problem.g)
    if not (math.isfinite(problem.f) and math.isfinite(gmax)):
        return 0, "nonfinite"
    if gmax <= opts["gtol"]:
        return 0, "gtol"
    per_point = evaluations.points_per_gradient(problem.x.size)
    evals_left = lambda: int(max(1, (opts["maxfun"] - evaluations.nfev) // per_point))  # noqa: E731
    iterations = _iterations(problem, history, LINE_SEARCHES[opts["line_search"]],
                             opts["maxls"], evals_left, lr=1.0)
    nit = 0
    while True:
        step = next(iterations, None)
        if step is None:
            return nit, "maxfun" if evaluations.nfev >= opts["maxfun"] else "linesearch"
        f_old, _, gmax = step
        nit += 1
        if report is not None:
            try:
                report(problem.x.reshape(shape).copy(), problem.f)
            except StopIteration:
                return nit, "callback"
        if gmax <= opts["gtol"]:
            return nit, "gtol"
        if (f_old - problem.f) <= opts["ftol"] * max(abs(f_old), abs(problem.f), 1.0):
            return nit, "ftol"
        if nit >= opts["maxiter"]:
            return nit, "maxiter"
        if evaluations.nfev >= opts["maxfun"]:
            return nit, "maxfun"


def minimize(fun: Callable, x0: Any, args: Any = (), method: str | None = None,
             jac: Any = None, hess: Any = None, hessp: Any = None, bounds: Any = None,
             constraints: Any = (), tol: float | None = None,
             callback: Callable | None = None, options: Mapping[str, Any] | None = None,
             *, backend: str = "auto") -> OptimizeResult:
    """Minimise ``fun`` by L-BFGS: ``scipy.optimize.minimize(..., method="L-BFGS-B")``
    for unconstrained problems, with the same signature, results and messages.

    ``fun(x, *args)`` returns f, or (f, g) with ``jac=True``; ``jac`` may also be
    ``jac(x, *args)``, or None/False (forward differences, absolute step ``eps``) or
    '2-point', '3-point', 'cs' (SciPy's relative steps, ``finite_diff_rel_step``); their
    calls count in nfev. x lives on the backend (NumPy arrays for numpy/numba, CuPy arrays
    for cupy; backend="auto" follows x0) in x0's shape; fun, jac and callback get copies.
    Options: maxiter, maxfun, maxcor (= history_size, 10), gtol (max|g|, 1e-5), ftol
    (relative reduction of f, 2.2e-9), maxls (20), eps, finite_diff_rel_step, workers,
    line_search ("strong_wolfe" or "armijo"), disp; ``tol`` sets gtol and ftol.
    ``callback(xk)`` or ``callback(intermediate_result)`` runs after each iteration and
    may raise StopIteration. ``hess``/``hessp`` are ignored with SciPy's warning; bounds
    that bound something and constraints are refused.
    """
    name = _method_name(method)
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}")
    args = args if isinstance(args, tuple) else (args,)
    report = _callback(callback)
    opts = _options(options, tol)
    backend_name, ops, x, shape = _make_ops(backend, x0)
    _refuse_bounds(bounds, x.size)
    _refuse_constraints(constraints)
    evaluations = Evaluations(fun, jac, args, shape, opts, gpu=backend_name == "cupy")
    _warn_unused(name, hess, hessp)
    history = History(ops, x.size, opts["history_size"])
    with _workers(opts["workers"]) as evaluations.workers:
        problem = _Problem(evaluations, x, ops)
        nit, reason = _run(problem, history, opts, report, evaluations, shape)
    result = OptimizeResult(
        x=problem.x.reshape(shape), fun=problem.f, jac=problem.g.reshape(shape), nit=nit,
        nfev=evaluations.nfev, njev=evaluations.njev, status=STATUS[reason],
        success=STATUS[reason] == 0, message=MESSAGES[reason],
        hess_inv=LbfgsInvHessProduct.of_history(history.S, history.Y, history.order),
        backend=backend_name)
    if opts["disp"]:
        print(f"minimize (L-BFGS, {backend_name}): {result.message}\n"
              f"  f = {result.fun:.10g} after {nit} iterations, {result.nfev} evaluations")
    return result
