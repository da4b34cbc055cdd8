"""The grads of a step, checked and located by compiled code: one call for all of them.

A step's grads are new NumPy arrays every time, so their data pointers must be found every
step. Asking NumPy from Python costs ~1 us per array (``__array_interface__`` builds a
dict); numba's own unboxing of a tuple of arrays costs ~0.09 us per array but compiles one
dispatcher per tuple length (27 s for 400 arrays, on the 2-core machine). So a step hands
the kernels the grads' object addresses (``id``, ~0.04 us per array through
``numpy.fromiter``) and ``resolve_grads`` reads each array's header, the
``PyArrayObject`` struct of NumPy's C API, whose field order is NumPy's ABI, the same one
every compiled extension relies on: it checks the type (exactly ``numpy.ndarray``), the
shape, the dtype (the same descriptor object as the param's) and C-contiguity, that the
grad shares no memory with what the step writes (the params and the state: a bisection of
their byte ranges), and that its param is still writeable and of its shape and dtype (it
reads the param's header too), and stores the data pointer. Any grad that fails these
checks is handed back to Python, which either accepts it by the slower, general route (a
subclass, another descriptor object of an equal dtype, a copy of a grad that shares
memory) or raises the error that says what is wrong, before any param is touched.

The field offsets are not hard-coded: ``FIELDS`` is measured on probe arrays at import and
checked against what NumPy reports for them; where that fails (another interpreter, an
unexpected layout) ``FIELDS`` is None and every step takes the Python route.
"""
from __future__ import annotations

import bisect
import ctypes
from typing import NamedTuple

import numpy as np

from ._jit import njit

try:
    import llvmlite.ir
    import numba
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic
except Exception:   # the numba backend is optional (or broken)
    numba = None

C_CONTIGUOUS = 0x0001   # NPY_ARRAY_C_CONTIGUOUS
WRITEABLE = 0x0400      # NPY_ARRAY_WRITEABLE


class Fields(NamedTuple):
    """Byte offsets inside an ndarray object: ob_type, then the PyArrayObject fields."""

    type: int
    data: int
    nd: int
    dimensions: int
    descr: int
    flags: int


def _words(obj: object, n: int) -> list[int]:
    return list((ctypes.c_ssize_t * n).from_address(id(obj)))


