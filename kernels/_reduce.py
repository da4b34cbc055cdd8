"""The sum of squares over a step's grads, in one fixed order: the global norm that
``max_grad_norm`` clips by, the same to the last bit on every backend.

The order is the NumPy reference's (``chunk_sums``, ``sum_of_squares``): each grad is cut
into chunks of CHUNK = 4096 elements from its start (the CUDA kernels' chunks); in a chunk
element e goes to lane e % 128, each lane adds its squares in turn, in float64 (the square
of a float32 or 16-bit value is exact there), and the 128 lanes are added as a tree (lane j
+= lane j + w, for w = 64, 32, ..., 1); the chunks' sums are then added one after another,
param by param, bucket by bucket, starting from the sum of the buckets before. A thread
(or a CUDA block) takes whole chunks, so the number of threads changes nothing; the lanes
vectorise without reassociating anything (numba's loops keep fastmath off: see
kernels/_cpu.py). One pass reads each grad once: 4 bytes an element for float32, a seventh
of what an Adam step moves.

The clip coefficient is torch's (``torch.nn.utils.clip_grad_norm_``):
``min(1, max_norm / (norm + 1e-6))``, in float64, NaN when the norm is NaN; the kernels
multiply each grad by it as they read it (kernels/_rule.py: ``gscale``), writing no grad.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _threads
from ._cpu import (PARALLEL_THRESHOLD_BYTES, PARAM, SIZE, block_offsets, bucket_table, numba,
                   prange, scalar_helper, serial_and_parallel)

CHUNK, LANES = 4096, 128
ROWS = CHUNK // LANES


def chunk_sums(g: np.ndarray) -> np.ndarray:
    """The reference: the sum of squares of each chunk of ``g`` (float64, in its order)."""
    x = np.asarray(g).reshape(-1).astype(np.float64)
    chunks = -(-x.size // CHUNK)
    padded = np.zeros(chunks * CHUNK)
    padded[:x.size] = x
    squares = np.square(padded).reshape(chunks, ROWS, LANES)
    lanes = squares[:, 0].copy()
    for row in range(1, ROWS):          # each lane in turn (zeros past the end add nothing)
        lanes += squares[:, row]
    width = LANES
    while width > 1:
        width //= 2
        lanes[:, :width] += lanes[:, width:2 * width]
    return lanes[:, 0].copy()


def sum_of_squares(grads: list, start: float = 0.0) -> float:
    """``start`` plus the chunks' sums of ``grads``, added one after another."""
    total = start
    for g in grads:
        for c in chunk_sums(g).tolist():
            total += c
    return total


def clip_coefficient(max_norm: float, norm: float) -> float:
    """torch's: min(1, max_norm / (norm + 1e-6)); NaN for a NaN norm, 0 for an infinite."""
    coef = max_norm / (norm + 1e-6)
    return 1.0 if coef > 1.0 else coef


def grad_norm(total: float) -> float:
    return math.sqrt(total)


# -- numba ---------------------------------------------------------------------------------
def chunk_values(x, scratch, kind):
    """``x`` as float32 or float64 values: itself, or 16-bit bits widened into ``scratch``."""
    return x


if numba is not None:
    from numba.core import types as nbtypes

    from ._ndarray import void_pointer
    from ._precision import widen_any

    @numba.extending.overload(chunk_values, jit_options=dict(cache=False))
    def _chunk_values(x, scratch, kind):
        if x.dtype == nbtypes.uint16:
            def widened(x, scratch, kind):
                widen_any(x, scratch, kind)
                return scratch[:x.size].view(np.float32)
            return widened
        return lambda x, scratch, kind: x


@scalar_helper
def _chunk_sum(x, lanes):
    """One chunk's sum of squares in the reference's order (``lanes``: LANES float64).
    (Four rows at a time, each lane's sum held in a register across them, ran 1.3x slower
    at 1e7 float32: the strided rows defeat the prefetcher.)"""
    lanes[:] = 0.0
    rows = x.size // LANES
    for r in range(rows):
        for j in range(LANES):
            v = np.float64(x[r * LANES + j])
            lanes[j] += v * v
    base = rows * LANES
    for j in range(x.size - base):
        v = np.float64(x[base + j])
        lanes[j] += v * v
    width = LANES
    while width > 1:
        width //= 2
        for j in range(width):
            lanes[j] += lanes[j + width]
    return lanes[0]


def _bucket_sum(table, grads, chunks, partials, parts, start, like, kind):
    """``start`` plus the sum of squares of a bucket's grads (data pointers ``grads``,
    sizes in ``table``; ``chunks``: where each grad's chunks start; ``like``: an empty
    array of the grads' stored dtype, uint16 for 16-bit ones of ``kind``): each thread
    writes whole chunks' sums into ``partials``, then they are added in order."""
    n_chunks = partials.size
    for part in prange(parts):
        lo, hi = n_chunks * part // parts, n_chunks * (part + 1) // parts
        lanes = np.empty(LANES)
        scratch = np.empty(CHUNK, np.uint32)
        k = 0
        for c in range(lo, hi):
            while chunks[k + 1] <= c:
                k += 1
            size = table[k, SIZE]
            first = (c - chunks[k]) * CHUNK
            m = min(CHUNK, size - first)
            x = numba.carray(void_pointer(grads[k]), size, like.dtype)[first:first + m]
            partials[c] = _chunk_sum(chunk_values(x, scratch, kind), lanes)
    total = start
    for c in range(n_chunks):
        total += partials[c]
    return total


_DISPATCHERS: list = []


def _dispatchers() -> tuple[Any, Any]:
    """(serial, parallel) ``_bucket_sum``, made once per process (numba's disk cache)."""
    if not _DISPATCHERS:
        _DISPATCHERS.extend(serial_and_parallel(_bucket_sum))
    return _DISPATCHERS[0], _DISPATCHERS[1]


