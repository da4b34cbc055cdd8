"""L-BFGS: ``minimize`` (SciPy's interface) and the ``LBFGS`` optimizer (PyTorch's).

The two-loop recursion and the history update run as fused kernels on the backend's
device (``fastopt.kernels.lbfgs``); the line searches work on host scalars: f and the
directional derivative g.d at each trial step.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .kernels import _checks
from .backends import FLOAT_DTYPES, resolve_backend
from .kernels import lbfgs as kernels
from .optimizer import checked_params

EPS = float(np.finfo(np.float64).eps)


class OptimizeResult(dict):
    """The result of :func:`minimize`, with SciPy's field names as attributes:
    x, fun, jac, nit, nfev, njev, status, success, message."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__

    def __repr__(self) -> str:
        keys = ("message", "success", "status", "fun", "x", "nit", "jac", "nfev", "njev")
        return "\n".join(f"{k:>8}: {self[k]!r}" for k in keys if k in self)


# -- the history ------------------------------------------------------------------------
class History:
    """The last m (s, y) pairs in (m, n) ring buffers on the backend's device."""

    def __init__(self, ops: Any, n: int, m: int) -> None:
        self.ops, self.m = ops, m
        self.S, self.Y = ops.zeros((m, n)), ops.zeros((m, n))
        self.rho = np.zeros(m)
        self.order: list[int] = []      # slots, oldest first
        self.gamma = 1.0

    def reset(self) -> None:
        self.order, self.gamma = [], 1.0

    def direction(self, g: Any, d: Any) -> None:
        """d = -H g (the scaled steepest descent -g when the memory is empty)."""
        self.ops.two_loop(g, self.S, self.Y, self.rho, np.asarray(self.order, np.int64),
                          self.gamma, d)

    def push(self, x_new: Any, x: Any, g_new: Any, g: Any, descent: float
             ) -> tuple[float, float, float]:
        """Store s = x_new - x, y = g_new - g unless its curvature s.y <= eps * descent,
        where descent = -g.s (L-BFGS-B's test: it holds at every scale of f, where
        s.y <= eps*y.y dropped every pair once f's curvature passed ~1/eps); returns (s.y,
        y.y, max|g_new|)."""
        slot = self.order[0] if len(self.order) == self.m else len(self.order)
        sy, yy, gmax = self.ops.update_pair(x_new, x, g_new, g, self.S[slot], self.Y[slot])
        if sy > EPS * descent and yy > 0:
            if len(self.order) == self.m:
                self.order.pop(0)
            self.order.append(slot)
            self.rho[slot] = 1.0 / sy
            self.gamma = sy / yy
        return sy, yy, gmax


# -- line searches (host scalars only) ----------------------------------------------------
def _cubic_minimum(t1, f1, g1, t2, f2, g2, lo, hi):
    """Minimiser of the cubic through (t1, f1, g1) and (t2, f2, g2), clipped to [lo, hi];
    the bisection of [lo, hi] when the cubic has no minimum there."""
    d1 = g1 + g2 - 3.0 * (f1 - f2) / (t1 - t2)
    disc = d1 * d1 - g1 * g2
    if disc >= 0 and math.isfinite(disc):
        d2 = math.copysign(math.sqrt(disc), t2 - t1)
        denom = g2 - g1 + 2.0 * d2
        if denom != 0:
            t = t2 - (t2 - t1) * (g2 + d2 - d1) / denom
            if math.isfinite(t):
                return min(max(t, lo), hi)
    return 0.5 * (lo + hi)


