"""The options methods share, each with its check (errors as ``minimize`` names them):
a method module builds its table from these and its own."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import _checks
from .method import Option

EPSILON = math.sqrt(np.finfo(float).eps)     # SciPy's finite-difference step for CG, BFGS, ...


def limit(name: str, value: Any) -> float | None:
    """maxfun: any number >= 0, as SciPy takes (100.1 and inf included); maxiter: any
    number, one <= 0 stopping before the first iteration (status 1), as SciPy's does, or
    None (200 n)."""
    least = -math.inf if name.endswith("maxiter") else 0.0
    if value is None and least < 0:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not value >= least:
        raise ValueError(f"minimize: {name} must be a number{' >= 0' if least == 0 else ''}, "
                         f"got {value!r}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    """c1, c2: a number strictly between 0 and 1 (SciPy's words in the error)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not 0 < value < 1:
        raise ValueError(f"minimize: {name} must be a number in (0, 1), got {value!r} ('c1' "
                         f"and 'c2' do not satisfy '0 < c1 < c2 < 1')")
    return float(value)


def norm_order(name: str, value: Any) -> float:
    """norm: the order of SciPy's vecnorm, a number other than 0 (inf: max|g|)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or math.isnan(value) or value == 0:
        raise ValueError(f"minimize: {name} must be a nonzero number (inf: max|g|), got "
                         f"{value!r}")
    return float(value)


def one_of(choices: tuple) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"minimize: {name} must be one of {list(choices)}, got {value!r}")
        return value
    return check


def flag(name: str, value: Any) -> bool:
    """True or False (None is False, as SciPy takes it)."""
    return False if value is None else _checks.boolean("minimize", name, value)


def display(name: str, value: Any) -> bool:
    """disp: SciPy takes None or verbosity levels (any integer), and True or False."""
    if value is None or isinstance(value, (int, np.integer)):
        return bool(value)
    return _checks.boolean("minimize", name, value)


def workers_check(name: str, value: Any) -> Any:
    """workers: a map-like callable, a number of processes >= 1, -1 (all cores) or None."""
    if not (value is None or callable(value) or isinstance(value, (int, np.integer))
            and not isinstance(value, bool) and (value >= 1 or value == -1)):
        raise ValueError(f"minimize: {name} must be a map-like callable, a number of "
                         f"processes >= 1, or -1 (all cores); got {value!r}")
    return value


def _on_minimize(check: Callable) -> Callable[[str, Any], Any]:
    return lambda name, value: check("minimize", name, value)


count, nonnegative = _on_minimize(_checks.count), _on_minimize(_checks.nonnegative)
positive = _on_minimize(_checks.positive)


def dtype_step(dtype: np.dtype) -> float:
    """The finite-difference step x's dtype can take: sqrt of its machine epsilon."""
    return math.sqrt(np.finfo(dtype).eps)


MAXITER = Option(None, limit)                 # None: 200 n
DISP = Option(False, display)
WORKERS = Option(None, workers_check)
FINITE_DIFF_REL_STEP = Option(None)           # checked against x's shape (minimize)
C1 = Option(1e-4, fraction)
MAXLS = Option(20, count)
RETURN_ALL = Option(False, flag)
# the options of SciPy's gradient methods (CG, BFGS, Newton): eps follows x's dtype
GRADIENT = dict(maxiter=MAXITER, disp=DISP, return_all=RETURN_ALL,
                gtol=Option(1e-5, nonnegative), norm=Option(math.inf, norm_order),
                eps=Option(EPSILON, None, dtype_step),
                finite_diff_rel_step=FINITE_DIFF_REL_STEP, workers=WORKERS, c1=C1, maxls=MAXLS)

# What each option does, for the API reference (docs/_ext/fastopt_docs.py); a method's
# table takes its defaults from its own Option records. tests/test_methods.py checks that
# every option of every method is here.
OPTION_DOCS = {
    "maxiter": "the most iterations (any number; None: 200 n); status 1 when reached",
    "maxfun": "the most evaluations of fun, checked between iterations (any number >= 0)",
    "history_size": "the (s, y) pairs kept (SciPy's ``maxcor``, accepted too)",
    "gtol": "stop when the gradient's norm (of order ``norm``; L-BFGS-B: max|g_i|) is at "
            "most this",
    "ftol": "stop when (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol",
    "xtol": "stop when the step's sum|x_k+1 - x_k| is at most n xtol",
    "xrtol": "stop when the step's norm is at most xrtol (xrtol + |x|) (0: never)",
    "norm": "the order of the gradient's norm for ``gtol`` (inf: max|g|)",
    "maxls": "the most line-search trials an iteration",
    "line_search": '``"strong_wolfe"`` (c1 = 1e-4, c2 = 0.9, cubic interpolation) or '
                   '``"armijo"``',
    "c1": "the line search's sufficient-decrease constant, in (0, c2)",
    "c2": "the line search's curvature constant, in (c1, 1) (CG: 0.1, SciPy's 0.4)",
    "disp": "print a summary at the end (None, a level, or a bool)",
    "return_all": "keep every iterate in ``res.allvecs``",
    "eps": "the finite-difference step when ``jac`` is not given (absolute)",
    "finite_diff_rel_step": 'the relative step of ``jac="2-point"``, ``"3-point"`` or '
                            '``"cs"`` (None: SciPy\'s)',
    "workers": "evaluate finite-difference points with this map-like callable, or this "
               "many processes (-1: all cores)",
    "variant": '``"PR+"`` (Polak-Ribiere+), ``"FR"`` (Fletcher-Reeves) or ``"HS"`` '
               "(Hestenes-Stiefel)",
    "hess_inv0": "the first inverse Hessian (an (n, n) array; None: s.y / y.y times I)",
    "damping": "the Levenberg damping's scale when the Hessian is not positive definite "
               "(mu = damping * max(1, max|H_ii|), raised tenfold until Cholesky succeeds)",
}
