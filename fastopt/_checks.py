"""Argument checks shared by every optimizer; each error names the argument, what was
expected and what was given."""
from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Set
from typing import Any

import numpy as np


def _finite(value: Any) -> bool:
    """math.isfinite that says False (not OverflowError) for ints beyond a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def finite(owner: str, name: str, value: Any) -> float:
    """A finite float."""
    if not _is_real(value) or not _finite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    return float(value)


def representable(owner: str, name: str, value: Any, dtype: Any, nonzero: bool = True) -> None:
    """Numbers (alone or in a tuple) within the range of ``dtype``, the params' (float32:
    |x| <= 3.4e38): beyond it the kernels would compute with inf; and, with ``nonzero``
    (a value the user gave), none that is not zero but rounds to zero there (eps=1e-46 is
    0 in float32: a zero grad would then make its param NaN)."""
    dtype = np.dtype(dtype)
    largest = float(np.finfo(dtype).max)
    for v in value if isinstance(value, tuple) else (value,):
        if _is_real(v) and abs(v) > largest:
            raise ValueError(f"{owner}: {name}={value!r} overflows {dtype.name}, the "
                             f"dtype of its params (largest {largest:.3g})")
        if nonzero and _is_real(v) and v != 0 and dtype.type(v) == 0:
            smallest = float(np.finfo(dtype).smallest_subnormal)
            raise ValueError(f"{owner}: {name}={value!r} rounds to 0 in {dtype.name}, the dtype "
                             f"of its params (smallest {smallest:.3g}); give 0 or a "
                             "representable number")


def count(owner: str, name: str, value: Any) -> int:
    """An integer >= 1 (a NumPy integer too; not a bool)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) \
            or value < 1:
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def positive(owner: str, name: str, value: Any) -> float:
    """A finite float > 0."""
    if not _is_real(value) or not _finite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def nonnegative(owner: str, name: str, value: Any) -> float:
    """A finite float >= 0."""
    if not _is_real(value) or not _finite(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def in_unit_interval(owner: str, name: str, value: Any, *, include_one: bool = False) -> float:
    """A float in [0, 1) (or [0, 1] with include_one)."""
    ok = _is_real(value) and 0 <= value and (value <= 1 if include_one else value < 1)
    if not ok:
        interval = "[0, 1]" if include_one else "[0, 1)"
        raise ValueError(f"{owner}: {name} must be a number in {interval}, got {value!r}")
    return float(value)


def _items(owner: str, name: str, value: Any, count: int, what: str) -> tuple:
    """The ``count`` items of an ordered container (a set has no order), or an error
    saying ``name`` must be ``what``."""
    if not isinstance(value, (Set, Mapping)):
        try:
            items = tuple(itertools.islice(value, count + 1))   # (an endless iterator too)
        except TypeError:
            items = ()
        if len(items) == count:
            return items
    raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")


def betas(owner: str, name: str, value: Any) -> tuple[float, float]:
    """A pair (b1, b2), each in [0, 1), in an ordered container."""
    b1, b2 = _items(owner, name, value, 2, "a pair (beta1, beta2) of numbers in [0, 1)")
    return (in_unit_interval(owner, f"{name}[0]", b1), in_unit_interval(owner, f"{name}[1]", b2))


def betas3(owner: str, name: str, value: Any) -> tuple[float, float, float]:
    """A triple (b1, b2, b3), each in [0, 1), in an ordered container (AdEMAMix's)."""
    items = _items(owner, name, value, 3, "a triple (beta1, beta2, beta3) of numbers in [0, 1)")
    return tuple(in_unit_interval(owner, f"{name}[{k}]", b) for k, b in enumerate(items))


def choice(owner: str, name: str, value: Any, allowed: tuple) -> Any:
    """One of ``allowed``."""
    if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
        raise ValueError(f"{owner}: {name} must be one of {allowed}, got {value!r}")
    return value


def triple(owner: str, name: str, value: Any) -> tuple[float, float, float]:
    """Three finite numbers in an ordered container (Muon's Newton-Schulz coefficients)."""
    items = _items(owner, name, value, 3, "a triple (a, b, c) of finite numbers")
    return tuple(finite(owner, f"{name}[{k}]", x) for k, x in enumerate(items))


def iterations(owner: str, name: str, value: Any) -> int:
    """An integer in [0, 100) (Muon's Newton-Schulz steps; torch's bound)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) \
            or not 0 <= value < 100:
        raise ValueError(f"{owner}: {name} must be an integer in [0, 100), got {value!r}")
    return int(value)


def _pair(owner: str, name: str, value: Any, what: str) -> tuple[float, float]:
    """Two finite numbers in an ordered container."""
    a, b = _items(owner, name, value, 2, f"a pair {what}")
    if not (_is_real(a) and _is_real(b) and _finite(a) and _finite(b)):
        raise ValueError(f"{owner}: {name} must be a pair {what}, got {value!r}")
    return float(a), float(b)


def etas(owner: str, name: str, value: Any) -> tuple[float, float]:
    """Rprop's (etaminus, etaplus): 0 < etaminus < 1 < etaplus."""
    what = "(etaminus, etaplus) with 0 < etaminus < 1 < etaplus"
    minus, plus = _pair(owner, name, value, what)
    if not 0 < minus < 1 < plus:
        raise ValueError(f"{owner}: {name} must be a pair {what}, got {value!r}")
    return minus, plus


def step_sizes(owner: str, name: str, value: Any) -> tuple[float, float]:
    """Rprop's (smallest, largest) step size: 0 <= smallest <= largest."""
    what = "(smallest, largest) step size with 0 <= smallest <= largest"
    low, high = _pair(owner, name, value, what)
    if not 0 <= low <= high:
        raise ValueError(f"{owner}: {name} must be a pair {what}, got {value!r}")
    return low, high


def boolean(owner: str, name: str, value: Any) -> bool:
    """True or False (NumPy's np.True_ and np.False_, or 0 and 1, too)."""
    if isinstance(value, np.bool_):
        value = value.item()
    if not isinstance(value, (bool, numbers.Integral)) or value not in (0, 1):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def learning_rate(owner: str, value: Any, step: int | None = None) -> float:
    """A learning rate: finite and >= 0 (``step`` names the step of a schedule's value)."""
    where = "lr" if step is None else f"lr schedule at step {step}"
    if not _is_real(value) or not _finite(value) or value < 0:
        raise ValueError(f"{owner}: {where} must be a finite number >= 0, got {value!r}")
    return float(value)


def optional_positive(owner: str, name: str, value: Any) -> float | None:
    """None, or a finite float > 0."""
    return None if value is None else positive(owner, name, value)


def optional_nonnegative(owner: str, name: str, value: Any) -> float | None:
    """None, or a finite float >= 0."""
    return None if value is None else nonnegative(owner, name, value)


def nonpositive(owner: str, name: str, value: Any) -> float:
    """A finite float <= 0."""
    value = finite(owner, name, value)
    if value > 0:
        raise ValueError(f"{owner}: {name} must be <= 0, got {value!r}")
    return value


def at_least_one(owner: str, name: str, value: Any) -> float:
    """A finite float >= 1."""
    value = finite(owner, name, value)
    if value < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {value!r}")
    return value


def eps_pair(owner: str, name: str, value: Any) -> tuple[float | None, float]:
    """Adafactor's (eps1, eps2): eps1 None or >= 0, eps2 >= 0, both finite."""
    eps1, eps2 = _items(owner, name, value, 2,
                        "a pair (eps1, eps2) of numbers >= 0, eps1 possibly None")
    return optional_nonnegative(owner, f"{name}[0]", eps1), nonnegative(owner, f"{name}[1]", eps2)


def unit_interval_closed(owner: str, name: str, value: Any) -> float:
    """A float in [0, 1]."""
    return in_unit_interval(owner, name, value, include_one=True)


def is_live(value: Any) -> bool:
    """A 0-d array or tensor (NumPy, torch): a number whose value may change between
    steps, read at each step."""
    return not isinstance(value, np.generic) and getattr(value, "ndim", None) == 0 \
        and hasattr(value, "item")


def learning_rate_or_schedule(owner: str, name: str, value: Any) -> Any:
    """A schedule (any callable t -> lr, checked at each step), a live lr (a 0-d array or
    tensor, as torch allows; its value checked now and at each step) or a learning rate."""
    if callable(value):
        return value
    if is_live(value):
        learning_rate(owner, value.item())
        return value
    return learning_rate(owner, value)