def _measure_fields() -> Fields | None:
    """The offsets, found on a probe array and verified on others; None if they disagree."""
    probe = np.zeros((3, 5), np.float32)
    words = _words(probe, np.ndarray.__basicsize__ // ctypes.sizeof(ctypes.c_ssize_t))
    try:
        kind, data = words.index(id(np.ndarray)), words.index(probe.ctypes.data)
    except ValueError:
        return None
    word = ctypes.sizeof(ctypes.c_ssize_t)
    # PyArrayObject: data, nd, dimensions, strides, base, descr, flags (numpy/ndarraytypes.h)
    fields = Fields(kind * word, data * word, (data + 1) * word, (data + 2) * word,
                    (data + 5) * word, (data + 6) * word)
    probes = [np.zeros(()), np.ones((2, 3, 4), np.float32), np.arange(6.0)[::2],
              np.zeros((4, 1), np.float32).T, np.empty(0)]
    return fields if all(_reads_like_numpy(fields, a) for a in probes) else None


def _read(obj: object, offset: int, ctype: type) -> int:
    return ctype.from_address(id(obj) + offset).value


def _reads_like_numpy(fields: Fields, a: np.ndarray) -> bool:
    nd = _read(a, fields.nd, ctypes.c_int)
    dims = ctypes.cast(_read(a, fields.dimensions, ctypes.c_void_p),
                       ctypes.POINTER(ctypes.c_ssize_t))
    return (_read(a, fields.type, ctypes.c_void_p) == id(np.ndarray)
            and _read(a, fields.data, ctypes.c_void_p) in (a.ctypes.data, None)
            and nd == a.ndim and tuple(dims[k] for k in range(nd)) == a.shape
            and _read(a, fields.descr, ctypes.c_void_p) == id(a.dtype)
            and bool(_read(a, fields.flags, ctypes.c_int) & C_CONTIGUOUS)
            == a.flags.c_contiguous)


FIELDS = _measure_fields()


def descr_id(a: np.ndarray) -> int:
    """The address of ``a``'s dtype object as its header holds it."""
    return id(a.dtype)


# Columns of the table ``resolve_grads`` reads, one row per param (in bucket order).
GRAD, NDIM, DIMS, DESCR, NBYTES, PARAM = range(6)


def grad_table(arrays: list, grad_index: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(table, dims) describing the grads expected for ``arrays`` (the params): row k says
    which entry of the step's grads belongs to arrays[k], its ndim, where its shape starts
    in ``dims``, its dtype object, its size in bytes, and the param's own object (whose
    WRITEABLE flag is read every step: the caller keeps ``arrays`` alive)."""
    dims = np.array([d for a in arrays for d in a.shape], dtype=np.intp)
    starts = np.cumsum([0] + [a.ndim for a in arrays])[:-1]
    table = np.array([(i, a.ndim, s, descr_id(a), a.nbytes, id(a))
                      for i, a, s in zip(grad_index, arrays, starts)],
                     dtype=np.intp).reshape(len(arrays), 6)
    return table, dims


def spans_of(arrays: list, address) -> np.ndarray:
    """The byte ranges [start, end) of ``arrays`` (the params and the optimizer's state:
    memory a step writes), sorted, as a (m, 2) table; empty arrays left out."""
    rows = sorted((address(a), address(a) + a.nbytes) for a in arrays if a.nbytes)
    return np.array(rows, dtype=np.intp).reshape(len(rows), 2)


def overlapping(starts: list[int], ends: list[int], start: int, end: int) -> bool:
    """Whether [start, end) meets one of the sorted, disjoint spans [starts[i], ends[i])
    (Python's bisection: the routes that check grads in Python)."""
    i = bisect.bisect_left(starts, end) - 1
    return i >= 0 and ends[i] > start


# What resolve_grads reads, passed as an argument (numba's cache must not freeze
# addresses of this process): the ndarray type's address, then FIELDS.
LAYOUT = (np.array([id(np.ndarray), *FIELDS, ctypes.sizeof(ctypes.c_ssize_t)], dtype=np.intp)
          if FIELDS is not None else np.zeros(8, np.intp))
KIND, TYPE, DATA, ND, DIMENSIONS, DESCRIPTOR, FLAGS, WORD = range(8)   # LAYOUT's entries

if numba is not None:
    @intrinsic
    def void_pointer(typingctx, address):
        """An integer address as a ``void*`` (for ``numba.carray``)."""
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)
        return types.voidptr(types.intp), codegen

    @intrinsic
    def as_bits(typingctx, x):
        """A float32's bits as a uint32 (a bit cast: no conversion)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvmlite.ir.IntType(32))
        return types.uint32(types.float32), codegen

    @intrinsic
    def as_float(typingctx, x):
        """The float32 whose bits a uint32 holds."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvmlite.ir.FloatType())
        return types.float32(types.uint32), codegen

    @njit(cache=True, nogil=True)
    def _meets(spans, start, end):
        """Whether [start, end) meets one of the sorted, disjoint ``spans`` (bisection)."""
        lo, hi = 0, spans.shape[0]
        while lo < hi:                  # the first span starting at or after ``end``
            mid = (lo + hi) // 2
            if spans[mid, 0] < end:
                lo = mid + 1
            else:
                hi = mid
        return lo > 0 and spans[lo - 1, 1] > start

    @njit(cache=True, nogil=True)
    def place_addresses(addresses, table, spans, pointers):
        """pointers[k] = addresses[table[k, GRAD]] for every row k, grads given by their data
        addresses by a caller that vouches for their shape, dtype and contiguity (torch's
        p.grad); -1, or the first row whose grad meets ``spans`` (the memory a step writes;
        nothing is written past it)."""
        for k in range(table.shape[0]):
            data = addresses[table[k, GRAD]]
            if table[k, NBYTES] and _meets(spans, data, data + table[k, NBYTES]):
                return k
            pointers[k] = data
        return -1
else:
    void_pointer = place_addresses = None

if numba is not None and FIELDS is not None:
    @njit(cache=True, nogil=True)
    def _word(address):
        return numba.carray(void_pointer(address), 1, np.intp)[0]

    @njit(cache=True, nogil=True)
    def _int(address):
        return numba.carray(void_pointer(address), 1, np.intc)[0]

    @njit(cache=True, nogil=True)
    def _same_shape(shape, k, table, dims, layout):
        """Whether the dimensions at address ``shape`` are row k's."""
        for d in range(table[k, NDIM]):
            if _word(shape + d * layout[WORD]) != dims[table[k, DIMS] + d]:
                return False
        return True

    @njit(cache=True, nogil=True)
    def _matches(obj, k, table, dims, layout):
        if _word(obj + layout[TYPE]) != layout[KIND]:   # what every object has, first
            return False
        nd = table[k, NDIM]
        if _int(obj + layout[ND]) != nd or _word(obj + layout[DESCRIPTOR]) != table[k, DESCR]:
            return False
        if not _int(obj + layout[FLAGS]) & C_CONTIGUOUS:
            return False
        return _same_shape(_word(obj + layout[DIMENSIONS]), k, table, dims, layout)

    @njit(cache=True, nogil=True)
    def resolve_grads(ids, table, dims, spans, pointers, layout):
        """pointers[k] = the data of grad ``ids[table[k, GRAD]]`` for every row k, if each
        is a C-contiguous numpy.ndarray of its param's shape and dtype that shares no memory
        with ``spans`` (the params and the state), and the param is still writeable; else
        the first row that is not (nothing is written past it) so Python can look closer."""
        for k in range(table.shape[0]):
            obj = ids[table[k, GRAD]]
            if not _matches(obj, k, table, dims, layout):
                return k
            data = _word(obj + layout[DATA])
            if table[k, NBYTES] and _meets(spans, data, data + table[k, NBYTES]):
                return k
            param = table[k, PARAM]     # made read-only, or re-typed or reshaped in place?
            if not _int(param + layout[FLAGS]) & WRITEABLE or \
                    _word(param + layout[DESCRIPTOR]) != table[k, DESCR] or \
                    _int(param + layout[ND]) != table[k, NDIM] or \
                    not _same_shape(_word(param + layout[DIMENSIONS]), k, table, dims, layout):
                return k
            pointers[k] = data
        return -1
elif numba is not None:
    @njit(cache=True, nogil=True)
    def resolve_grads(ids, table, dims, spans, pointers, layout):
        """The layout is unknown here: no grad is vouched for (Python checks them all)."""
        return 0 if table.shape[0] else -1
else:
    resolve_grads = None