def strong_wolfe(phi: Callable[[float], tuple[float, float]], f0: float, gtd0: float, t: float,
                 c1: float = 1e-4, c2: float = 0.9, max_evals: int = 20,
                 xtol: float = 1e-12) -> tuple[float, float, float, int, bool]:
    """Bracket-and-zoom line search for the strong Wolfe conditions with cubic
    interpolation (Nocedal & Wright, Algorithms 3.5 and 3.6).

    ``phi(t)`` evaluates the objective at x + t*d and returns (f, g.d); it keeps the point
    as the candidate only if told so by the caller. Returns (t, f, g.d, evaluations,
    success) of the best point found; a non-finite f or g.d backtracks towards the last
    good step.
    """
    evals = 0
    t_prev, f_prev, g_prev = 0.0, f0, gtd0
    best = (0.0, f0, gtd0)
    bracket = None
    while evals < max_evals:
        f, g = phi(t)
        evals += 1
        if not (math.isfinite(f) and math.isfinite(g)):
            t = t_prev + 0.5 * (t - t_prev)          # back off towards the last good step
            continue
        if f <= f0 + c1 * t * gtd0 and f < best[1]:
            best = (t, f, g)
        if f > f0 + c1 * t * gtd0 or (evals > 1 and f >= f_prev):
            bracket = [(t_prev, f_prev, g_prev), (t, f, g)]
            break
        if abs(g) <= -c2 * gtd0:
            return t, f, g, evals, True
        if g >= 0:
            bracket = [(t, f, g), (t_prev, f_prev, g_prev)]
            break
        t_next = _cubic_minimum(t_prev, f_prev, g_prev, t, f, g, t + 0.01 * (t - t_prev), 10 * t)
        t_prev, f_prev, g_prev, t = t, f, g, t_next
    while bracket is not None and evals < max_evals:
        (t_lo, f_lo, g_lo), (t_hi, f_hi, g_hi) = bracket
        if abs(t_hi - t_lo) <= xtol * max(abs(t_lo), abs(t_hi)):   # relative: steps may be tiny
            break
        lo, hi = min(t_lo, t_hi), max(t_lo, t_hi)
        width = hi - lo
        t = _cubic_minimum(t_lo, f_lo, g_lo, t_hi, f_hi, g_hi, lo, hi)
        t = min(max(t, lo + 0.1 * width), hi - 0.1 * width)   # safeguard: shrink the bracket
        f, g = phi(t)
        evals += 1
        if not (math.isfinite(f) and math.isfinite(g)):
            bracket[1] = (t, math.inf, math.inf)
            continue
        if f <= f0 + c1 * t * gtd0 and f < best[1]:
            best = (t, f, g)
        if f > f0 + c1 * t * gtd0 or f >= f_lo:
            bracket[1] = (t, f, g)
        else:
            if abs(g) <= -c2 * gtd0:
                return t, f, g, evals, True
            if g * (t_hi - t_lo) >= 0:
                bracket[1] = bracket[0]
            bracket[0] = (t, f, g)
    return best[0], best[1], best[2], evals, False


def armijo(phi: Callable[[float], tuple[float, float]], f0: float, gtd0: float, t: float,
           c1: float = 1e-4, max_evals: int = 20) -> tuple[float, float, float, int, bool]:
    """Backtracking until f(x + t d) <= f0 + c1 t g.d, halving t (or shrinking it to the
    minimiser of the quadratic through f0, gtd0 and f(t), kept within [0.1 t, 0.5 t])."""
    for evals in range(1, max_evals + 1):
        f, g = phi(t)
        if math.isfinite(f) and math.isfinite(g) and f <= f0 + c1 * t * gtd0:
            return t, f, g, evals, True
        if math.isfinite(f):
            q = -gtd0 * t * t / (2.0 * (f - f0 - gtd0 * t))
            t = min(max(q, 0.1 * t), 0.5 * t)
        else:
            t *= 0.5
    return 0.0, f0, gtd0, max_evals, False


LINE_SEARCHES = {"strong_wolfe": strong_wolfe, "armijo": armijo}


# -- what fun and closures return --------------------------------------------------------
def checked_loss(owner: str, what: str, f: Any) -> float:
    """``f`` as a float: a real number (a 0-d array or NumPy scalar included)."""
    if isinstance(f, np.ndarray) and f.ndim == 0 or isinstance(f, np.generic):
        f = f.item()
    shape = getattr(f, "shape", ())
    if isinstance(f, (bool, complex, str)) or not hasattr(f, "__float__") or \
            tuple(shape) != ():
        shape_text = f" of shape {tuple(shape)}" if shape != () else ""
        raise TypeError(f"{owner}: {what} must be a real number, got "
                        f"{type(f).__name__}{shape_text} {f!r:.60}")
    return float(f)          # a 0-d tensor of torch or JAX too


