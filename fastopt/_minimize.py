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
import sys
import warnings
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from . import _checks, _numdiff
from ._result import OptimizeResult, host_array
from .backends import FLOAT_DTYPES, resolve_backend
from .solvers import Method, Run, method_named
from .solvers.lbfgs import ops_for
from .solvers.problem import FunStopped, Problem, checked_loss, pair


# -- arguments --------------------------------------------------------------------------
def _options(method: Method, options: Mapping[str, Any] | None, tol: float | None
             ) -> dict:
    """The method's options, each checked: SciPy's names (and their aliases, e.g. maxcor
    for L-BFGS-B's history_size; deprecated ones warned about and dropped) and fastopt's;
    ``tol`` sets the tolerances SciPy's tol sets unless given. Unknown options are
    errors."""
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"minimize: options must be a dict of option names and values, got "
                        f"{type(options).__name__}")
    given, named = dict(options or {}), {}
    for alias, name in method.option_aliases.items():
        if alias in given:
            if name in given:
                raise ValueError(f"minimize: options {alias} and {name} name the same "
                                 f"setting; give one of them")
            given[name], named[name] = given.pop(alias), alias
    for name, why in method.deprecated.items():
        if given.pop(name, None) is not None:
            warnings.warn(f"minimize: option {name} {why}", DeprecationWarning, stacklevel=3)
    unknown = set(given) - set(method.options)
    if unknown:
        known = [*method.options, *method.option_aliases, *method.deprecated]
        raise ValueError(f"minimize: unknown option(s) {sorted(unknown)} for method "
                         f"{method.name}; known: {sorted(known)}")
    opts = {name: option.default for name, option in method.options.items()}
    if tol is not None:
        opts.update(dict.fromkeys(method.tol, _checks.nonnegative("minimize", "tol", tol)))
    opts.update(given)
    for name, option in method.options.items():
        if option.check is not None:
            opts[name] = option.check(f"option {named.get(name, name)}", opts[name])
    if "c2" in opts and not opts["c1"] < opts["c2"]:
        raise ValueError(f"minimize: options 'c1' and 'c2' do not satisfy '0 < c1 < c2 < 1', "
                         f"got c1={opts['c1']}, c2={opts['c2']}")
    return opts


def _steps(name: str, value: Any, shape: tuple) -> np.ndarray | None:
    """A finite-difference step option as a flat vector: finite real numbers, one or one
    per coordinate (x0's shape, or anything that broadcasts to it); None stays None."""
    if value is None and name == "finite_diff_rel_step":
        return None
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else np.array([])
    if arr.dtype.kind not in "fiu" or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"minimize: option {name} must be a finite number or an array of "
                         f"them, got {value!r}")
    try:
        return np.broadcast_to(arr.astype(float), shape).reshape(-1)
    except ValueError:
        raise ValueError(f"minimize: option {name} has shape {arr.shape}; it must be one "
                         f"number or one per coordinate of x0 {shape}") from None


def _make_ops(backend_name: str, x0: Any, method: str) -> tuple[str, Any, Any, tuple]:
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
    if arr.size == 0:
        raise ValueError("minimize: x0 is empty; there is nothing to minimise over")
    shape = arr.shape if arr.ndim else (1,)
    return (backend.name, ops_for(backend.name, arr.size, arr.dtype, method), arr.reshape(-1),
            shape)


def _limits(values: Any, n: int, none: float) -> np.ndarray:
    """Lower or upper bounds as n floats (None is no bound), broadcast as SciPy does."""
    values = np.array([none if v is None else v for v in np.ravel(np.asarray(values, object))],
                      dtype=float)
    return np.broadcast_to(values, (n,))


def _refuse_bounds(bounds: Any, n: int) -> None:
    """None, or bounds that bound nothing (None or -inf/inf, as (min, max) pairs, one pair
    for all, or a ``Bounds``); anything else is an error: fastopt's L-BFGS cannot honour
    it."""
    if bounds is None:
        return
    try:
        if hasattr(bounds, "lb") and hasattr(bounds, "ub"):        # scipy.optimize.Bounds
            lb, ub = bounds.lb, bounds.ub
        else:
            pairs = [tuple(b) for b in bounds]
            if not pairs or any(len(p) != 2 for p in pairs):
                raise ValueError
            lb, ub = [p[0] for p in pairs], [p[1] for p in pairs]
        lb, ub = _limits(lb, n, -math.inf), _limits(ub, n, math.inf)
    except (TypeError, ValueError):
        raise ValueError(f"minimize: bounds must be None, a Bounds, or (min, max) pairs: one "
                         f"per coordinate of x0 ({n}) or one for all; got {bounds!r:.80}"
                         ) from None
    bounded = np.flatnonzero((lb != -math.inf) | (ub != math.inf))
    if bounded.size:
        i = int(bounded[0])
        raise ValueError(f"minimize: bounds bound x[{i}] to [{lb[i]}, {ub[i]}], and fastopt's "
                         f"L-BFGS does not handle bounds; use "
                         f"scipy.optimize.minimize(method='L-BFGS-B') for bounded problems")


