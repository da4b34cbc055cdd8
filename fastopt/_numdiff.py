"""Finite-difference gradients for ``minimize(jac=None | False | '2-point' | '3-point' |
'cs')``, with SciPy's steps, so that a SciPy user gets the same gradients and the same
``nfev``.

    jac=None or False    forward, h = eps (absolute; 1e-8)
    '2-point'            forward, h = r sign(x) max(1, |x|)     r = EPS**(1/2)
    '3-point'            central, h = r sign(x) max(1, |x|)     r = EPS**(1/3)
    'cs'                 complex step, g = Im f(x + i h) / h    r = EPS**(1/2)

EPS is the machine epsilon of x's dtype. With ``finite_diff_rel_step`` r given, h = r
sign(x) |x|; a step that vanishes in x + h (x = 0, or a huge x) falls back to the default,
as SciPy does. Each perturbed point is a fresh array of x's kind, made where x lives (on
the GPU for a CuPy x); ``workers(f, points)`` (a map-like callable) evaluates them, by
default one after the other. The values come back to the host, where the differences are
taken: n numbers.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ._result import host_array as host

METHODS = ("2-point", "3-point", "cs")


def relative_step(method: str, dtype: Any) -> float:
    """SciPy's default relative step for ``method`` in ``dtype``."""
    eps = float(np.finfo(dtype).eps)
    return eps ** (1 / 3) if method == "3-point" else eps ** 0.5


def namespace(x: Any) -> Any:
    """numpy, or cupy for a CuPy array."""
    if isinstance(x, np.ndarray) or not hasattr(x, "__cuda_array_interface__"):
        return np
    import cupy
    return cupy


def steps(method: str, x: Any, abs_step: Any = None, rel_step: Any = None) -> Any:
    """The step h per coordinate of x, in x's dtype and where x lives (never one that
    vanishes in x + h)."""
    xp = namespace(x)
    sign = xp.where(x >= 0, 1.0, -1.0)
    default = (relative_step(method, x.dtype) * sign * xp.maximum(1.0, xp.abs(x))
               ).astype(x.dtype)
    if abs_step is not None:
        h = xp.broadcast_to(xp.asarray(host(abs_step), dtype=float), x.shape)
    elif rel_step is not None:
        h = xp.asarray(host(rel_step), dtype=float) * sign * xp.abs(x)
    else:
        return default
    h = h.astype(x.dtype)
    return xp.where((x + h) - x == 0, default, h)


def _forward(x: np.ndarray, h: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(x.size):
        xi = x.copy()
        xi[i] = x[i] + h[i]
        yield xi


def _central(x: np.ndarray, h: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(x.size):
        lo, hi = x.copy(), x.copy()
        lo[i], hi[i] = x[i] - h[i], x[i] + h[i]
        yield lo
        yield hi


def _complex(x: np.ndarray, h: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(x.size):
        xc = x.astype(complex)
        xc[i] += h[i] * 1j
        yield xc


def gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, f0: float, method: str,
             h: np.ndarray, workers: Callable[[Callable, Iterable], Iterable] = map
             ) -> tuple[np.ndarray, int]:
    """(g, evaluations): the finite-difference gradient of f at the flat vector x; for a
    vector-valued f (forward differences only), the (n, m) transposed Jacobian."""
    n = x.size
    if method == "cs":
        values = [complex(v).imag for v in workers(f, _complex(x, h))]
        return np.asarray(values) / host(h), n
    if method == "3-point":
        values = np.asarray([float(v) for v in workers(f, _central(x, h))]).reshape(n, 2)
        dx = host((x + h) - (x - h))
        return (values[:, 1] - values[:, 0]) / dx, 2 * n
    values = np.asarray([host(v).astype(float) for v in workers(f, _forward(x, h))])
    dx = host((x + h) - x)
    return (values - f0) / dx.reshape(-1, *[1] * (values.ndim - 1)), n