def checked_grad(owner: str, what: str, g: Any, shape: tuple, size: int) -> Any:
    """``g`` (a list or a number becomes an array) if it is a real, floating (or integer)
    array of ``shape`` or at least of ``size`` elements in one row, else an error naming it
    (no broadcasting)."""
    if not hasattr(g, "dtype") or not hasattr(g, "shape"):
        try:
            g = np.asarray(g)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: {what} must be an array of shape {shape}, got "
                            f"{type(g).__name__}") from None
        if g.dtype == object:
            raise TypeError(f"{owner}: {what} must be an array of numbers, got {g!r:.60}")
    dtype = g.dtype
    if np.dtype(dtype).kind not in "fiu":
        raise TypeError(f"{owner}: {what} must be real numbers, got dtype {dtype}")
    if tuple(g.shape) != tuple(shape) and not (g.size == size and g.ndim <= 1):
        raise ValueError(f"{owner}: {what} has shape {tuple(g.shape)}, x has {tuple(shape)}")
    return g


def pair(owner: str, what: str, out: Any) -> tuple[Any, Any]:
    """(f, g) from what ``fun`` (or a closure) returned, or an error saying what it was."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        got = f"a {type(out).__name__} of {len(out)}" if isinstance(out, (tuple, list)) \
            else type(out).__name__
        raise TypeError(f"{owner}: {what} must return (f, g), the value and the gradient; "
                        f"got {got}")
    return out[0], out[1]


# -- the iteration shared by minimize() and LBFGS ----------------------------------------
class _Problem:
    """The evaluation state of one run: x, its gradient, and trial buffers for the line
    search, all on the backend's device; counts evaluations."""

    def __init__(self, evaluate: Callable[[Any, Any], float], x: Any, ops: Any) -> None:
        """``evaluate(x, g_out)`` returns f(x) and writes the gradient into ``g_out``."""
        self.evaluate, self.ops = evaluate, ops
        self.x, self.g = x, ops.zeros(x.shape)
        self.x_trial, self.g_trial = ops.zeros(x.shape), ops.zeros(x.shape)
        self.d = ops.zeros(x.shape)
        self.nfev = 0
        self.t_trial = None
        self.f = self._eval_into(self.x, self.g)

    def _eval_into(self, x: Any, g_out: Any) -> float:
        self.nfev += 1
        return float(self.evaluate(x, g_out))

    def phi(self, t: float) -> tuple[float, float]:
        """f and g.d at x + t d (kept in the trial buffers)."""
        self.ops.step(self.x_trial, self.x, t, self.d)
        f = self._eval_into(self.x_trial, self.g_trial)
        self.t_trial = t
        gtd = self.ops.dot(self.g_trial, self.d) if math.isfinite(f) else math.nan
        return f, gtd

    def accept(self, t: float) -> None:
        """Make x + t d the current point (re-evaluated only if it was not the last trial)."""
        if self.t_trial != t:
            self.phi(t)
        self.x, self.x_trial = self.x_trial, self.x
        self.g, self.g_trial = self.g_trial, self.g


def _iterations(problem: _Problem, history: History, search: Callable, maxls: int,
                evals_left: Callable[[], int], lr: float):
    """L-BFGS iterations: yields (f before, step length t, max|g|) after each accepted step;
    ends when the line search finds no decrease even from steepest descent."""
    while True:
        history.direction(problem.g, problem.d)
        gtd = problem.ops.dot(problem.g, problem.d)
        if not gtd < 0:                      # not a descent direction: forget the history
            history.reset()
            history.direction(problem.g, problem.d)
            gtd = problem.ops.dot(problem.g, problem.d)
        # first step from an empty memory: |t d| <= 1, as SciPy (and PyTorch) start
        t0 = lr if history.order or not -gtd > 0 else lr * min(1.0, 1.0 / math.sqrt(-gtd))
        t, f_new, _, _, ok = search(problem.phi, problem.f, gtd, t0,
                                    max_evals=max(1, min(maxls, evals_left())))
        if (not ok and t == 0.0) or not f_new <= problem.f:
            if history.order:                # retry once from steepest descent
                history.reset()
                continue
            return
        f_old, x_old, g_old = problem.f, problem.x, problem.g
        problem.accept(t)
        problem.f = f_new
        _, _, gmax = history.push(problem.x, x_old, problem.g, g_old, -t * gtd)
        yield f_old, t, gmax


