"""Numba CPU kernels: the loops around each rule's element body, compiled serial and parallel.

A rule gives ``cpu_element(i, p, g, state, s, flags)``, the update of element ``i``; this
module owns the loops that run it. ``_loop`` is one ``for i in prange(p.size)``: compiled
with ``parallel=True`` numba splits that range into one contiguous chunk per thread;
compiled without, it is an ordinary (vectorised) loop. Each rule variant gets its own copy
of ``_loop`` whose globals bind ``ELEMENT`` (the rule's body), ``FLAGS`` (the variant's
compile-time flags) and ``N_SCALARS``: numba freezes globals as constants, LLVM inlines the
body and folds the flags, so a variant's disabled branches and unused state vanish.
Measured on the 2-core machine against the hand-written per-rule loops this replaced, in
one process, interleaved: every rule within 2.5% at 1e3, 1e5 and 1e7 float32,
bit-identical. A cold compile of one variant costs ~0.1 s more than the hand-written loop
did (0.34 s against 0.23 s serial; parallel 0.46 s, level), because the body is compiled as
a function of its own first; building it without Python wrappers saved 0.05-0.09 s of
that. numba's ``inline="always"`` would splice the body into the loop's IR instead, but its
parallel loops then no longer matched the reference bit for bit, and Adamax ran 2.6x slower
at 1e3, so it is not used.

A step that moves fewer than ``PARALLEL_THRESHOLD_BYTES`` takes the serial loop, where
waking the threads costs more than the work saves. The crossover follows the bytes a step
moves rather than the element count: on the 2-core development machine the parallel loop
started to win at ~1.2 MB for SGD (12 B/element: ~100k elements), ~0.6 MB for Adagrad
(20 B: ~30k) and ~0.3-0.8 MB for Adam (28 B: 10k-30k), so 1 MiB; ``pytest
benchmarks/quick --benchmark-only -k serial_vs_parallel`` measures it again. The thread
count is numba's (``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``).

Compilation options follow the measured rules: arithmetic in the array dtype (scalars are
passed already cast), ``error_model="numpy"`` (no division checks, so loops vectorise),
no fastmath flags (no contraction into FMAs: the loops then round exactly like the NumPy
reference; and no "reassoc": it vectorised the L-BFGS dot products but made their rounding
depend on the arrays' alignment, so the same problem took 220 iterations in one run and 280
in the next; those passes are memory-bound and ran as fast without it), ``cache=True`` and
compilation when an optimizer is constructed, so no step ever waits for the JIT.
"""
from __future__ import annotations

import hashlib
import inspect
import types
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

try:
    import numba
    from numba import prange
    from numba.np.unsafe.ndarray import to_fixed_tuple
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
    """numpy.maximum(a, b): NaN from either side propagates, and a tie (-0.0 vs +0.0)
    gives b, as NumPy gives on x86-64 (SSE/AVX max semantics)."""
    return a if (a > b or a != a) else b


def sign(x):
    """numpy.sign for the kernels: 1, -1, +0.0 for either zero, NaN for NaN, in x's dtype.
    (numba's own np.sign returns -0.0 for -0.0, and float64 literals would promote
    float32 math.)"""
    return np.sign(x)


if numba is not None:
    @numba.extending.overload(sign, jit_options=OPTIONS)
    def _sign_in_dtype(x):
        one = numba.np.numpy_support.as_dtype(x).type(1)
        zero = one - one

        def impl(x):
            return one if x > 0 else (-one if x < 0 else (zero if x == 0 else x))
        return impl


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


def _loop(p, g, state, scalars):
    """One pass of a rule's element body over flat arrays (cloned per variant; see above)."""
    s = to_fixed_tuple(scalars, N_SCALARS)  # noqa: F821 (bound per clone)
    for i in prange(p.size):
        ELEMENT(i, p, g, state, s, FLAGS)  # noqa: F821


def _fingerprint(fn: Callable) -> str:
    """A short hash of the source file that defines ``fn``: numba's cache checks only the
    loop's own file, so a change to a rule's module must change the cached loop's name.
    (An element body may therefore call helpers from its own module or from this one, whose
    changes numba sees, but from no third module.)"""
    try:
        data = Path(inspect.getsourcefile(fn)).read_bytes()
    except (OSError, TypeError):
        data = fn.__code__.co_code + repr(fn.__code__.co_consts).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def variant_loop(rule: Any, flags: Mapping[str, bool]) -> Callable:
    """``_loop`` bound to ``rule``'s element body and one variant's flags, named after both
    (numba caches it under that name)."""
    suffix = "".join(f"_{k}{int(v)}" for k, v in flags.items())
    element = numba.njit(error_model="numpy", no_cpython_wrapper=True,  # only called
                         no_cfunc_wrapper=True)(rule.cpu_element)           # by the loop
    env = dict(_loop.__globals__, ELEMENT=element, FLAGS=tuple(bool(v) for v in flags.values()),
               N_SCALARS=len(rule.scalars))
    loop = types.FunctionType(_loop.__code__, env, "_loop")
    loop.__qualname__ = f"{rule.name}{suffix}_{_fingerprint(rule.cpu_element)}"
    loop.__module__ = __name__
    return loop


class CpuKernel:
    """A rule's loop for one variant (its compile-time flags), compiled serial and parallel."""

    def __init__(self, rule: Any, flags: Mapping[str, bool]) -> None:
        if numba is None:
            raise ImportError("the numba backend needs numba: pip install numba")
        self.serial, self.parallel = serial_and_parallel(variant_loop(rule, flags))
        self.n_state, self.n_scalars = len(rule.state), len(rule.scalars)

    def for_array(self, a: np.ndarray, bytes_per_step: int) -> Callable[..., None]:
        """The version for arrays like ``a`` (serial below the threshold), compiled now for
        its dtype, or loaded from numba's on-disk cache, so no step waits for the JIT."""
        parallel = bytes_per_step >= PARALLEL_THRESHOLD_BYTES
        dispatcher = self.parallel if parallel else self.serial
        array = numba.from_dtype(a.dtype)[::1]
        dispatcher.compile(numba.void(array, array, numba.types.UniTuple(array, self.n_state),
                                      array))
        # One call on scratch arrays primes the dispatcher and starts the thread pool
        # (~10 ms the first time), so the first real step runs at full speed.
        scratch = np.zeros(1, a.dtype)
        state = tuple(np.zeros(1, a.dtype) for _ in range(self.n_state))
        dispatcher(scratch, scratch.copy(), state, np.zeros(self.n_scalars, a.dtype))
        return dispatcher
