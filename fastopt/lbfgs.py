"""L-BFGS: ``minimize`` (SciPy's interface) and the ``LBFGS`` optimizer (PyTorch's).

The two-loop recursion and the history update run as fused kernels on the backend's
device (``fastopt.kernels.lbfgs``); the line searches work on host scalars: f and the
directional derivative g.d at each trial step.
"""
from __future__ import annotations

import functools
import math
import os
import threading
import weakref
from typing import Any, Callable

import numpy as np

from .kernels import _checks
from .kernels import lbfgs as kernels
from .backends import check_unchanged
from .groups import is_one_array
from .optimizer import checked_params, forked_mid_call, forked_mid_call_error

_LIVE: weakref.WeakSet = weakref.WeakSet()     # every LBFGS, for the fork hook


def _after_fork_in_child() -> None:
    """As for the first-order optimizers: fresh locks, and an optimizer caught inside
    another thread's step refuses the next."""
    for opt in list(_LIVE):
        opt._forked_mid_call = forked_mid_call(opt._running, opt._owner)
        opt._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)

EPS = float(np.finfo(np.float64).eps)


# -- the history ------------------------------------------------------------------------
class History:
    """The last m (s, y) pairs in ring buffers on the backend's device: m + 1 rows, so that
    a new pair is written into a free row and a pair the curvature test rejects leaves
    the stored ones intact."""

    def __init__(self, ops: Any, n: int, m: int) -> None:
        self.ops, self.m = ops, m
        self.S, self.Y = ops.zeros((m + 1, n)), ops.zeros((m + 1, n))
        self.rho = np.zeros(m + 1)
        self.order: list[int] = []      # rows, oldest first
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
        row = min(set(range(self.m + 1)) - set(self.order))
        sy, yy, gmax = self.ops.update_pair(x_new, x, g_new, g, self.S[row], self.Y[row])
        if sy > EPS * descent and yy > 0:
            if len(self.order) == self.m:
                self.order.pop(0)
            self.order.append(row)
            self.rho[row] = 1.0 / sy
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


ZOOM_MARGIN = 1e-3      # of the bracket's width: how near its ends a zoom step may fall


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
    rounding = _Rounding(phi, f0, gtd0)
    phi = rounding.phi
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
        # beyond t by 1.1 to 4 times the last step (Moré-Thuente's cases 3 and 4 and their
        # bounds): where the slope flattens, the farther of the cubic's minimiser ahead and
        # the secant step to where the slope would vanish (with a gradient slightly
        # inconsistent with f the cubic's lies just past t, and trials crept); where it
        # steepens (a concave stretch), the far end
        near, far = t + 1.1 * (t - t_prev), t + 4.0 * (t - t_prev)
        if abs(g) < abs(g_prev):
            cubic = _cubic_minimum(t_prev, f_prev, g_prev, t, f, g, -math.inf, math.inf)
            secant = t + (t - t_prev) * g / (g_prev - g)
            ahead = max(cubic, secant) if cubic > t else secant
            t_next = min(max(ahead, near), far)
        else:
            t_next = far
        t_prev, f_prev, g_prev, t = t, f, g, t_next
    widths = [math.inf, math.inf]           # the bracket's width two and one steps ago
    unchanged = 0                           # trials in a row where f was flat to rounding
    while bracket is not None and evals < max_evals and unchanged < 2:
        (t_lo, f_lo, g_lo), (t_hi, f_hi, g_hi) = bracket
        if abs(t_hi - t_lo) <= xtol * max(abs(t_lo), abs(t_hi)):   # relative: steps may be tiny
            break
        lo, hi = min(t_lo, t_hi), max(t_lo, t_hi)
        width = hi - lo
        if width > 0.66 * widths[0]:        # too slow a shrink (Moré-Thuente): bisect
            t = 0.5 * (lo + hi)
        else:                               # the cubic's minimiser, off the very ends
            t = _cubic_minimum(t_lo, f_lo, g_lo, t_hi, f_hi, g_hi, lo, hi)
            t = min(max(t, lo + ZOOM_MARGIN * width), hi - ZOOM_MARGIN * width)
        widths = [widths[1], width]
        f, g = phi(t)
        evals += 1
        if not (math.isfinite(f) and math.isfinite(g)):
            bracket[1] = (t, math.inf, math.inf)
            continue
        # f flat to rounding (f0's or the bracket's best value to the last bit): give up
        unchanged = unchanged + 1 if f in (f0, f_lo) else 0
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
    if best[0] > 0.0 and (unchanged >= 2 or _collapsed(bracket)):
        # rounding (f flat to the last bit) or a gradient inconsistent with f (finite
        # differences: f's minimum along d where g.d is not 0) prevents the curvature test
        # in a bracket that has shrunk to nothing: the best step, a lower f with sufficient
        # decrease, is taken, as SciPy's search takes it (the run's ftol test then ends it
        # where f stops decreasing); where no trial lowered f the search fails
        return best[0], best[1], best[2], evals, True
    if best[0] == 0.0 and rounding.flat is not None and not rounding.resolvable:
        # no trial showed that f can drop by more than its rounding along d: a step where
        # f equals f0 is taken, and the run's ftol test ends the run (SciPy's outcome)
        return (*rounding.flat, evals, True)
    return best[0], best[1], best[2], evals, False