def _options(options: Mapping[str, Any] | None, tol: float | None) -> dict:
    opts = dict(maxiter=15000, maxfun=15000, history_size=10, gtol=1e-5, ftol=2.220446049250313e-09,
                maxls=20, line_search="strong_wolfe", disp=False)
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"minimize: options must be a dict of option names and values, got "
                        f"{type(options).__name__}")
    given = dict(options or {})
    if "maxcor" in given:                        # SciPy's name for history_size
        given.setdefault("history_size", given.pop("maxcor"))
    for ignored in ("iprint", "eps", "finite_diff_rel_step"):
        given.pop(ignored, None)
    unknown = set(given) - set(opts)
    if unknown:
        raise ValueError(f"minimize: unknown option(s) {sorted(unknown)}; known: {sorted(opts)}")
    if tol is not None:
        opts.update(ftol=tol, gtol=tol)
    opts.update(given)
    for k in ("maxiter", "maxfun", "history_size", "maxls"):
        _checks.count("minimize", f"option {k}", opts[k])
    for k in ("gtol", "ftol"):
        _checks.nonnegative("minimize", f"option {k}", opts[k])
    disp = opts["disp"]          # SciPy takes verbosity levels: any integer
    opts["disp"] = bool(disp) if isinstance(disp, (int, np.integer)) else \
        _checks.boolean("minimize", "option disp", disp)
    if opts["line_search"] not in LINE_SEARCHES:
        raise ValueError(f"minimize: option line_search must be one of {sorted(LINE_SEARCHES)}, "
                         f"got {opts['line_search']!r}")
    return opts


def _ops_for(backend_name: str, n: int, dtype: np.dtype) -> Any:
    """The L-BFGS operations of a resolved backend, for n elements of ``dtype``."""
    if backend_name == "cupy":
        return kernels.CupyOps(n, dtype)
    return kernels.HostOps(n, dtype, compiled=backend_name == "numba")


def _make_ops(backend_name: str, x: Any) -> tuple[str, Any, Any]:
    """(backend name, L-BFGS ops, a copy of x as a flat float vector of the backend)."""
    backend = resolve_backend(backend_name, [x])
    if backend.name == "cupy":
        arr = backend.cp.array(x, copy=True)
    elif not isinstance(x, np.ndarray) and hasattr(x, "__cuda_array_interface__"):
        raise TypeError(f"minimize: x0 is a device array; backend {backend.name!r} takes NumPy arrays")
    else:
        try:
            arr = np.array(x, copy=True)
        except ValueError as exc:        # ragged nested lists
            raise ValueError(f"minimize: x0 must be an array of numbers: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"minimize: x0 must hold real numbers, got dtype {arr.dtype} from "
                        f"{x!r:.60}")
    if arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(np.float64)
    return backend.name, _ops_for(backend.name, arr.size, arr.dtype), arr.reshape(-1)


MESSAGES = {
    "gtol": "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    "ftol": "CONVERGENCE: REL_REDUCTION_OF_F <= FACTR*EPSMCH",
    "maxiter": "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    "maxfun": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    "linesearch": "ABNORMAL_TERMINATION_IN_LNSRCH",
    "nonfinite": "ABNORMAL: THE OBJECTIVE OR ITS GRADIENT IS NOT FINITE AT x0",
    "callback": "STOP: THE CALLBACK ASKED TO STOP",
}
STATUS = {"gtol": 0, "ftol": 0, "maxiter": 1, "maxfun": 1, "linesearch": 2, "nonfinite": 2,
          "callback": 99}