def _refuse_constraints(constraints: Any) -> None:
    """No constraints: None, or an empty tuple, list, dict or array; anything else is an
    error."""
    empty = constraints is None or isinstance(constraints, (tuple, list, dict)) and \
        not constraints or isinstance(constraints, np.ndarray) and constraints.size == 0
    if not empty:
        raise ValueError(f"minimize: fastopt's L-BFGS does not handle constraints, got "
                         f"{constraints!r:.80}; use scipy.optimize.minimize(method='SLSQP' "
                         f"or 'trust-constr')")


def _warn_unused(method: Method, hess: Any, hessp: Any) -> None:
    """SciPy's warnings for Hessian information the method does not use."""
    if hess is not None and not method.uses_hess:
        warnings.warn(f"Method {method.name} does not use Hessian information (hess).",
                      RuntimeWarning, stacklevel=3)
    if hessp is not None and not method.uses_hessp:
        warnings.warn(f"Method {method.name} does not use Hessian-vector product information "
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
def checked_grad(g: Any, shape: tuple, size: int, name: str = "the gradient") -> Any:
    """``g`` as an array (a list or a number becomes one) if it holds real numbers, one per
    coordinate: x's shape, or any shape of x's size when x is 1-d (SciPy takes a column
    (n, 1) too); else an error naming it (no broadcasting)."""
    what = f"minimize: {name}"
    if not hasattr(g, "dtype") or not hasattr(g, "shape"):
        try:
            g = np.asarray(g)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be an array of shape {shape}, got "
                            f"{type(g).__name__}") from None
        if g.dtype == object:
            raise TypeError(f"{what} must be an array of numbers, got {g!r:.60}")
    if np.dtype(g.dtype).kind not in "fiu":
        raise TypeError(f"{what} must be real numbers, got dtype {g.dtype}")
    if tuple(g.shape) != tuple(shape) and not (g.size == size and
                                               (g.ndim <= 1 or len(shape) == 1)):
        raise ValueError(f"{what} has shape {tuple(g.shape)}, x has {tuple(shape)}")
    return g


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
        try:
            f = self.fun(x.reshape(self.shape), *self.args)
        except StopIteration as exc:            # map() would end quietly on it
            raise FunStopped(exc) from None
        if isinstance(f, (tuple, list)):
            if len(f) == 2:
                raise TypeError("minimize: fun returned a pair, but jac is not True: fun(x) "
                                "must return f alone (or pass jac=True when it returns "
                                "(f, g))")
            f = np.asarray(f)                   # [f] is f, as SciPy takes it
        if self.complex_step:
            return complex(np.asarray(f).item())
        return checked_loss("minimize", "f", f)