class _Rounding:
    """What one search's trials say about f's rounding along d: the last trial where f
    equals f0 to the last bit, and whether any trial shows that f can drop by more than a
    few ulps (the least of the quadratic through f0, g.d and that trial)."""

    def __init__(self, phi: Callable[[float], tuple[float, float]], f0: float,
                 gtd0: float) -> None:
        self._phi, self.f0, self.gtd0 = phi, f0, gtd0
        self.flat: tuple[float, float, float] | None = None
        self.resolvable = False

    def phi(self, t: float) -> tuple[float, float]:
        f, g = self._phi(t)
        if math.isfinite(f) and math.isfinite(g):
            if f == self.f0:
                self.flat = (t, f, g)
            excess = f - self.f0 - self.gtd0 * t        # above the tangent: curvature
            drop = -self.gtd0 * t if excess <= 0 else (self.gtd0 * t) ** 2 / (4 * excess)
            self.resolvable |= drop > 4 * math.ulp(self.f0)
        return f, g


def _collapsed(bracket: list | None) -> bool:
    """Whether a zoom's bracket has shrunk below a millionth of its steps."""
    if bracket is None:
        return False
    (t_lo, _, _), (t_hi, _, _) = bracket
    return abs(t_hi - t_lo) <= 1e-6 * max(abs(t_lo), abs(t_hi))


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
class NotAScalarError(TypeError, ValueError):
    """f is not a real number: a TypeError, and the ValueError SciPy raises for it."""


def checked_loss(owner: str, what: str, f: Any) -> float:
    """``f`` as a float: a real number (a NumPy scalar or an array of one element
    included, as SciPy and torch take it)."""
    if isinstance(f, np.ndarray) and f.size == 1 or isinstance(f, np.generic):
        f = f.item()
    shape = tuple(getattr(f, "shape", ()))
    if isinstance(f, (bool, complex, str)) or not hasattr(f, "__float__") or \
            math.prod(shape) != 1:
        shape_text = f" of shape {shape}" if shape != () else ""
        raise NotAScalarError(f"{owner}: {what} must be a real number, got "
                              f"{type(f).__name__}{shape_text} {f!r:.60} (The user-provided "
                              f"objective function must return a scalar value.)")
    return float(f)          # a 0-d tensor of torch or JAX too