def minimize(fun: Callable, x0: Any, jac: bool | Callable = True, method: str = "L-BFGS",
             tol: float | None = None, options: Mapping[str, Any] | None = None,
             callback: Callable | None = None, backend: str = "auto") -> OptimizeResult:
    """Minimise ``fun`` by L-BFGS: a drop-in for ``scipy.optimize.minimize(...,
    method="L-BFGS-B")`` on unconstrained problems.

    ``fun(x)`` returns (f, g) when ``jac=True``; with a callable ``jac``, ``fun(x)`` returns f
    and ``jac(x)`` g. x lives on the backend (NumPy arrays for numpy/numba, CuPy arrays for
    cupy, as x0 decides with backend="auto"); g is copied into fastopt's buffer. Options
    (SciPy's names): maxiter, maxfun, history_size (or maxcor; default 10), gtol (max|g|,
    1e-5), ftol (relative reduction of f, 2.2e-9), maxls (20), line_search ("strong_wolfe"
    or "armijo"), disp (print a summary). ``tol`` sets gtol and ftol. ``callback(x)`` runs
    after each iteration and may raise StopIteration to stop. ``fun`` and ``callback`` get
    copies of x, as SciPy gives.
    """
    if not isinstance(method, str) or method.replace("-", "").upper() not in ("LBFGS",
                                                                              "LBFGSB"):
        raise ValueError(f"minimize: method must be 'L-BFGS', got {method!r}")
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"minimize: callback must be callable, got {type(callback).__name__}")
    opts = _options(options, tol)
    if jac is True:
        def fun_and_grad(x):
            return pair("minimize", "fun (with jac=True)", fun(x))
    elif callable(jac):
        def fun_and_grad(x):
            f = fun(x)
            if isinstance(f, (tuple, list)):
                raise TypeError("minimize: fun returned a tuple, but jac is a function: "
                                "fun(x) must return f alone (or pass jac=True)")
            return f, jac(x)
    else:
        raise ValueError("minimize: fastopt needs gradients: jac=True (fun returns (f, g)) "
                         f"or a callable jac(x); got jac={jac!r}")
    backend_name, ops, x = _make_ops(backend, x0)
    shape = np.shape(x0)

    def evaluate(v, g_out):
        # a copy, as SciPy passes: fun may keep or change its x without touching ours
        f, g = fun_and_grad(v.reshape(shape).copy())
        g = checked_grad("minimize", "the gradient", g, shape, v.size)
        g_out[...] = g.reshape(-1)
        return checked_loss("minimize", "f", f)

    problem = _Problem(evaluate, x, ops)
    history = History(ops, x.size, opts["history_size"])
    search = LINE_SEARCHES[opts["line_search"]]
    nit, reason = 0, None
    gmax = ops.max_abs(problem.g)
    if not (math.isfinite(problem.f) and math.isfinite(gmax)):
        reason = "nonfinite"
    elif gmax <= opts["gtol"]:
        reason = "gtol"
    iterations = _iterations(problem, history, search, opts["maxls"],
                             lambda: opts["maxfun"] - problem.nfev, lr=1.0)
    while reason is None:
        step = next(iterations, None)
        if step is None:
            reason = "maxfun" if problem.nfev >= opts["maxfun"] else "linesearch"
            break
        f_old, _, gmax = step
        nit += 1
        if callback is not None:
            try:
                callback(problem.x.reshape(shape).copy())
            except StopIteration:
                reason = "callback"
                break
        if gmax <= opts["gtol"]:
            reason = "gtol"
        elif (f_old - problem.f) <= opts["ftol"] * max(abs(f_old), abs(problem.f), 1.0):
            reason = "ftol"
        elif nit >= opts["maxiter"]:
            reason = "maxiter"
        elif problem.nfev >= opts["maxfun"]:
            reason = "maxfun"
    result = OptimizeResult(x=problem.x.reshape(shape), fun=problem.f,
                            jac=problem.g.reshape(shape), nit=nit, nfev=problem.nfev,
                            njev=problem.nfev, status=STATUS[reason],
                            success=STATUS[reason] == 0, message=MESSAGES[reason],
                            backend=backend_name)
    if opts["disp"]:
        print(f"minimize (L-BFGS, {backend_name}): {result.message}\n"
              f"  f = {result.fun:.10g} after {nit} iterations, {problem.nfev} evaluations")
    return result


SETTINGS = {"lr": _checks.positive, "max_iter": _checks.count,
            "tolerance_grad": _checks.nonnegative, "tolerance_change": _checks.nonnegative}


