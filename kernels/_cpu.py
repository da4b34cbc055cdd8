"""Numba CPU kernels: the loops around each rule's element body, over a bucket of arrays.

A rule gives ``cpu_element(i, pi, gi, p, state, s, flags)``, the update of element ``i``
after the common start (kernels/_rule.py), which the loop computes; this
module owns the loops that run it. A step updates a *bucket* (the params of one group and
dtype) in one compiled call: ``_bucket_loop`` walks the bucket's arrays as one run of
elements, the params and grads through their data pointers (the bucket's table, and the
pointers ``kernels/_ndarray.py`` found for this step's grads), the state as slices of one
flat buffer per state array. Compiled with ``parallel=True`` it splits that run into one
contiguous part per thread, across array boundaries, so the threads start once per step
whatever the number of arrays; compiled without, it is an ordinary (vectorised) loop per
array. Each rule variant gets its own copy of ``_bucket_loop`` whose globals bind
``ELEMENT`` (the rule's body), ``FLAGS`` (the variant's compile-time flags),
and ``N_SCALARS``: numba freezes globals as constants, LLVM inlines the body
and folds the flags, so a variant's disabled branches and unused state vanish. Measured on
the 2-core machine against the hand-written per-rule loops this replaced, in one process,
interleaved: every rule within 2.5% at 1e3, 1e5 and 1e7 float32, bit-identical. numba's
``inline="always"`` would splice the body into the loop's IR instead, but its parallel
loops then no longer matched the reference bit for bit, and Adamax ran 2.6x slower at
1e3, so it is not used.

A bucket that moves fewer than ``PARALLEL_THRESHOLD_BYTES`` a step takes the serial loop,
where waking the threads costs more than the work saves. The crossover follows the bytes a
step moves rather than the element count: on the 2-core development machine the parallel
loop started to win at ~1.2 MB for SGD (12 B/element: ~100k elements), ~0.6 MB for Adagrad
(20 B: ~30k) and ~0.3-0.8 MB for Adam (28 B: 10k-30k), so 1 MiB; ``pytest
benchmarks/quick --benchmark-only -k serial_vs_parallel`` measures it again. Those
crossovers hold for steps back to back, with the threads still spinning; after the user's
own code the threads sleep, and the parallel loop started to win only at ~4 MB for Adam
(1.4e5 elements: 94 against 107 us at 2e5, 69 against 61 at 1e5), so between 1 MiB and
``WARM_THRESHOLD_BYTES`` (4 MiB) kernels/_threads.py's WarmChooser picks the loop at each
call. The thread count is numba's (``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``),
read every step.

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

from . import _threads
from ._jit import njit

try:
    import numba
    from numba import prange
    from numba.extending import overload
    from numba.np.unsafe.ndarray import to_fixed_tuple

    from ._ndarray import place_addresses, resolve_grads, void_pointer
except Exception:  # the numba backend is optional (or broken); the rule modules still import
    numba = None
    prange = range

OPTIONS = dict(error_model="numpy", cache=True, nogil=True)   # fastmath off: see above

PARALLEL_THRESHOLD_BYTES = 1 << 20
WARM_THRESHOLD_BYTES = 4 << 20


def scalar_helper(fn: Callable) -> Callable:
    """A small scalar function the kernels call (compiled by numba when it is present)."""
    return njit(fn, **OPTIONS) if numba is not None else fn


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
    @numba.extending.overload(sign, jit_options=dict(OPTIONS, cache=False))  # inlined
    def _sign_in_dtype(x):
        one = numba.np.numpy_support.as_dtype(x).type(1)
        zero = one - one

        def impl(x):
            return one if x > 0 else (-one if x < 0 else (zero if x == 0 else x))
        return impl


@scalar_helper
def lerp_in_dtype(a, b, w, one):
    """torch's lerp (kernels/_rule.py) of scalars, in their dtype (``one``: 1 in it)."""
    return a + w * (b - a) if w < 0.5 else b - (b - a) * (one - w)


def rsqrt(x):
    """1/sqrt(x) in x's dtype (torch's rsqrt: a square root, then a division)."""
    return np.reciprocal(np.sqrt(x))


def cast_like(x, like):
    """``x`` rounded to the dtype of ``like`` (a scalar of the kernel's arithmetic)."""
    return np.asarray(x).astype(np.asarray(like).dtype)[()]


