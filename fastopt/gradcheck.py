"""Gradient checking with SciPy's signatures: ``approx_fprime`` and ``check_grad``.

    approx_fprime(xk, f, epsilon, *args)   forward differences (f(x + h e_i) - f(x)) / h
    check_grad(func, grad, x0, *args)      || grad(x0) - approx_fprime(x0, func) ||_2

The steps are SciPy's (``epsilon`` absolute, a step that vanishes in x + h replaced by
SciPy's relative one), so the numbers are SciPy's; SciPy itself is not needed. x may be
a CuPy array: f then gets CuPy points, made on the GPU, and the gradient is a CuPy
array. ``minimize``'s finite-difference ``jac`` options run the same code
(``fastopt._numdiff``).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _numdiff

EPSILON = float(np.sqrt(np.finfo(np.float64).eps))


def approx_fprime(xk: Any, f: Callable, epsilon: Any = EPSILON, *args: Any) -> Any:
    """The forward-difference gradient of a scalar ``f(x, *args)`` at ``xk`` (shape (n,)),
    or the Jacobian (m, n) of a vector-valued one; ``epsilon``: one step or one per
    coordinate. NumPy in, NumPy out; CuPy in, CuPy out."""
    xp = _numdiff.namespace(xk)
    x = xp.atleast_1d(xp.asarray(xk, dtype=float))
    if x.ndim > 1:
        raise ValueError(f"approx_fprime: x0 must have at most 1 dimension, got shape {x.shape}")

    def values(v: Any) -> np.ndarray:
        return np.atleast_1d(_numdiff.host(f(v, *args)).astype(float))
    f0 = values(x)
    if f0.ndim > 1:
        raise ValueError(f"approx_fprime: f must return a scalar or a 1-d array, got shape "
                         f"{f0.shape}")
    h = _numdiff.steps("2-point", x, abs_step=np.broadcast_to(epsilon, x.shape))
    rows, _ = _numdiff.gradient(values, x, f0, "2-point", h)
    jac = rows.reshape(x.size, f0.size).T
    return xp.asarray(jac[0] if f0.size == 1 else jac)


def check_grad(func: Callable, grad: Callable, x0: Any, *args: Any, epsilon: Any = EPSILON,
               direction: str = "all", rng: Any = None, seed: Any = None) -> float:
    """The 2-norm of ``grad(x0, *args)`` minus ``func``'s forward-difference gradient (0 for
    a right gradient, up to the differences' error, ~sqrt(eps) times the scale).
    ``direction="random"`` compares the two along one random direction instead (``rng``: a
    seed or a numpy Generator; SciPy's legacy ``seed``: a seed or RandomState), a single
    extra evaluation of func."""
    xp = _numdiff.namespace(x0)
    x0 = xp.asarray(x0, dtype=float)
    if direction == "all":
        analytical, numerical = grad(x0, *args), approx_fprime(x0, func, epsilon, *args)
    elif direction == "random":
        analytical = xp.asarray(grad(x0, *args))
        if analytical.ndim > 1:
            raise ValueError("check_grad: direction='random' needs a scalar-valued func")
        if seed is not None and rng is None:       # SciPy's legacy keyword: RandomState
            state = seed if isinstance(seed, np.random.RandomState) else \
                np.random.RandomState(seed)
            v = state.standard_normal(size=x0.shape)
        else:
            v = np.random.default_rng(rng).standard_normal(size=x0.shape)
        v = xp.asarray(v)
        analytical = xp.dot(analytical, v)
        numerical = approx_fprime(xp.zeros(1), lambda w: func(x0 + w * v, *args), epsilon)
    else:
        raise ValueError(f"check_grad: direction must be 'all' or 'random', got {direction!r}")
    analytical, numerical = _numdiff.host(analytical), _numdiff.host(numerical)
    if direction == "all" and np.shape(analytical) != np.shape(numerical):
        raise ValueError(f"check_grad: grad(x0) has shape {np.shape(analytical)}; func's "
                         f"finite-difference gradient at x0 has {np.shape(numerical)}")
    difference = analytical - numerical
    return float(np.sqrt(np.sum(np.abs(difference) ** 2)))