class LBFGS:
    """L-BFGS as a stateful optimizer for full-batch training loops (PyTorch's interface).

        opt = fastopt.LBFGS(params, lr=1.0, history_size=10, max_iter=20)
        loss = opt.step(closure)         # closure() -> (loss, grads); grads like params

    ``step`` runs up to ``max_iter`` iterations with the line search, updating ``params``
    in place, and returns the loss at its start. It stops early when max|g| <=
    tolerance_grad, or a step or the change of the loss falls below tolerance_change.
    The history persists across calls.
    """

    def __init__(self, params: Any, lr: float = 1.0, history_size: int = 10,
                 max_iter: int = 20, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, line_search: str = "strong_wolfe", *,
                 backend: str = "auto") -> None:
        name = "LBFGS"
        self._single, self._backend, self._arrays = checked_params(name, params, backend)
        dtypes = {a.dtype for a in self._arrays}
        if len(dtypes) != 1:
            raise TypeError(f"{name}: params must share one dtype; got "
                            f"{sorted(str(d) for d in dtypes)}")
        _checks.count(name, "history_size", history_size)
        self.lr, self.max_iter = lr, max_iter            # checked by __setattr__
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        if line_search not in LINE_SEARCHES:
            raise ValueError(f"{name}: line_search must be one of {sorted(LINE_SEARCHES)}, "
                             f"got {line_search!r}")
        self._search = LINE_SEARCHES[line_search]
        ends = np.cumsum([a.size for a in self._arrays]).tolist()
        self._slices = [slice(end - a.size, end) for a, end in zip(self._arrays, ends)]
        n = ends[-1]
        self._ops = _ops_for(self._backend.name, n, self._arrays[0].dtype)
        self._history = History(self._ops, n, history_size)
        self.n_iter = 0

    def __setattr__(self, name: str, value: Any) -> None:
        """The settings may change between steps, checked as in the constructor; any other
        public attribute is an error, not silently ignored."""
        if name in SETTINGS:
            value = SETTINGS[name]("LBFGS", name, value)
        elif not name.startswith("_") and name != "n_iter":
            raise AttributeError(f"LBFGS has no setting {name!r}; its settings are "
                                 f"{sorted(SETTINGS)}")
        object.__setattr__(self, name, value)

    @property
    def backend(self) -> str:
        return self._backend.name

    def _scatter(self, flat: Any) -> None:
        """Write the flat vector into the params."""
        for a, part in zip(self._arrays, self._slices):
            a.reshape(-1)[...] = flat[part]

    def _gather(self, grads: Any, out: Any) -> None:
        glist = [grads] if self._single else list(grads)
        if len(glist) != len(self._arrays):
            raise ValueError(f"LBFGS: the closure returned {len(glist)} grads for "
                             f"{len(self._arrays)} params")
        for i, (g, a, part) in enumerate(zip(glist, self._arrays, self._slices)):
            what = "grads" if self._single else f"grads[{i}]"
            g = self._backend.check_array(g, f"LBFGS: {what}")
            if g.dtype.kind != "f":
                raise TypeError(f"LBFGS: {what} must be floating point like its param, got "
                                f"dtype {g.dtype}")
            if g.shape != a.shape:
                raise ValueError(f"LBFGS: {what} has shape {g.shape}, its param {a.shape}")
            out[part] = g.reshape(-1)

    def step(self, closure: Callable[[], tuple[float, Any]]) -> float:
        """Up to max_iter L-BFGS iterations; returns the loss before them."""
        if not callable(closure):
            raise TypeError(f"LBFGS.step: closure must be a function returning (loss, grads), "
                            f"got {type(closure).__name__}")
        ops = self._ops
        x = ops.zeros(self._slices[-1].stop)
        for a, part in zip(self._arrays, self._slices):
            x[part] = a.reshape(-1)

        def evaluate(v, g_out):
            self._scatter(v)
            loss, grads = pair("LBFGS", "the closure", closure())
            self._gather(grads, g_out)
            return checked_loss("LBFGS", "the closure's loss", loss)

        problem = None
        try:
            problem = _Problem(evaluate, x, ops)
            return self._iterate(problem)
        except BaseException:
            # the closure (or a check) failed at a trial point: back to the accepted one
            self._scatter(problem.x if problem is not None else x)
            raise

    def _iterate(self, problem: _Problem) -> float:
        ops = self._ops
        first_loss = problem.f
        if ops.max_abs(problem.g) <= self.tolerance_grad:
            return first_loss
        iterations = _iterations(problem, self._history, self._search, 20,
                                 lambda: 10 ** 9, lr=self.lr)
        for _ in range(self.max_iter):
            step = next(iterations, None)
            if step is None:
                break
            f_old, t, gmax = step
            self.n_iter += 1
            if (gmax <= self.tolerance_grad or abs(problem.f - f_old) < self.tolerance_change
                    or t * ops.max_abs(problem.d) <= self.tolerance_change):
                break
        self._scatter(problem.x)
        return first_loss