def pair(owner: str, what: str, out: Any) -> tuple[Any, Any]:
    """(f, g) from what ``fun`` (or a closure) returned, or an error saying what it was."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        got = f"a {type(out).__name__} of {len(out)}" if isinstance(out, (tuple, list)) \
            else type(out).__name__
        raise TypeError(f"{owner}: {what} must return (f, g), the value and the gradient; "
                        f"got {got}")
    return out[0], out[1]


# -- the iteration shared by minimize() and LBFGS ----------------------------------------
class FunStopped(Exception):
    """A StopIteration raised by the user's function, carried past the generators and
    maps that would swallow or convert it; raised again, as it was, at the API."""

    def __init__(self, stop: StopIteration) -> None:
        super().__init__(stop)
        self.stop = stop


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
        self.measure: Callable[[Any, Any], float] = ops.dot   # g_t.d at a trial point
        # absorb(g_t, g): how a trial's gradient g from fun enters g_t (None: a copy)
        self.absorb: Callable[[Any, Any], None] | None = None
        # fresh_copy(): a flat array that the next evaluation hands fun as x (None: the
        # evaluation copies x itself); HostOps only
        self.fresh_copy: Callable[[], Any] | None = getattr(evaluate, "fresh_copy", None) \
            if ops.xp is np else None
        self.f = self._eval_into(self.x, self.g)

    def _eval_into(self, x: Any, g_out: Any) -> float:
        """f(x); the gradient goes into g_out (an array, or a function that takes it)."""
        self.nfev += 1
        try:
            return float(self.evaluate(x, g_out))
        except StopIteration as exc:
            raise FunStopped(exc) from None

    def phi(self, t: float) -> tuple[float, float]:
        """f and g.d at x + t d (kept in the trial buffers; the same t twice in a row is
        evaluated once)."""
        if t == self.t_trial:
            return self.last_trial
        fresh = self.fresh_copy() if self.fresh_copy is not None else None
        if fresh is None:
            self.ops.step(self.x_trial, self.x, t, self.d)
        else:                       # the copy fun gets, written in the same pass
            self.ops.step_copy(self.x_trial, fresh, self.x, t, self.d)
        sink = self.g_trial if self.absorb is None else \
            functools.partial(self.absorb, self.g_trial)
        f = self._eval_into(self.x_trial, sink)
        self.t_trial = t
        gtd = self.measure(self.g_trial, self.d) if math.isfinite(f) else math.nan
        self.last_trial = (f, gtd)
        return f, gtd

    def accept(self, t: float) -> None:
        """Make x + t d the current point (re-evaluated only if it was not the last trial)."""
        if self.t_trial != t:
            self.phi(t)
        self.x, self.x_trial = self.x_trial, self.x
        self.g, self.g_trial = self.g_trial, self.g
        self.t_trial = None

    def set_direction(self, history: History) -> float:
        """d = -H g from the history (forgetting it when that is not a descent
        direction); returns g.d."""
        self.t_trial = None                        # trials along the old d are stale
        history.direction(self.g, self.d)
        gtd = self.ops.dot(self.g, self.d)
        if not gtd < 0:
            history.reset()
            history.direction(self.g, self.d)
            gtd = self.ops.dot(self.g, self.d)
        return gtd


def _iterations(problem: _Problem, history: History, search: Callable, maxls: int,
                lr: float, partial_steps: bool):
    """L-BFGS iterations: yields (f before, step length t, max|g|) after each accepted step;
    ends when the line search finds no decrease even from steepest descent. A search that
    failed but found a lower f is taken with ``partial_steps`` (torch's LBFGS), and
    otherwise treated as no decrease (L-BFGS-B)."""
    while True:
        gtd = problem.set_direction(history)
        # first step from an empty memory: |t d| <= 1, as SciPy (and PyTorch) start
        t0 = lr if history.order or not -gtd > 0 else lr * min(1.0, 1.0 / math.sqrt(-gtd))
        t, f_new, _, _, ok = search(problem.phi, problem.f, gtd, t0, max_evals=maxls)
        if not (ok or partial_steps and t > 0.0) or not f_new <= problem.f:
            if history.order:                # retry once from steepest descent
                history.reset()
                continue
            return
        f_old, x_old, g_old = problem.f, problem.x, problem.g
        problem.accept(t)
        problem.f = f_new
        _, _, gmax = history.push(problem.x, x_old, problem.g, g_old, -t * gtd)
        yield f_old, t, gmax


def _ops_for(backend_name: str, n: int, dtype: np.dtype, method: str = "l-bfgs-b") -> Any:
    """The operations of a resolved backend for ``method`` (a minimize method's key),
    for n elements of ``dtype``."""
    if backend_name == "cupy":
        return kernels.CupyOps(n, dtype)
    return kernels.HostOps(n, dtype, compiled=backend_name == "numba", method=method)


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
        if not isinstance(line_search, str) or line_search not in LINE_SEARCHES:
            raise ValueError(f"{name}: line_search must be one of {sorted(LINE_SEARCHES)}, "
                             f"got {line_search!r}")
        self._search = LINE_SEARCHES[line_search]
        ends = np.cumsum([a.size for a in self._arrays]).tolist()
        self._slices = [slice(end - a.size, end) for a, end in zip(self._arrays, ends)]
        n = ends[-1]
        self._ops = _ops_for(self._backend.name, n, self._arrays[0].dtype)
        self._history = History(self._ops, n, history_size)
        self._layouts = [(a.shape, a.dtype) for a in self._arrays]
        self._labels = ["LBFGS: params"] if self._single else [
            f"LBFGS: params[{i}]" for i in range(len(self._arrays))]
        self._lock, self._running, self._owner = threading.RLock(), False, 0
        self._forked_mid_call = False
        _LIVE.add(self)
        self.n_iter = 0

    def __copy__(self) -> LBFGS:
        raise TypeError("LBFGS: a shallow copy would share params and history but not the "
                        "iteration count; use copy.deepcopy (new params and history)")

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:            # not half-way through another thread's step
            return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.RLock(), _running=False,
                             _forked_mid_call=False)
        _LIVE.add(self)

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
        if not self._single and is_one_array(grads):
            raise TypeError(f"LBFGS: the closure returned one array for grads, but params was "
                            f"given as a list of {len(self._arrays)}; return a list of grads "
                            "like params (e.g. [g])")
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
        """Up to max_iter L-BFGS iterations; returns the loss before them. Calls from
        several threads take turns; a step from inside the closure is an error."""
        if not callable(closure):
            raise TypeError(f"LBFGS.step: closure must be a function returning (loss, grads), "
                            f"got {type(closure).__name__}")
        if self._forked_mid_call:
            raise forked_mid_call_error("LBFGS")
        with self._lock:
            if self._running:
                raise RuntimeError("LBFGS.step was called from inside its own step (by the "
                                   "closure?); a step cannot nest")
            self._running, self._owner = True, threading.get_ident()
            try:
                return self._step(closure)
            finally:
                self._running = False

    def _check_params(self) -> None:
        check_unchanged(self._arrays, self._layouts, self._labels, self._backend.writeable)

    def _step(self, closure: Callable[[], tuple[float, Any]]) -> float:
        self._check_params()
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
        except BaseException as exc:
            # the closure (or a check) failed at a trial point: back to the accepted one
            self._scatter(problem.x if problem is not None else x)
            if isinstance(exc, FunStopped):
                raise exc.stop from None
            raise

    def _iterate(self, problem: _Problem) -> float:
        ops = self._ops
        first_loss = problem.f
        gmax = ops.max_abs(problem.g)
        if not math.isfinite(gmax):
            raise FloatingPointError(f"LBFGS.step: the gradient the closure returned at the "
                                     f"params as they are is not finite (max |g| = {gmax}); "
                                     "nothing was changed")
        if gmax <= self.tolerance_grad:
            return first_loss
        iterations = _iterations(problem, self._history, self._search, 20, lr=self.lr,
                                 partial_steps=True)
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
