"""Line searches on host scalars: ``phi(t)`` gives f and g.d at x + t d, and the search
returns (t, f, g.d, evaluations, success). Every method's loop calls one of these;
``fastopt.torch.LBFGS`` calls ``lswolfe``, torch.optim.LBFGS's search.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np


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


def lswolfe(phi: Callable[[float], tuple[float, float, Any]], f0: float, gtd0: float,
            g0: Any, t: float, d_max: float, c1: float = 1e-4, c2: float = 0.9,
            tolerance_change: float = 1e-9, max_evals: int = 25) -> tuple[float, float, Any, int]:
    """torch.optim.LBFGS's strong-Wolfe search (minFunc's lswolfe by way of torch7), step
    for step: bracket by cubic extrapolation within [t + 0.01 (t - t_prev), 10 t], then
    zoom by cubic interpolation, moved 0.1 of the bracket in from an end after a step
    that made too little progress, until |bracket| max|d| < tolerance_change.

    ``phi(t)`` returns (f, g.d, g) at x + t d, where g, the gradient, is carried with its
    point and never looked into. Returns (t, f, g, evaluations) of the bracket's lower end
    (``max_evals`` counts the trials after the first, as torch's ``max_ls``). Give g.d
    and max|d| as NumPy float32 scalars for float32 params: the tests then run in float32,
    as torch's do on its 0-d tensors.
    """
    new = (t, *phi(t))
    prev = (0, f0, gtd0, g0)
    tries, bracket = 0, None
    while tries < max_evals:
        t, f, gtd, _ = new
        if f > f0 + c1 * t * gtd0 or (tries > 1 and f >= prev[1]):
            bracket = [prev, new]
            break
        if abs(gtd) <= -c2 * gtd0:
            return t, f, new[3], tries + 1
        if gtd >= 0:
            bracket = [prev, new]
            break
        t_next = _torch_cubic(prev[0], prev[1], prev[2], t, f, gtd,
                              bounds=(t + 0.01 * (t - prev[0]), t * 10))
        prev, new = new, (t_next, *phi(t_next))
        tries += 1
    if bracket is None:                        # out of evaluations while extrapolating
        bracket = [(0, f0, gtd0, g0), new]
    low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
    insufficient = False
    while tries < max_evals and not abs(bracket[1][0] - bracket[0][0]) * d_max < \
            tolerance_change:
        (t1, f1, gtd1, _), (t2, f2, gtd2, _) = bracket
        t = _torch_cubic(t1, f1, gtd1, t2, f2, gtd2)
        top, bottom = max(t1, t2), min(t1, t2)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:   # near an end: move in after a second time
            if insufficient or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        new = (t, *phi(t))
        tries += 1
        _, f, gtd, _ = new
        if f > f0 + c1 * t * gtd0 or f >= bracket[low][1]:
            bracket[high] = new
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
            continue
        wolfe = abs(gtd) <= -c2 * gtd0
        if not wolfe and gtd * (bracket[high][0] - bracket[low][0]) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = new
        if wolfe:
            break
    t, f, _, g = bracket[low]
    return t, f, g, tries + 1


def _torch_cubic(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                 bounds: tuple[float, float] | None = None) -> float:
    """torch's ``_cubic_interpolate``: the cubic's minimiser through (x1, f1, g1) and
    (x2, f2, g2) clipped to ``bounds`` (the points' span by default), or the bounds'
    midpoint; IEEE arithmetic where a denominator is 0, as torch's tensors give it."""
    lo, hi = bounds if bounds is not None else (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - _divide(3 * (f1 - f2), x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if not d2_square >= 0:
        return (lo + hi) / 2.0
    d2 = np.sqrt(d2_square) if isinstance(d2_square, np.floating) else math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * _divide(g2 + d2 - d1, g2 - g1 + 2 * d2)
    else:
        min_pos = x1 - (x1 - x2) * _divide(g1 + d2 - d1, g1 - g2 + 2 * d2)
    return min(max(min_pos, lo), hi)


def _divide(a: float, b: float) -> float:
    """a / b with IEEE's inf and nan for b = 0 (Python's floats raise)."""
    if b != 0:
        return a / b
    if a != a or a == 0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


LINE_SEARCHES = {"strong_wolfe": strong_wolfe, "armijo": armijo}
