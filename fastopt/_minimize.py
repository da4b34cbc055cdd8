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

from . import _numdiff
from ._result import OptimizeResult, host_array, inverse_hessian
from .backends import FLOAT_DTYPES, resolve_backend
from .kernels import _checks
from . import _descent
from ._descent import stopped_by
from ._bfgs import BFGS, checked_hess_inv0
from ._cg import CG, VARIANTS
from ._newton import MESSAGES as NEWTON_MESSAGES
from ._newton import (NEWTON_CG_STATUS, HessianProducts, Newton, is_update_strategy,
                      run_newton_cg)
from .lbfgs import (LINE_SEARCHES, FunStopped, History, _iterations, _ops_for, _Problem,
                    checked_loss, pair)

EPSILON = math.sqrt(np.finfo(float).eps)     # SciPy's finite-difference step for CG, BFGS, ...
OPTIONS = dict(maxiter=15000, maxfun=15000, history_size=10, gtol=1e-5,
               ftol=2.220446049250313e-09, maxls=20, line_search="strong_wolfe", disp=False,
               eps=1e-8, finite_diff_rel_step=None, workers=None)
_GRADIENT = dict(maxiter=None, disp=False, return_all=False, gtol=1e-5, norm=math.inf,
                 eps=EPSILON, finite_diff_rel_step=None, workers=None, c1=1e-4, maxls=20)
METHOD_OPTIONS = {        # SciPy's options for each method (maxiter None: 200 n), fastopt's too
    "l-bfgs-b": OPTIONS,
    "cg": dict(_GRADIENT, c2=0.1, variant="PR+"),      # SciPy: c2=0.4
    "bfgs": dict(_GRADIENT, c2=0.9, xrtol=0.0, hess_inv0=None),
    "newton-cg": dict(maxiter=None, disp=False, return_all=False, xtol=1e-5, eps=EPSILON,
                      c1=1e-4, c2=0.9, maxls=20, workers=None),
    "newton": dict(_GRADIENT, c2=0.9, damping=1e-3),
}
METHOD_NAMES = {"l-bfgs-b": "L-BFGS-B", "l-bfgs": "L-BFGS-B", "cg": "CG", "bfgs": "BFGS",
                "newton-cg": "Newton-CG", "newton": "Newton"}
TOL_SETS = {"l-bfgs-b": ("ftol", "gtol"), "cg": ("gtol",), "bfgs": ("gtol",),
            "newton-cg": ("xtol",), "newton": ("gtol",)}
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
def _method_key(method: Any) -> str:
    """The method's key in METHOD_OPTIONS (any case; None is L-BFGS-B)."""
    if method is None:
        return "l-bfgs-b"
    key = method.lower() if isinstance(method, str) else None
    if key not in METHOD_NAMES:
        raise ValueError(f"minimize: method must be one of {sorted(set(METHOD_NAMES.values()))} "
                         f"(any case) or None (L-BFGS-B), got {method!r}")
    return "l-bfgs-b" if key == "l-bfgs" else key


def _limit(name: str, value: Any) -> float:
    """maxfun: any number >= 0, as SciPy takes (100.1 and inf included); maxiter: any
    number, one <= 0 stopping before the first iteration (status 1), as SciPy's does."""
    least = -math.inf if name.endswith("maxiter") else 0.0
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not value >= least:
        raise ValueError(f"minimize: {name} must be a number{' >= 0' if least == 0 else ''}, "
                         f"got {value!r}")
    return float(value)