if numba is not None:
    @numba.extending.overload(rsqrt, jit_options=dict(OPTIONS, cache=False))
    def _rsqrt_in_dtype(x):
        one = numba.np.numpy_support.as_dtype(x).type(1)
        return lambda x: one / np.sqrt(x)

    @numba.extending.overload(cast_like, jit_options=dict(OPTIONS, cache=False))
    def _cast_like(x, like):
        kind = numba.np.numpy_support.as_dtype(like).type
        return lambda x, like: kind(x)


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
    serial = njit(fn, **opts)
    parallel = njit(_renamed(fn, "_parallel"), parallel=True, **opts)
    return serial, _threads.fork_guarded(serial, _threads.one_at_a_time(parallel))


# Columns of a bucket's table, one row per param: its data pointer, its place in the
# bucket's flat state buffers (offset, size), its index in the optimizer (what a
# stochastic rounding's random stream is keyed by) and its first block in the absmax
# buffers of 8-bit state (kernels/_blockwise.py). The params are the user's arrays
# (their addresses never change), the state buffers are the optimizer's.
PARAM, OFFSET, SIZE, INDEX, BLOCK = range(5)


def block_offsets(sizes: list[int], block: int = 256) -> list[int]:
    """Where each array's blocks start in a buffer of one value per block (and the end)."""
    return np.cumsum([0] + [-(-n // block) for n in sizes]).tolist()


def bucket_table(params: list, positions: list[int] | None = None) -> np.ndarray:
    """The table of a bucket of C-contiguous params, their state packed in this order
    (``positions``: their indices in the optimizer; 0, 1, ... if not given)."""
    sizes = [a.size for a in params]
    offsets = np.cumsum([0] + sizes)[:-1]
    positions = range(len(params)) if positions is None else positions
    rows = [(a.__array_interface__["data"][0], o, n, i, b)
            for a, o, n, i, b in zip(params, offsets, sizes, positions, block_offsets(sizes))]
    return np.array(rows, dtype=np.int64).reshape(len(params), 5)


# The last six arguments of a bucket loop whose grads are located already.
NO_GRADS = np.zeros(0, np.intp)
UNCHECKED = (NO_GRADS, np.zeros((0, 6), np.intp), np.zeros(0, np.intp),
             np.zeros((0, 2), np.intp), np.zeros(8, np.intp), NO_GRADS)


def state_views(state, a, b):
    """tuple(x[a:b] for x in state), which numba cannot compile as written."""
    return tuple(x[a:b] for x in state)


if numba is not None:
    @overload(state_views, jit_options=dict(OPTIONS, cache=False))  # its source is generated
    def _state_views_unrolled(state, a, b):
        items = "".join(f"state[{j}][a:b], " for j in range(len(state)))
        return eval(f"lambda state, a, b: ({items})")


@scalar_helper
def common_start(pi, gi, s, at):
    """(p, g) after the common start (kernels/_rule.py: g scaled by gscale already, then
    decoupled decay, maximize's sign, coupled decay) with the scalars ``s``; ``at``: where
    decay, sign and wd are in them
    (-1: not used), constants of each loop, so the unused steps vanish."""
    decay_at, sign_at, wd_at = at
    if decay_at >= 0:
        pi = pi * s[decay_at]
    if sign_at >= 0:
        gi = s[sign_at] * gi
    if wd_at >= 0 and s[wd_at] != 0:
        gi = gi + s[wd_at] * pi
    return pi, gi


@scalar_helper
def _first_row_at(table, element):
    """The last row whose run of elements starts at or before ``element`` (binary search)."""
    lo, hi = 0, table.shape[0] - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if table[mid, OFFSET] <= element:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _bucket_loop(table, grads, state, scalars, parts, ids, checks, dims, spans, layout,
                 addresses):
    """One pass of a rule's element body over a bucket (cloned per variant; see above):
    ``table`` rows as above, ``grads`` the grads' data pointers, ``state`` one flat buffer
    per state array (those the variant does not use may be empty), ``scalars`` this step's
    host scalars in the arrays' dtype, ``parts`` the number of threads (1 when serial;
    numba.get_num_threads() inside the loop would keep numba from caching it).
    ``scalars`` end with ``gscale``, each grad's scale (kernels/_rule.py), and for a
    PerTensor rule each row's N_TENSOR scalars after it (the element body's ``s`` ends
    with its row's).

    With ``ids`` (not empty), the grads are first checked and located from their objects
    (kernels/_ndarray.py: ``checks``, ``dims``, ``spans`` and ``layout`` are its table,
    shapes, the memory a step writes and the header layout), saving a second compiled
    call; with ``addresses`` (not empty), the grads' data addresses from a caller that
    vouches for their shape, dtype and contiguity (fastopt.torch) are placed and checked
    against ``spans`` the same way. Returns the first row it cannot vouch for, before
    touching anything, or -1 once the bucket is updated."""
    bad = resolve_grads(ids, checks, dims, spans, grads, layout) if ids.size else (
        place_addresses(addresses, checks, spans, grads) if addresses.size else -1)
    if bad >= 0:     # (inline: a call of its own cost 0.1 us a step, 5% of a small one)
        return bad
    s0 = to_fixed_tuple(scalars, N_SCALARS)  # noqa: F821 (bound per clone)
    gscale = scalars[N_SCALARS]  # noqa: F821 (the grad's scale: kernels/_rule.py)
    n = table.shape[0]
    total = table[n - 1, OFFSET] + table[n - 1, SIZE] if n else 0
    for part in prange(parts):
        lo, hi = total * part // parts, total * (part + 1) // parts
        for k in range(_first_row_at(table, lo), n):
            offset, size = table[k, OFFSET], table[k, SIZE]
            if offset >= hi:
                break
            # this part's elements of array k: [a, a + m), as views starting at 0 (a loop
            # from a nonzero start did not vectorise: 6x slower)
            a = max(lo, offset) - offset
            m = min(hi, offset + size) - offset - a
            p = numba.carray(void_pointer(table[k, PARAM]), size, scalars.dtype)[a:a + m]
            g = numba.carray(void_pointer(grads[k]), size, scalars.dtype)[a:a + m]
            st = state_views(state, offset + a, offset + a + m)
            s = s0 + to_fixed_tuple(scalars[N_SCALARS + 1 + k * N_TENSOR:],  # noqa: F821
                                    N_TENSOR)  # noqa: F821 (a row's PerTensor scalars)
            for i in range(m):       # the common start (kernels/_rule.py), then the rule's
                pi, gi = common_start(p[i], g[i] * gscale, s, START_AT)  # noqa: F821
                ELEMENT(i, pi, gi, p, st, s, FLAGS)  # noqa: F821
    return -1


def _fingerprint(*fns: Callable) -> str:
    """A short hash of the source files of ``fns`` and of every function they call through
    their globals, transitively (an element body's helpers, wherever they live): numba's
    cache checks only the loop's own file, so a change to any of them must change the
    cached loop's name."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(fns)):
        digest.update(path.encode() if path.startswith("<") else Path(path).read_bytes())
    return digest.hexdigest()[:12]


def _source_files(fns: Any) -> set[str]:
    """The files defining ``fns`` and the functions (numba dispatchers: their Python
    functions) they name as globals, transitively; modules (np, math) are not followed."""
    seen: set = set()
    files: set[str] = set()
    pending = list(fns)
    while pending:
        fn = pending.pop()
        fn = getattr(fn, "py_func", fn)
        if not inspect.isfunction(fn) or fn in seen:
            continue
        seen.add(fn)
        files.add(inspect.getsourcefile(fn) or f"<{fn.__qualname__}>")
        pending += [fn.__globals__[name] for name in _global_names(fn.__code__)
                    if name in fn.__globals__]
    return files


def _global_names(code: types.CodeType) -> set[str]:
    """The names ``code`` and the functions nested in it look up (globals among them)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def variant_loop(rule: Any, flags: Mapping[str, bool], parallel: bool,
                 storage: tuple | None = None) -> Callable:
    """``_bucket_loop`` bound to ``rule``'s element body and one variant's flags, named after
    both (numba caches it under that name); with ``storage`` = (kind, state kind, master,
    stochastic), kernels/_precision.py's tiled loop for params or state stored narrower
    than float32 instead."""
    from . import _precision

    suffix = "".join(f"_{k}{int(v)}" for k, v in flags.items()) + ("_parallel" if parallel else "")
    element = numba.njit(error_model="numpy", no_cpython_wrapper=True,  # only called
                         no_cfunc_wrapper=True)(rule.cpu_element)           # by the loop
    template = _bucket_loop if storage is None else _precision._bucket_loop_tiled
    n_tensor = len(rule.per_tensor.scalars) if rule.per_tensor else 0
    env = dict(template.__globals__, ELEMENT=element, N_SCALARS=len(rule.scalars),
               N_TENSOR=n_tensor,
               FLAGS=tuple(bool(v) for v in flags.values()), START_AT=tuple(rule.start))
    if storage is not None:
        kind, state_kind, master, stochastic = storage
        env.update(KIND=kind, STATE_KIND=state_kind, MASTER=bool(master),
                   STOCHASTIC=bool(stochastic),
                   SIGNED=tuple(int(rule.signed(s)) for s in rule.state))
        suffix += f"_bits{kind}{state_kind}{int(master)}{int(stochastic)}"
    loop = types.FunctionType(template.__code__, env, template.__name__)
    source = _fingerprint(rule.cpu_element, resolve_grads.py_func, template)
    loop.__qualname__ = f"{rule.name}{suffix}_{source}"
    loop.__module__ = template.__module__
    return loop


class CpuKernel:
    """A rule's bucket loop for one variant (its compile-time flags) and storage (None, or
    (kind, state kind, master, stochastic): kernels/_precision.py), serial and parallel."""

    def __init__(self, rule: Any, flags: Mapping[str, bool], storage: tuple | None = None
                 ) -> None:
        if numba is None:
            raise ImportError("the numba backend needs numba: pip install numba")
        self.serial, self.parallel = (njit(variant_loop(rule, flags, parallel, storage),
                                           parallel=parallel, **OPTIONS)
                                      for parallel in (False, True))
        self.n_state, self.n_scalars, self.storage = len(rule.state), len(rule.scalars), storage

    def loop(self, dtype: np.dtype, bytes_per_step: int) -> tuple[Callable[..., int], bool]:
        """(``f(table, grads, state, scalars, parts, ids, checks, dims, spans, layout,
        addresses)``, with ``master, rng, scales`` after them for a storage; parallel?) for
        buckets
        whose arithmetic is in ``dtype`` (float32 for a storage) moving
        ``bytes_per_step`` (serial below the threshold: call it with parts=1), compiled now
        or loaded from numba's on-disk cache, so no step waits for the JIT."""
        from . import _precision

        parallel = bytes_per_step >= PARALLEL_THRESHOLD_BYTES and _threads.parallel_ok()
        dispatcher = self.parallel if parallel else self.serial
        array = numba.from_dtype(np.dtype(dtype))[::1]
        index = numba.intp[::1]
        kind, state_kind = self.storage[:2] if self.storage else (0, 0)
        stored = np.dtype(_precision.stored_bits(state_kind) if state_kind else dtype)
        scales = numba.types.UniTuple(numba.float32[::1], self.n_state)
        extra = () if self.storage is None else (array, numba.uint64[::1], scales)
        dispatcher.compile(numba.intp(numba.int64[:, ::1], index,
                                      numba.types.UniTuple(numba.from_dtype(stored)[::1],
                                                           self.n_state), array,
                                      numba.intp, index, numba.intp[:, ::1], index,
                                      numba.intp[:, ::1], index, index, *extra))
        # One call on a scratch bucket primes the dispatcher and starts the thread pool
        # (~10 ms the first time), so the first real step runs at full speed.
        scratch = np.zeros(1, np.uint16 if kind else dtype)
        state = tuple(np.zeros(1, stored) for _ in range(self.n_state))
        primer = () if self.storage is None else (
            np.zeros(1, dtype), np.zeros(2, np.uint64),
            tuple(np.zeros(1, np.float32) for _ in range(self.n_state)))
        dispatcher(bucket_table([scratch]), np.array([scratch.ctypes.data], np.intp), state,
                   np.zeros(self.n_scalars + 1, dtype),
                   numba.get_num_threads() if parallel else 1,
                   *UNCHECKED, *primer)
        if parallel:
            dispatcher = _threads.one_at_a_time(dispatcher)
        if parallel and bytes_per_step < WARM_THRESHOLD_BYTES:   # serial or parallel per call
            self.serial.compile(self.parallel.signatures[0])
            return _threads.WarmChooser(self.serial, dispatcher), parallel
        if parallel:   # a child forked after OpenMP started runs the serial loop
            return _threads.fork_guarded(self.serial, dispatcher), parallel
        return dispatcher, parallel

    def for_array(self, p: np.ndarray, g: np.ndarray, bytes_per_step: int
                  ) -> Callable[[tuple, np.ndarray], None]:
        """``f(state, scalars)``: the loop over the one array ``p`` with the grad ``g`` (the
        loop alone, for benchmarks; ``scalars`` as ``Rule.kernel_scalars`` gives them)."""
        loop, parallel = self.loop(p.dtype, bytes_per_step)
        table, grads = bucket_table([p]), np.array([g.ctypes.data], np.intp)
        parts = numba.get_num_threads() if parallel else 1
        return lambda state, scalars: loop(table, grads, state, scalars, parts, *UNCHECKED)