class Evaluations:
    """f and g at the solver's points for every ``jac`` SciPy takes; fun and jac get
    copies of x. Counts nfev (finite-difference calls included) and njev."""

    def __init__(self, fun: Callable, jac: Any, args: tuple, shape: tuple, eps: np.ndarray,
                 rel_step: np.ndarray | None, gpu: bool) -> None:
        """``eps``: forward differences' absolute steps; ``rel_step``: the named methods'
        relative steps (None: SciPy's defaults); both flat, one per coordinate."""
        self.fun, self.jac, self.args, self.shape, self.gpu = fun, jac, args, shape, gpu
        self.nfev = self.njev = 0
        self.workers: Callable = map
        named = isinstance(jac, str) and jac in _numdiff.METHODS
        if jac is True or jac is np.True_:
            self.mode = "pair"
        elif callable(jac):
            self.mode = "jac"
        elif jac is None or jac is False or jac is np.False_ or named:
            self.mode = jac if named else "2-point"
            self.abs_step, self.rel_step = (None if named else eps), rel_step
        else:
            raise ValueError(f"minimize: jac must be True (fun returns (f, g)), a function "
                             f"jac(x), or None, False, '2-point', '3-point' or 'cs' (finite "
                             f"differences); got {jac!r}")
        self.objective = Objective(fun, args, shape, gpu, complex_step=self.mode == "cs")
        self.value = Objective(fun, args, shape, gpu)
        self._spare: Any = None
        self._prefilled: Any = None          # fresh_copy's array, for the next evaluation
        self.dtype: Any = None               # x's, set by minimize

    def _copy(self, v: Any) -> Any:
        """A copy of v in x0's shape for the user's function: in the last copy's memory
        when nothing holds that copy any more (its reference count says so: a view, a
        memoryview or a list that kept it counts), else in new memory. At n = 1e6 a new
        8 MB copy cost ~2 ms an evaluation in page faults and unmapping, more than the
        copying."""
        spare = self._spare
        if isinstance(spare, np.ndarray) and sys.getrefcount(spare) == 3:   # spare, self, arg
            spare[...] = v.reshape(self.shape)
            return spare
        self._spare = v.reshape(self.shape).copy()
        return self._spare

    def _take(self, v: Any) -> Any:
        """fun's x at v: the copy the solver wrote with the trial point (``fresh_copy``),
        else ``_copy(v)``."""
        copy, self._prefilled = self._prefilled, None
        return copy if copy is not None else self._copy(v)

    def fresh_copy(self) -> Any:
        """A flat array for the solver to write the next point into, handed to fun as its
        x by the next evaluation (fun and jac modes; None for finite differences)."""
        if self.mode not in ("pair", "jac"):
            return None
        spare = self._spare
        if not (isinstance(spare, np.ndarray) and sys.getrefcount(spare) == 3):
            spare = self._spare = np.empty(self.shape, self.dtype)
        self._prefilled = spare
        return spare.reshape(-1)

    def __call__(self, v: Any, g_out: Any) -> float:
        """f(v); writes g(v) into g_out (v and g_out: flat vectors of the backend), or
        hands it, checked and flat, to g_out when that is a function."""
        if self.mode == "pair":
            f, g = pair("minimize", "fun (with jac=True)", self.fun(self._take(v), *self.args))
            f = checked_loss("minimize", "f", f)
        else:
            f = self.value(self._take(v))
            g = self.jac(self._copy(v), *self.args) if self.mode == "jac" else \
                self._finite_differences(v, f)
        self.nfev += 1
        self.njev += 1
        g = checked_grad(g, self.shape, v.size).reshape(-1)
        if callable(g_out):                 # the solver takes it (CG: with its dot products)
            g_out(g)
        else:
            g_out[...] = g
        return f

    def gradient(self, v: Any, g_out: Any) -> None:
        """g(v) alone into g_out: jac(v), or fun's pair with jac=True (Newton-CG's
        finite-difference Hessian products); counts in njev only, as SciPy counts it."""
        if self.mode == "pair":
            _, g = pair("minimize", "fun (with jac=True)", self.fun(self._copy(v), *self.args))
        else:
            g = self.jac(self._copy(v), *self.args)
        self.njev += 1
        g_out[...] = checked_grad(g, self.shape, v.size).reshape(-1)

    def _finite_differences(self, v: Any, f: float) -> Any:
        """The gradient at v by differences, its points made on v's device (a map of
        processes gets host points: CuPy arrays do not travel between processes)."""
        x = v if self.workers is map or not self.gpu else host_array(v)
        h = _numdiff.steps(self.mode, x, self.abs_step, self.rel_step)
        g, calls = _numdiff.gradient(self.objective, x, f, self.mode, h, self.workers)
        self.nfev += calls
        return _numdiff.namespace(v).asarray(g)


def _recorder(report: Callable | None, allvecs: list | None) -> Callable | None:
    """The callback, with the iterates kept for return_all."""
    if allvecs is None:
        return report

    def record(x: Any, f: float) -> Any:
        allvecs.append(x.copy())
        return report(x, f) if report is not None else None
    return record