def _options(key: str, options: Mapping[str, Any] | None, tol: float | None) -> dict:
    """The method's options: SciPy's (for L-BFGS-B maxcor is history_size, and iprint is
    accepted and unused, as in SciPy 1.15+) and fastopt's (line_search, maxls, variant,
    damping); ``tol`` sets the tolerances SciPy's tol sets unless given. Unknown options
    are errors."""
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"minimize: options must be a dict of option names and values, got "
                        f"{type(options).__name__}")
    given = dict(options or {})
    history_name = "maxcor" if "maxcor" in given else "history_size"
    aliases = []
    if key == "l-bfgs-b":
        aliases = ["maxcor", "iprint"]
        if "maxcor" in given:
            if "history_size" in given:
                raise ValueError("minimize: options maxcor and history_size name the same "
                                 "setting; give one of them")
            given["history_size"] = given.pop("maxcor")
        if given.pop("iprint", None) is not None:
            warnings.warn("minimize: option iprint has no effect (SciPy 1.15 deprecated it "
                          "and prints nothing either)", DeprecationWarning, stacklevel=3)
    defaults = METHOD_OPTIONS[key]
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"minimize: unknown option(s) {sorted(unknown)} for method "
                         f"{METHOD_NAMES[key]}; known: {sorted([*defaults, *aliases])}")
    opts = dict(defaults)
    if tol is not None:
        opts.update(dict.fromkeys(TOL_SETS[key], _checks.nonnegative("minimize", "tol", tol)))
    opts.update(given)
    for k, check in OPTION_CHECKS.items():
        if k in opts and not (k == "maxiter" and opts[k] is None):
            opts[k] = check(f"option {history_name if k == 'history_size' else k}", opts[k])
    if "c2" in opts and not opts["c1"] < opts["c2"]:
        raise ValueError(f"minimize: options 'c1' and 'c2' do not satisfy '0 < c1 < c2 < 1', "
                         f"got c1={opts['c1']}, c2={opts['c2']}")
    disp = opts["disp"]          # SciPy takes None or verbosity levels: any integer
    opts["disp"] = bool(disp) if disp is None or isinstance(disp, (int, np.integer)) else \
        _checks.boolean("minimize", "option disp", disp)
    workers = opts["workers"]
    if not (workers is None or callable(workers) or isinstance(workers, (int, np.integer))
            and not isinstance(workers, bool) and (workers >= 1 or workers == -1)):
        raise ValueError(f"minimize: option workers must be a map-like callable, a number of "
                         f"processes >= 1, or -1 (all cores); got {workers!r}")
    return opts


def _fraction(name: str, value: Any) -> float:
    """c1, c2: a number strictly between 0 and 1 (SciPy's words in the error)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not 0 < value < 1:
        raise ValueError(f"minimize: {name} must be a number in (0, 1), got {value!r} ('c1' "
                         f"and 'c2' do not satisfy '0 < c1 < c2 < 1')")
    return float(value)


def _norm_order(name: str, value: Any) -> float:
    """norm: the order of SciPy's vecnorm, a number other than 0 (inf: max|g|)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or math.isnan(value) or value == 0:
        raise ValueError(f"minimize: {name} must be a nonzero number (inf: max|g|), got "
                         f"{value!r}")
    return float(value)


def _one_of(choices: tuple) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"minimize: {name} must be one of {list(choices)}, got {value!r}")
        return value
    return check


def _flag(name: str, value: Any) -> bool:
    """True or False (None is False, as SciPy takes it)."""
    return False if value is None else _checks.boolean("minimize", name, value)


def _on_minimize(check: Callable) -> Callable[[str, Any], Any]:
    return lambda name, value: check("minimize", name, value)


