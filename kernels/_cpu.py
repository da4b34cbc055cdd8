"""Numba CPU kernels: each rule's fused loop compiled twice, serial and parallel.

A rule writes its kernel as a plain function over flat arrays whose loop is
``for i in prange(p.size)``: compiled with ``parallel=True`` numba splits that range into
one contiguous chunk per thread; compiled without, it is an ordinary (vectorised) loop.
A step that moves fewer than ``PARALLEL_THRESHOLD_BYTES`` takes the serial kernel, where
waking the threads costs more than the work saves. The crossover follows the bytes a step
moves rather than the element count: on the 2-core development machine the parallel loop
started to win at ~1.2 MB for SGD (12 B/element: ~100k elements), ~0.6 MB for Adagrad
(20 B: ~30k) and ~0.3-0.8 MB for Adam (28 B: 10k-30k), so 1 MiB; ``python
benchmarks/cpu_kernels.py sweep`` measures it again. The thread count is numba's
(``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``).

Compilation options follow the measured rules: arithmetic in the array dtype (scalars are
passed already cast), ``error_model="numpy"`` (no division checks, so loops vectorise),
no fastmath flags (no contraction into FMAs: the loops then round exactly like the NumPy
reference; and no "reassoc": it vectorised the L-BFGS dot products but made their rounding
depend on the arrays' alignment, so the same problem took 220 iterations in one run and 280
in the next; those passes are memory-bound and ran as fast without it), ``cache=True`` and
compilation when an optimizer is constructed, so no step ever waits for the JIT.
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

OPTIONS = dict(error_model="numpy", cache=True, nogil=True)   # fastmath off: see above

PARALLEL_THRESHOLD_BYTES = 1 << 20


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


def serial_and_parallel(fn: Callable, **options) -> tuple[Callable, Callable]:
    """``fn`` compiled by numba twice: a serial and a parallel (prange) dispatcher."""
    if numba is None:
        raise ImportError("the numba backend needs numba: pip install numba")
    opts = dict(OPTIONS, **options)
    return (numba.njit(**opts)(fn),
            numba.njit(parallel=True, **opts)(_renamed(fn, "_parallel")))


class CpuKernel:
    """A rule's loop for one variant (its compile-time flags), compiled serial and parallel.

    ``loop_factory(**flags)`` returns the loop function; the flags are constants of its
    closure, so numba removes the branches a variant does not take.
    """

    def __init__(self, loop_factory: Callable[..., Callable], flags: dict[str, bool],
                 n_arrays: int, n_scalars: int) -> None:
        if numba is None:
            raise ImportError("the numba backend needs numba: pip install numba")
        self.serial, self.parallel = serial_and_parallel(loop_factory(**flags))
        self.n_arrays, self.n_scalars = n_arrays, n_scalars

    def for_array(self, a: np.ndarray, bytes_per_step: int) -> Callable[..., None]:
        """The version for arrays like ``a`` (serial below the threshold), compiled now for
        its dtype, or loaded from numba's on-disk cache, so no step waits for the JIT."""
        parallel = bytes_per_step >= PARALLEL_THRESHOLD_BYTES
        dispatcher = self.parallel if parallel else self.serial
        array = numba.from_dtype(a.dtype)[::1]
        dispatcher.compile(numba.void(*([array] * (self.n_arrays + 1))))  # arrays, scalars
        # One call on scratch arrays primes the dispatcher and starts the thread pool
        # (~10 ms the first time), so the first real step runs at full speed.
        scratch = [np.zeros(1, a.dtype) for _ in range(self.n_arrays)]
        dispatcher(*scratch, np.zeros(self.n_scalars, a.dtype))
        return dispatcher