def minimize(fun: Callable, x0: Any, args: Any = (), method: str | None = None,
             jac: Any = None, hess: Any = None, hessp: Any = None, bounds: Any = None,
             constraints: Any = (), tol: float | None = None,
             callback: Callable | None = None, options: Mapping[str, Any] | None = None,
             *, backend: str = "auto") -> OptimizeResult:
    """Minimise ``fun``: ``scipy.optimize.minimize`` for unconstrained problems, with
    the same signature, results and messages, on fastopt's kernels.

    ``method``: "L-BFGS-B" (None: fastopt's default, where SciPy's is BFGS), "CG", "BFGS",
    "Newton-CG", or "Newton" (dense ``hess`` with Levenberg damping; not SciPy's).
    ``fun(x, *args)`` returns f, or (f, g) with ``jac=True``; ``jac`` may also be
    ``jac(x, *args)``, or None/False (forward differences, absolute step ``eps``) or
    '2-point', '3-point', 'cs' (SciPy's relative steps, ``finite_diff_rel_step``); their
    calls count in nfev. Newton-CG takes ``hessp(x, p, *args)`` or ``hess(x, *args)``
    (else finite differences of the gradient), Newton ``hess``. x lives on the backend
    (NumPy arrays for numpy/numba, CuPy arrays for cupy; backend="auto" follows x0) in
    x0's shape; fun, jac, hess and callback get copies.
    Options are SciPy's for each method (maxiter, gtol, norm, eps, c1, c2, xtol, xrtol,
    hess_inv0, return_all, disp, workers, finite_diff_rel_step; for L-BFGS-B maxfun,
    maxcor, ftol, maxls) and fastopt's: maxls, line_search (L-BFGS-B: "strong_wolfe" or
    "armijo"), variant (CG: "PR+", "FR", "HS"), damping (Newton); unknown options are
    errors. ``tol`` sets the tolerances SciPy's tol sets. ``callback(xk)`` or
    ``callback(intermediate_result)`` runs after each iteration and may raise
    StopIteration. ``hess``/``hessp`` given to a method that does not use them are ignored
    with SciPy's warning; bounds that bound something and constraints are refused.
    """
    chosen = method_named(method)
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}")
    args = args if isinstance(args, tuple) else (args,)
    report = _callback(callback)
    opts = _options(chosen, options, tol)
    backend_name, ops, x, shape = _make_ops(backend, x0, chosen.key)
    if opts["maxiter"] is None:
        opts["maxiter"] = 200.0 * x.size
    for name, option in chosen.options.items():
        if option.for_dtype is not None and name not in (options or {}):
            opts[name] = option.for_dtype(x.dtype)    # float32: steps float32 can take
    _refuse_bounds(bounds, x.size)
    _refuse_constraints(constraints)
    evaluations = Evaluations(fun, jac, args, shape, _steps("eps", opts["eps"], shape),
                              _steps("finite_diff_rel_step", opts.get("finite_diff_rel_step"),
                                     shape), gpu=backend_name == "cupy")
    evaluations.dtype = x.dtype
    if chosen.needs is not None:
        chosen.needs(evaluations.mode, hess, hessp)
    _warn_unused(chosen, hess, hessp)
    allvecs = [x.reshape(shape).copy()] if opts.get("return_all") else None
    run = Run(opts, _recorder(report, allvecs), shape, lambda: evaluations.nfev, args, hess,
              hessp, evaluations.gradient,
              lambda out, what: checked_grad(out, shape, x.size, what))
    try:
        with _workers(opts["workers"]) as evaluations.workers:
            problem = Problem(evaluations, x, ops, fresh_copy=evaluations.fresh_copy)
            nit, reason, extra = chosen.run(problem, run)
    except FunStopped as exc:
        raise exc.stop from None
    status = chosen.statuses[reason]
    result = OptimizeResult(
        x=problem.x.reshape(shape), fun=np.float64(problem.f), jac=problem.g.reshape(shape),
        nit=nit, nfev=evaluations.nfev, njev=evaluations.njev, status=status,
        success=status == 0, message=chosen.messages[reason], **extra, backend=backend_name)
    if allvecs is not None:
        result["allvecs"] = allvecs
    if opts["disp"]:
        _report(chosen, backend_name, result)
    return result


def _report(method: Method, backend_name: str, result: OptimizeResult) -> None:
    """disp=True: the summary, and where the method warns (CG, BFGS, Newton(-CG)) a run
    that did not succeed as SciPy reports it, an OptimizeWarning (SciPy's class when SciPy
    is installed)."""
    print(f"minimize ({method.name}, {backend_name}): {result.message}\n"
          f"  f = {result.fun:.10g} after {result.nit} iterations, {result.nfev} evaluations")
    if not result.success and method.warns:
        try:
            from scipy.optimize import OptimizeWarning
        except ImportError:
            OptimizeWarning = RuntimeWarning
        warnings.warn(result.message, OptimizeWarning, stacklevel=3)