class BucketSum:
    """``f(grad pointers, start) -> start + the sum of squares`` of one bucket's grads
    (params ``params``, flat; ``stored``: their stored dtype, uint16 for 16-bit ones of
    ``kind``), compiled now, parallel where the grads are 1 MiB or more."""

    def __init__(self, params: list, stored: np.dtype, kind: int = 0) -> None:
        sizes = [p.size for p in params]
        self.table = bucket_table(params)
        self.chunks = np.array(block_offsets(sizes, CHUNK), np.int64)
        self.partials = np.zeros(int(self.chunks[-1]))
        self.like, self.kind = np.empty(0, stored), kind
        nbytes = sum(sizes) * np.dtype(stored).itemsize
        serial, parallel = _dispatchers()
        self.parallel = nbytes >= PARALLEL_THRESHOLD_BYTES and _threads.parallel_ok()
        self.fn = parallel if self.parallel else serial
        self(self.table[:, PARAM].copy(), 0.0)     # compiled now (reading the params), so
        #                                            no step waits for the JIT

    def __call__(self, pointers: np.ndarray, start: float) -> float:
        parts = 1 if not self.parallel or _threads.forked_from_omp else numba.get_num_threads()
        return self.fn(self.table, pointers, self.chunks, self.partials, parts, start,
                       self.like, self.kind)


# -- CUDA ----------------------------------------------------------------------------------
# Three launches a bucket, each thread's work in the reference's order (no shared memory,
# so the C++ twin runs them one thread at a time as they are): block b, thread t adds the
# squares of lane t of chunk b; a thread per chunk adds its lanes as the tree; one thread
# adds the chunks' sums in turn after ``start``.
CUDA_LOADS = {"float": "(double)g[i]", "double": "g[i]",
              "unsigned short": "(double)widen_f16(g[i])"}


def cuda_sources(ctype: str) -> list[Any]:
    """The three kernels for grads of C type ``ctype`` ("unsigned short": float16 bits),
    as kernels/_gpu_precision.py's StorageSource (their conversions come with them)."""
    from ._gpu_precision import StorageSource

    suffix = ctype.replace(" ", "_")
    lanes = (f'extern "C" __global__ void fastopt_sumsq_lanes_{suffix}(\n'
             "        const unsigned long long* grads_, const long long* offsets_,\n"
             "        const int* chunk_array_, const long long* chunk_start_, "
             "double* lanes_) {\n"
             "    const int k = chunk_array_[blockIdx.x];\n"
             "    const long long first = chunk_start_[blockIdx.x];\n"
             "    const long long size = offsets_[k + 1] - offsets_[k];\n"
             f"    const {ctype}* g = reinterpret_cast<const {ctype}*>(grads_[k]);\n"
             "    double acc = 0.0;\n"
             f"    for (int r = 0; r < {ROWS}; ++r) {{\n"
             f"        const long long i = first + (long long)r * {LANES} + threadIdx.x;\n"
             f"        if (i < size) {{ const double v = {CUDA_LOADS[ctype]}; "
             "acc += v * v; }\n"
             "    }\n"
             f"    lanes_[(long long)blockIdx.x * {LANES} + threadIdx.x] = acc;\n"
             "}")
    tree = (f'extern "C" __global__ void fastopt_sumsq_tree_{suffix}(\n'
            "        double* lanes_, double* partials_, long long n_chunks) {\n"
            "    const long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
            "    if (c >= n_chunks) return;\n"
            f"    double* l = lanes_ + c * {LANES};\n"
            f"    for (int w = {LANES // 2}; w >= 1; w /= 2)\n"
            "        for (int j = 0; j < w; ++j) l[j] += l[j + w];\n"
            "    partials_[c] = l[0];\n"
            "}")
    total = (f'extern "C" __global__ void fastopt_sumsq_total_{suffix}(\n'
             "        const double* partials_, long long n_chunks, double start, "
             "double* total_) {\n"
             "    double s = start;\n"
             "    for (long long c = 0; c < n_chunks; ++c) s += partials_[c];\n"
             "    total_[0] = s;\n"
             "}")
    return [StorageSource(code.split("void ", 1)[1].split("(", 1)[0], code, (), (), False)
            for code in (lanes, tree, total)]


class DeviceBucketSum:
    """``f(grad addresses, start) -> float`` of one bucket on the GPU (``xp``: cupy, or
    numpy for the C++ twin; ``launches``: the three kernels' ``launch(grid, block,
    args)``; ``stage(addresses)``: the addresses where the kernels read them). The total
    comes back to the host: one synchronisation a bucket and step."""

    def __init__(self, launches: list, xp: Any, sizes: list[int], stage: Any) -> None:
        from ._gpu import chunk_table

        arrays, starts = chunk_table(sizes, CHUNK)
        self.n = len(arrays)
        self.tables = (xp.asarray(np.cumsum([0] + list(sizes)).astype(np.int64)),
                       xp.asarray(arrays), xp.asarray(starts))
        self.lanes, self.partials = xp.zeros(self.n * LANES), xp.zeros(self.n)
        self.total = xp.zeros(1)
        self.launches, self.stage = launches, stage

    def __call__(self, addresses: Any, start: float) -> float:
        lanes, tree, total = self.launches
        if self.n:
            lanes((self.n,), (LANES,), (self.stage(addresses), *self.tables, self.lanes))
            tree((-(-self.n // LANES),), (LANES,), (self.lanes, self.partials,
                                                    np.int64(self.n)))
        total((1,), (1,), (self.partials, np.int64(self.n), np.float64(start), self.total))
        return float(self.total[0])
