"""``fastopt.LBFGS``: L-BFGS as a stateful optimizer for full-batch training loops
(PyTorch's interface), over fastopt's L-BFGS solver (``fastopt.solvers.lbfgs``).
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable

import numpy as np

from . import _checks
from .backends import check_unchanged
from .groups import is_one_array
from ._state_dict import plain, whole_number
from .optimizer import _LIVE, checked_params, forked_mid_call, forked_mid_call_error
from .solvers.lbfgs import History, iterations, ops_for
from .solvers.linesearch import LINE_SEARCHES
from .solvers.problem import FunStopped, Problem, checked_loss, pair

SETTINGS = {"lr": _checks.positive, "max_iter": _checks.count,
            "tolerance_grad": _checks.nonnegative, "tolerance_change": _checks.nonnegative}
_HISTORY = ("history.s", "history.y", "history.rho", "history.gamma")
_NUMBERS = ("rule", "n", "history_size", "line_search", "n_iter", *SETTINGS, "history.gamma")


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
        self._search, self._search_name = LINE_SEARCHES[line_search], line_search
        ends = np.cumsum([a.size for a in self._arrays]).tolist()
        self._slices = [slice(end - a.size, end) for a, end in zip(self._arrays, ends)]
        n = ends[-1]
        self._ops = ops_for(self._backend.name, n, self._arrays[0].dtype, lasting=True)
        self._history = History(self._ops, n, history_size)
        self._layouts = [(a.shape, a.dtype) for a in self._arrays]
        self._labels = ["LBFGS: params"] if self._single else [
            f"LBFGS: params[{i}]" for i in range(len(self._arrays))]
        self._lock, self._running, self._owner = threading.RLock(), False, 0
        self._forked_mid_call = False
        _LIVE.add(self)
        self.n_iter = 0

    def _after_fork(self) -> None:
        """In a forked child (optimizer.py's hook): a fresh lock; caught inside another
        thread's step, the next step is refused."""
        self._forked_mid_call = forked_mid_call(self._running, self._owner)
        self._lock = threading.RLock()

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

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The settings, the iteration count and the (s, y) history, oldest pair first
        (``history.s``, ``history.y``: (pairs, n) arrays; ``history.rho`` = 1/s.y;
        ``history.gamma``): numbers, strings and NumPy arrays, so ``np.savez`` and
        ``np.load`` round-trip it without pickling."""
        with self._lock:
            h = self._history
            rows = np.asarray(h.order, np.int64)
            return {"rule": "LBFGS", "n": self._slices[-1].stop,
                    "history_size": h.m, "line_search": self._search_name,
                    **{name: getattr(self, name) for name in SETTINGS}, "n_iter": self.n_iter,
                    "history.s": self._backend.to_numpy(h.S[rows]),
                    "history.y": self._backend.to_numpy(h.Y[rows]),
                    "history.rho": h.rho[rows].copy(), "history.gamma": float(h.gamma)}

    def load_state_dict(self, state_dict: Any) -> None:
        """Restore a ``state_dict()`` of an LBFGS over as many elements in the same dtype
        (up to this optimizer's history_size pairs): every check first, then every change."""
        owner = "LBFGS.load_state_dict"
        sd = {k: plain(v) if k in _NUMBERS else v for k, v in dict(state_dict).items()}
        missing = sorted({"rule", "n", "line_search", "n_iter", *SETTINGS, *_HISTORY} - set(sd))
        if sd.get("rule") != "LBFGS" or missing:
            raise ValueError(f"{owner}: not an LBFGS state_dict (rule {sd.get('rule')!r}, "
                             f"missing {missing})")
        n, dtype, m = self._slices[-1].stop, self._arrays[0].dtype, self._history.m
        if sd["n"] != n:
            raise ValueError(f"{owner}: the state_dict is for {sd['n']} elements, these "
                             f"params hold {n}")
        settings = {name: check(owner, name, sd[name]) for name, check in SETTINGS.items()}
        if sd["line_search"] not in LINE_SEARCHES:
            raise ValueError(f"{owner}: line_search {sd['line_search']!r} is not one of "
                             f"{sorted(LINE_SEARCHES)}")
        n_iter = whole_number(owner, "n_iter", sd["n_iter"])
        s, y, rho = (np.asarray(sd[k]) for k in _HISTORY[:3])
        k = len(rho)
        if s.shape != (k, n) or y.shape != (k, n) or s.dtype != dtype or y.dtype != dtype:
            raise ValueError(f"{owner}: history.s and history.y must be ({k}, {n}) arrays of "
                             f"{dtype}, got {s.shape} {s.dtype} and {y.shape} {y.dtype}")
        if k > m:
            raise ValueError(f"{owner}: the state_dict holds {k} pairs, this optimizer keeps "
                             f"{m} (history_size)")
        gamma = _checks.positive(owner, "history.gamma", sd["history.gamma"])
        if not (np.all(np.isfinite(rho)) and np.all(rho > 0)):
            raise ValueError(f"{owner}: history.rho must be finite and > 0 (1/s.y of pairs "
                             f"that passed the curvature test), got {rho}")
        with self._lock:
            if self._running:
                raise RuntimeError(f"{owner} was called from inside a step (by the closure?)")
            h = self._history
            for row in range(k):
                self._backend.copy_from_numpy(h.S[row], s[row])
                self._backend.copy_from_numpy(h.Y[row], y[row])
            h.rho[:k], h.order, h.gamma = rho, list(range(k)), gamma
            for name, value in settings.items():
                object.__setattr__(self, name, value)
            self._search_name = sd["line_search"]
            self._search = LINE_SEARCHES[self._search_name]
            self.n_iter = n_iter

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
            problem = Problem(evaluate, x, ops)
            return self._iterate(problem)
        except BaseException as exc:
            # the closure (or a check) failed at a trial point: back to the accepted one
            self._scatter(problem.x if problem is not None else x)
            if isinstance(exc, FunStopped):
                raise exc.stop from None
            raise

    def _iterate(self, problem: Problem) -> float:
        ops = self._ops
        first_loss = problem.f
        gmax = ops.max_abs(problem.g)
        if not math.isfinite(gmax):
            raise FloatingPointError(f"LBFGS.step: the gradient the closure returned at the "
                                     f"params as they are is not finite (max |g| = {gmax}); "
                                     "nothing was changed")
        if gmax <= self.tolerance_grad:
            return first_loss
        steps = iterations(problem, self._history, self._search, 20, lr=self.lr,
                           partial_steps=True)
        for _ in range(self.max_iter):
            step = next(steps, None)
            if step is None:
                break
            f_old, t, gmax = step
            self.n_iter += 1
            if (gmax <= self.tolerance_grad or abs(problem.f - f_old) < self.tolerance_change
                    or t * ops.max_abs(problem.d) <= self.tolerance_change):
                break
        self._scatter(problem.x)
        return first_loss
