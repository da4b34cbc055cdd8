"""Numba CPU kernels: each rule's fused loop compiled twice, serial and parallel.

A rule writes its kernel as a plain function over flat arrays whose loop is
``for i in prange(p.size)``: compiled with ``parallel=True`` numba splits that range into
one contiguous chunk per thread; compiled without, it is an ordinary (vectorised) loop.
Arrays below ``PARALLEL_THRESHOLD`` elements take the serial kernel, where starting the
threads would cost more than the work (measured: benchmarks/sweep_numba.py).

Compilation options follow the measured rules: arithmetic in the array dtype (scalars are
passed already cast), ``error_model="numpy"`` (no division checks, so loops vectorise),
fastmath flags that keep NaN and Inf semantics (no ``nnan``/``ninf``/``afn``), ``cache=True``
and compilation when an optimizer is constructed, so no step ever waits for the JIT.
"""
from __future__ import annotations

import types
from typing import Callable

import numpy as np

try:
    import numba
    from numba import prange
except ImportError:  # the numba backend is optional; the rule modules still import
    numba = None
    prange = range

FASTMATH = frozenset()
OPTIONS = dict(fastmath=set(FASTMATH), error_model="numpy", cache=True, nogil=True)

PARALLEL_THRESHOLD = 1 << 16


def scalar_helper(fn: Callable) -> Callable:
    """A small scalar function the kernels call (compiled by numba when it is present)."""
    return numba.njit(**OPTIONS)(fn) if numba is not None else fn


@scalar_helper
def nan_max(a, b):
    """max(a, b) that propagates NaN from either side, as numpy.maximum does."""
    return a if (a >= b or a != a) else b


def _renamed(fn: Callable, suffix: str) -> Callable:
    """A copy of ``fn`` under another qualified name, so numba caches it separately."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                               fn.__defaults__, fn.__closure__)
    clone.__qualname__ = fn.__qualname__ + suffix
    clone.__module__ = fn.__module__
    clone.__doc__ = fn.__doc__
    return clone


class CpuKernel:
    """A rule's loop for one variant (its compile-time flags), compiled serial and parallel.

    ``loop_factory(**flags)`` returns the loop function; the flags are constants of its
    closure, so numba removes the branches a variant does not take.
    """

    def __init__(self, loop_factory: Callable[..., Callable], flags: dict[str, bool],
                 n_arrays: int) -> None:
        if numba is None:
            raise ImportError("the numba backend needs numba: pip install numba")
        loop = loop_factory(**flags)
        self.serial = numba.njit(**OPTIONS)(loop)
        self.parallel = numba.njit(parallel=True, **OPTIONS)(_renamed(loop, "_parallel"))
        self.n_arrays = n_arrays

    def compile(self, dtype: np.dtype) -> None:
        """Compile (or load from numba's on-disk cache) both versions for ``dtype``."""
        array = numba.from_dtype(np.dtype(dtype))[::1]
        sig = numba.void(*([array] * (self.n_arrays + 1)))      # the arrays, then the scalars
        self.serial.compile(sig)
        self.parallel.compile(sig)

    def for_size(self, n: int) -> Callable[..., None]:
        """The version to call on arrays of ``n`` elements."""
        return self.parallel if n >= PARALLEL_THRESHOLD else self.serial