OPTION_CHECKS = {
    "maxiter": _limit, "maxfun": _limit, "history_size": _on_minimize(_checks.count),
    "maxls": _on_minimize(_checks.count), "gtol": _on_minimize(_checks.nonnegative),
    "ftol": _on_minimize(_checks.nonnegative), "xtol": _on_minimize(_checks.nonnegative),
    "xrtol": _on_minimize(_checks.nonnegative), "damping": _on_minimize(_checks.positive),
    "c1": _fraction, "c2": _fraction, "norm": _norm_order, "return_all": _flag,
    "line_search": _one_of(tuple(LINE_SEARCHES)), "variant": _one_of(VARIANTS),
}


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
    return (backend.name, _ops_for(backend.name, arr.size, arr.dtype, method), arr.reshape(-1),
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


def _warn_unused(method: str, hess: Any, hessp: Any) -> None:
    """SciPy's warnings for Hessian information the method does not use."""
    if hess is not None and method not in ("Newton-CG", "Newton"):
        warnings.warn(f"Method {method} does not use Hessian information (hess).",
                      RuntimeWarning, stacklevel=3)
    if hessp is not None and method != "Newton-CG":
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


# -- the run ----------------------------------------------------------------------------
def _run(problem: _Problem, history: History, opts: dict, report: Callable | None,
         evaluations: Evaluations, shape: tuple) -> tuple[int, str]:
    """L-BFGS iterations until a stopping test holds: (iterations, reason). After each
    iteration, in L-BFGS-B's order: the callback, maxiter, maxfun (checked only between
    iterations, so nfev may pass it), then the convergence tests."""
    ops = problem.ops
    gmax = ops.max_abs(problem.g)
    if not (math.isfinite(problem.f) and math.isfinite(gmax)):
        return 0, "nonfinite"
    if gmax <= opts["gtol"]:
        return 0, "gtol"
    iterations = _iterations(problem, history, LINE_SEARCHES[opts["line_search"]],
                             opts["maxls"], lr=1.0, partial_steps=False)
    nit = 0
    while True:
        step = next(iterations, None)
        if step is None:
            return nit, "maxfun" if evaluations.nfev > opts["maxfun"] else "linesearch"
        f_old, _, gmax = step
        nit += 1
        if stopped_by(report, problem, shape):
            return nit, "callback"
        if nit >= opts["maxiter"]:
            return nit, "maxiter"
        if evaluations.nfev > opts["maxfun"]:
            return nit, "maxfun"
        if gmax <= opts["gtol"]:
            return nit, "gtol"
        if (f_old - problem.f) <= opts["ftol"] * max(abs(f_old), abs(problem.f), 1.0):
            return nit, "ftol"


def _run_lbfgs(problem: _Problem, run: dict) -> tuple[int, str, dict]:
    history = History(problem.ops, problem.x.size, run["opts"]["history_size"])
    nit, reason = _run(problem, history, run["opts"], run["report"], run["evaluations"],
                       run["shape"])
    return nit, reason, dict(hess_inv=inverse_hessian(history.S, history.Y, history.order))


def _run_cg(problem: _Problem, run: dict) -> tuple[int, str, dict]:
    method = CG(problem, run["opts"]["variant"])
    nit, reason = _descent.run(problem, method, run["opts"], run["report"], run["shape"])
    return nit, reason, {}


def _run_bfgs(problem: _Problem, run: dict) -> tuple[int, str, dict]:
    method = BFGS(problem, checked_hess_inv0(run["opts"]["hess_inv0"], problem.x.size,
                                             problem.ops.xp))
    nit, reason = _descent.run(problem, method, run["opts"], run["report"], run["shape"])
    return nit, reason, dict(hess_inv=method.H)


def _products(problem: _Problem, run: dict) -> HessianProducts:
    shape = run["shape"]
    return HessianProducts(problem.ops, shape, run["args"], run["hess"], run["hessp"],
                           run["evaluations"].gradient, run["opts"]["eps"],
                           lambda out, what: checked_grad(out, shape, problem.x.size, what))


def _run_newton_cg(problem: _Problem, run: dict) -> tuple[int, str, dict]:
    products = _products(problem, run)
    nit, reason = run_newton_cg(problem, products, run["opts"], run["report"], run["shape"])
    return nit, reason, dict(nhev=products.nhev)


def _run_newton(problem: _Problem, run: dict) -> tuple[int, str, dict]:
    products = _products(problem, run)
    method = Newton(problem, products, run["opts"]["damping"])
    nit, reason = _descent.run(problem, method, run["opts"], run["report"], run["shape"])
    return nit, reason, dict(nhev=products.nhev)


RUNNERS = {"l-bfgs-b": (_run_lbfgs, MESSAGES, STATUS),
           "cg": (_run_cg, _descent.MESSAGES, _descent.STATUS),
           "bfgs": (_run_bfgs, _descent.MESSAGES, _descent.STATUS),
           "newton-cg": (_run_newton_cg, NEWTON_MESSAGES, NEWTON_CG_STATUS),
           "newton": (_run_newton, _descent.MESSAGES, _descent.STATUS)}


def _check_derivatives(key: str, evaluations: Evaluations, hess: Any, hessp: Any) -> None:
    """What Newton-CG and Newton need: a gradient (Newton-CG: SciPy's error) and, for
    Newton, ``hess``; callables where given."""
    if key == "newton-cg" and evaluations.mode not in ("pair", "jac"):
        raise ValueError("minimize: Jacobian is required for Newton-CG method: pass jac=True "
                         "(fun returns (f, g)) or a function jac(x)")
    if key == "newton" and not callable(hess):
        raise ValueError(f"minimize: method Newton needs hess, a function hess(x) returning "
                         f"the (n, n) Hessian, got {hess!r:.60}; Newton-CG takes hessp, "
                         f"finite differences or a HessianUpdateStrategy")
    if key == "newton-cg" and not (hess is None or callable(hess) or hess in _numdiff.METHODS
                                   or is_update_strategy(hess)):
        raise TypeError(f"minimize: hess must be a function hess(x), '2-point', '3-point', "
                        f"'cs' or a HessianUpdateStrategy, got {hess!r:.60}")
    if key == "newton-cg" and hessp is not None and not callable(hessp):
        raise TypeError(f"minimize: hessp must be a function hessp(x, p), got "
                        f"{type(hessp).__name__}")


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
    key = _method_key(method)
    name = METHOD_NAMES[key]
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}")
    args = args if isinstance(args, tuple) else (args,)
    report = _callback(callback)
    opts = _options(key, options, tol)
    backend_name, ops, x, shape = _make_ops(backend, x0, key)
    if opts["maxiter"] is None:
        opts["maxiter"] = 200.0 * x.size
    if key != "l-bfgs-b" and "eps" not in (options or {}):
        opts["eps"] = math.sqrt(np.finfo(x.dtype).eps)    # float32: steps float32 can take
    _refuse_bounds(bounds, x.size)
    _refuse_constraints(constraints)
    evaluations = Evaluations(fun, jac, args, shape, _steps("eps", opts["eps"], shape),
                              _steps("finite_diff_rel_step", opts.get("finite_diff_rel_step"),
                                     shape), gpu=backend_name == "cupy")
    evaluations.dtype = x.dtype
    _check_derivatives(key, evaluations, hess, hessp)
    _warn_unused(name, hess, hessp)
    allvecs = [x.reshape(shape).copy()] if opts.get("return_all") else None
    run = dict(opts=opts, report=_recorder(report, allvecs), evaluations=evaluations,
               shape=shape, args=args, hess=hess, hessp=hessp)
    runner, messages, statuses = RUNNERS[key]
    try:
        with _workers(opts["workers"]) as evaluations.workers:
            problem = _Problem(evaluations, x, ops)
            nit, reason, extra = runner(problem, run)
    except FunStopped as exc:
        raise exc.stop from None
    result = OptimizeResult(
        x=problem.x.reshape(shape), fun=np.float64(problem.f), jac=problem.g.reshape(shape),
        nit=nit, nfev=evaluations.nfev, njev=evaluations.njev, status=statuses[reason],
        success=statuses[reason] == 0, message=messages[reason], **extra,
        backend=backend_name)
    if allvecs is not None:
        result["allvecs"] = allvecs
    if opts["disp"]:
        _report(name, backend_name, result)
    return result


def _report(name: str, backend_name: str, result: OptimizeResult) -> None:
    """disp=True: the summary, and for CG, BFGS and Newton(-CG) a run that did not succeed
    as SciPy reports it, an OptimizeWarning (SciPy's class when SciPy is installed)."""
    print(f"minimize ({name}, {backend_name}): {result.message}\n"
          f"  f = {result.fun:.10g} after {result.nit} iterations, {result.nfev} evaluations")
    if not result.success and name != "L-BFGS-B":
        try:
            from scipy.optimize import OptimizeWarning
        except ImportError:
            OptimizeWarning = RuntimeWarning
        warnings.warn(result.message, OptimizeWarning, stacklevel=3)
