"""The evaluation state every method shares: x, f, g, the search direction d and the
trial buffers of the line search, on the backend's device; and what the user's function
may return.

A method changes how a trial point is taken in through declared hooks, never by patching
the problem: ``Problem(..., trial=hooks)`` or ``problem.trial = hooks`` with an object
that has ``absorb(g_t, g)`` (the gradient fun returned, into the trial buffer g_t) and
``measure(g_t, d)`` (g_t.d); and ``fresh_copy()``, the array the next evaluation hands
fun as its x, which the trial pass then writes (host arrays only).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Protocol

import numpy as np

EPS = float(np.finfo(np.float64).eps)


class FunStopped(Exception):
    """A StopIteration raised by the user's function, carried past the generators and
    maps that would swallow or convert it; raised again, as it was, at the API."""

    def __init__(self, stop: StopIteration) -> None:
        super().__init__(stop)
        self.stop = stop


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


class TrialHooks(Protocol):
    """How a method takes in the gradient at a trial point (CG: with its dot products
    in the same pass)."""

    def absorb(self, g_t: Any, g: Any) -> None:
        """The gradient ``g`` fun returned into the trial buffer ``g_t``."""

    def measure(self, g_t: Any, d: Any) -> float:
        """g_t.d, the directional derivative at the trial point."""


class Problem:
    """The evaluation state of one run: x, its gradient, and trial buffers for the line
    search, all on the backend's device; counts evaluations."""

    def __init__(self, evaluate: Callable[[Any, Any], float], x: Any, ops: Any, *,
                 fresh_copy: Callable[[], Any] | None = None,
                 trial: TrialHooks | None = None) -> None:
        """``evaluate(x, g_out)`` returns f(x) and writes the gradient into ``g_out`` (an
        array, or a function that takes it); ``fresh_copy`` and ``trial``: the hooks
        above."""
        self.evaluate, self.ops = evaluate, ops
        self.fresh_copy = fresh_copy if ops.xp is np else None
        self.trial = trial
        self.x, self.g = x, ops.zeros(x.shape)
        self.x_trial, self.g_trial = ops.zeros(x.shape), ops.zeros(x.shape)
        self.d = ops.zeros(x.shape)
        self.nfev = 0
        self.t_trial: float | None = None
        self.last_trial = (math.nan, math.nan)
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
        trial, g_t = self.trial, self.g_trial
        f = self._eval_into(self.x_trial, g_t if trial is None else
                            lambda g: trial.absorb(g_t, g))
        self.t_trial = t
        gtd = math.nan if not math.isfinite(f) else \
            self.ops.dot(g_t, self.d) if trial is None else trial.measure(g_t, self.d)
        self.last_trial = (f, gtd)
        return f, gtd

    def accept(self, t: float) -> None:
        """Make x + t d the current point (re-evaluated only if it was not the last trial)."""
        if self.t_trial != t:
            self.phi(t)
        self.x, self.x_trial = self.x_trial, self.x
        self.g, self.g_trial = self.g_trial, self.g
        self.t_trial = None
