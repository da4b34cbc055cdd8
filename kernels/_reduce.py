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
kernels/_cpu.py), and a thread reads four chunks at once (one stream a thread read 1e7
float32 in 1.6 ms on the 2-core machine, four in 1.1). One pass reads each grad once: 4
bytes an element for float32, a seventh of what an AdamW step moves; on the 2-core machine
it costs 0.22-0.34x the step at 1e7, whose seven streams move more bytes a second than one
read pass does. numba's own fastmath sum, which reassociates, reads the same grads in
0.6-0.8x this pass's time there (``pytest benchmarks/quick/test_quick_clipping.py
--benchmark-only -k fastmath``); passes in this order with 16 or 32 lanes' sums held in
scalars across a chunk's rows (numba did not vectorise them: 3.5x slower), or with eight
streams a thread, were slower than this one.

The clip coefficient is torch's (``torch.nn.utils.clip_grad_norm_``):
``min(1, max_norm / (norm + 1e-6))``, in float64, NaN when the norm is NaN; the kernels
multiply each grad by it as they read it (kernels/_rule.py: ``gscale``), writing no grad.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _threads
from ._cpu import (OFFSET, PARALLEL_THRESHOLD_BYTES, PARAM, SIZE, block_offsets,
                   bucket_table, common_start, numba, prange, scalar_helper, serial_and_parallel,
                   state_views)

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
    from numba.np.unsafe.ndarray import to_fixed_tuple

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
    at 1e7 float32.)"""
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


@scalar_helper
def _four_chunk_sums(x0, x1, x2, x3, lanes, out, at):
    """``_chunk_sum`` of four full chunks at once, into out[at[0..3]]: each lane of each
    chunk adds its squares in the same order, while four streams are read together (one
    stream a thread reads at half the speed four do on the 2-core machine: 1.57 against
    0.89 ms for 1e7 float32)."""
    lanes[:, :] = 0.0
    for r in range(ROWS):
        b = r * LANES
        for j in range(LANES):
            v = np.float64(x0[b + j])
            lanes[0, j] += v * v
            v = np.float64(x1[b + j])
            lanes[1, j] += v * v
            v = np.float64(x2[b + j])
            lanes[2, j] += v * v
            v = np.float64(x3[b + j])
            lanes[3, j] += v * v
    for q in range(4):
        width = LANES
        while width > 1:
            width //= 2
            for j in range(width):
                lanes[q, j] += lanes[q, j + width]
        out[at[q]] = lanes[q, 0]


@scalar_helper
def _row_of(chunks, c):
    """The param whose chunks hold chunk ``c`` (the last whose first chunk is at or
    before it: an empty param shares its start with the next)."""
    lo, hi = 0, chunks.size - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if chunks[mid] <= c:
            lo = mid
        else:
            hi = mid - 1
    return lo


@scalar_helper
def _chunk_view(table, grads, chunks, c, like, k):
    """Chunk ``c``'s elements (a view of its grad's memory) and whether it is full (``k``:
    its param's row)."""
    size = table[k, SIZE]
    first = (c - chunks[k]) * CHUNK
    m = min(CHUNK, size - first)
    return numba.carray(void_pointer(grads[k]), size, like.dtype)[first:first + m], m == CHUNK


def _bucket_sum(table, grads, chunks, partials, parts, start, like, kind):
    """``start`` plus the sum of squares of a bucket's grads (data pointers ``grads``,
    sizes in ``table``; ``chunks``: where each grad's chunks start; ``like``: an empty
    array of the grads' stored dtype, uint16 for 16-bit ones of ``kind``): each thread
    writes whole chunks' sums into ``partials``, four at a time from the four quarters of
    its chunks where all four are full, then they are added in order."""
    n_chunks = partials.size
    for part in prange(parts):
        lo, hi = n_chunks * part // parts, n_chunks * (part + 1) // parts
        lanes = np.empty(LANES)
        four = np.empty((4, LANES))
        at = np.empty(4, np.int64)
        scratch = np.empty(CHUNK, np.uint32)
        quarter = (hi - lo) // 4
        rows = np.empty(4, np.int64)        # each quarter's param, advanced as it goes
        for q in range(4):
            rows[q] = _row_of(chunks, min(lo + q * quarter, n_chunks - 1))
        for i in range(quarter):
            for q in range(4):
                at[q] = lo + q * quarter + i
                while chunks[rows[q] + 1] <= at[q]:
                    rows[q] += 1
            x0, full0 = _chunk_view(table, grads, chunks, at[0], like, rows[0])
            x1, full1 = _chunk_view(table, grads, chunks, at[1], like, rows[1])
            x2, full2 = _chunk_view(table, grads, chunks, at[2], like, rows[2])
            x3, full3 = _chunk_view(table, grads, chunks, at[3], like, rows[3])
            if full0 and full1 and full2 and full3 and kind == 0:
                _four_chunk_sums(x0, x1, x2, x3, four, partials, at)
            else:
                for q in range(4):
                    x, _ = _chunk_view(table, grads, chunks, at[q], like, rows[q])
                    partials[at[q]] = _chunk_sum(chunk_values(x, scratch, kind), lanes)
        for c in range(lo + 4 * quarter, hi):
            x, _ = _chunk_view(table, grads, chunks, c, like, _row_of(chunks, c))
            partials[c] = _chunk_sum(chunk_values(x, scratch, kind), lanes)
    total = start
    for c in range(n_chunks):
        total += partials[c]
    return total


def _parts(parallel: bool) -> int:
    """The parts a pass splits into: numba's threads, 1 for a serial pass or in a child
    forked after GNU OpenMP started (kernels/_threads.py)."""
    return numba.get_num_threads() if parallel and not _threads.forked_from_omp else 1


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
        return self.fn(self.table, pointers, self.chunks, self.partials,
                       _parts(self.parallel), start, self.like, self.kind)


# -- CUDA ----------------------------------------------------------------------------------
# Three launches a bucket, each thread's work in the reference's order (no shared memory,
# so the C++ twin runs them one thread at a time as they are): block b, thread t adds the
# squares of lane t of chunk b; a thread per chunk adds its lanes as the tree; one thread
# adds the chunks' sums in turn after ``start``.
CUDA_LOADS = {"float": "(double)g[i]", "double": "g[i]",
              "unsigned short": "(double)widen_f16(g[i])"}


def cuda_ctype(dtype: Any) -> str:
    """The C type these kernels read grads of ``dtype`` as (float16: its bits)."""
    return {"float32": "float", "float64": "double", "float16": "unsigned short"}[
        np.dtype(dtype).name]


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


# -- a PerTensor rule's norms (kernels/_rule.py) ------------------------------------------
def store_values(row, j, values):
    """row[q, j] = values[q] for each of a PerTensor rule's values."""
    for q, v in enumerate(values):
        row[q, j] = v


if numba is not None:
    @numba.extending.overload(store_values, jit_options=dict(cache=False))  # generated
    def _store_values_unrolled(row, j, values):    # (a loop over the tuple did not vectorise)
        lines = "".join(f"    row[{q}, j] = values[{q}]\n" for q in range(len(values)))
        namespace: dict = {}
        exec(f"def impl(row, j, values):\n{lines}", namespace)
        return namespace["impl"]


def _bucket_norms(table, grads, state, scalars, chunks, partials, parts, sums):
    """The first pass of a PerTensor rule over a bucket (cloned per rule variant, as
    kernels/_cpu.py's loop: ``VALUES`` the rule's norm values, ``N_NORMS`` of them): each
    thread takes whole chunks, lane e % LANES of a chunk adds the squares of element e's
    values (after the common start, with the step's scalars), the lanes are added as the
    tree into ``partials[chunk]``; then each param's chunks are added in turn into
    ``sums[row]``. Nothing else is written."""
    s = to_fixed_tuple(scalars, N_SCALARS)  # noqa: F821 (bound per clone)
    gscale = scalars[N_SCALARS]  # noqa: F821
    rows = table.shape[0]
    n_chunks = partials.shape[0]
    for part in prange(parts):
        lo, hi = n_chunks * part // parts, n_chunks * (part + 1) // parts
        lanes = np.empty((N_NORMS, LANES))  # noqa: F821
        row = np.empty((N_NORMS, LANES), scalars.dtype)  # noqa: F821
        k = 0
        for c in range(lo, hi):
            while chunks[k + 1] <= c:
                k += 1
            offset, size = table[k, OFFSET], table[k, SIZE]
            first = (c - chunks[k]) * CHUNK
            m = min(CHUNK, size - first)
            p = numba.carray(void_pointer(table[k, PARAM]), size, scalars.dtype)[first:first + m]
            g = numba.carray(void_pointer(grads[k]), size, scalars.dtype)[first:first + m]
            st = state_views(state, offset + first, offset + first + m)
            lanes[:, :] = 0.0
            for r in range(-(-m // LANES)):      # row by row: lane j is element r*LANES + j
                width = min(LANES, m - r * LANES)
                for j in range(width):          # the row's values (this loop vectorises)
                    i = r * LANES + j
                    pi, gi = common_start(p[i], g[i] * gscale, s, START_AT)  # noqa: F821
                    store_values(row, j, VALUES(i, pi, gi, st, s, FLAGS))  # noqa: F821
                for q in range(N_NORMS):  # noqa: F821
                    for j in range(width):
                        v = np.float64(row[q, j])
                        lanes[q, j] += v * v
            for j in range(N_NORMS):  # noqa: F821
                width = LANES
                while width > 1:
                    width //= 2
                    for w in range(width):
                        lanes[j, w] += lanes[j, w + width]
                partials[c, j] = lanes[j, 0]
    for k in range(rows):
        for j in range(N_NORMS):  # noqa: F821
            total = 0.0
            for c in range(chunks[k], chunks[k + 1]):
                total += partials[c, j]
            sums[k, j] = total


class NormKernel:
    """``f(grad pointers, scalars) -> sums``, shape (params, norms): a PerTensor rule's
    first pass over one bucket of ``params`` (flat) with its ``state`` buffers, compiled
    now (parallel where the bucket moves 1 MiB or more)."""

    def __init__(self, rule: Any, flags: Any, params: list, state: tuple) -> None:
        from ._cpu import OPTIONS, _fingerprint
        from ._jit import njit

        sizes = [p.size for p in params]
        suffix = "".join(f"_{k}{int(v)}" for k, v in flags.items())
        values = numba.njit(error_model="numpy", no_cpython_wrapper=True,
                            no_cfunc_wrapper=True)(rule.per_tensor.cpu_values)
        env = dict(_bucket_norms.__globals__, VALUES=values, N_SCALARS=len(rule.scalars),
                   N_NORMS=len(rule.per_tensor.norms), START_AT=tuple(rule.start),
                   FLAGS=tuple(bool(v) for v in flags.values()))
        self.table, self.state = bucket_table(params), state
        self.chunks = np.array(block_offsets(sizes, CHUNK), np.int64)
        self.partials = np.zeros((int(self.chunks[-1]), len(rule.per_tensor.norms)))
        self.sums = np.zeros((len(params), len(rule.per_tensor.norms)))
        nbytes = sum(sizes) * params[0].dtype.itemsize * (2 + len(state))
        self.parallel = nbytes >= PARALLEL_THRESHOLD_BYTES and _threads.parallel_ok()
        loop = type(_bucket_norms)(_bucket_norms.__code__, env, "_bucket_norms")
        loop.__qualname__ = (f"{rule.name}_norms{suffix}{'_parallel' * self.parallel}_"
                             f"{_fingerprint(rule.per_tensor.cpu_values, _bucket_norms)}")
        loop.__module__ = __name__
        self.fn = njit(loop, parallel=self.parallel, **OPTIONS)
        self(self.table[:, PARAM].copy(), rule.kernel_scalars([0.0] * len(rule.scalars),
                                                              params[0].dtype))  # compiled now

    def __call__(self, pointers: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        self.fn(self.table, pointers, self.state, scalars, self.chunks, self.partials,
                _parts(self.parallel), self.sums)
        return self.sums


# -- a PerTensor rule's norms on the GPU -----------------------------------------------------
def norms_cuda_sources(rule: Any, flags: Any, hp: Any, ctype: str) -> list[Any]:
    """A PerTensor rule variant's first pass for ``ctype`` grads, in three kernels (as
    ``cuda_sources``): lane t of block b adds the squares of lane t's values in chunk b (all
    the norms' at once); the tree (``cuda_sources``' second kernel, over chunks x norms);
    a thread per param and norm adds its chunks in turn."""
    from ._gpu import kernel_source
    from ._gpu_precision import StorageSource

    source = kernel_source(rule, flags, hp)
    n_norms, state = len(rule.per_tensor.norms), source.out_params[1:]
    macros = "".join(f"#define {k.upper()} {int(v)}\n" for k, v in sorted(flags.items()))
    name = f"{source.name}_norms_{ctype}"
    args = ["const unsigned long long* params_", "const unsigned long long* grads_",
            "const long long* offsets_", "const int* chunk_array_",
            "const long long* chunk_start_", *(f"T* {s}_" for s in state),
            *(f"const T {s}" for s in source.in_params[1:]), "double* lanes_"]
    lanes = "\n".join([
        f"typedef {ctype} T;", macros + f'extern "C" __global__ void {name}(',
        "        " + ",\n        ".join(args) + ") {",
        "    const int k = chunk_array_[blockIdx.x];",
        "    const long long first = chunk_start_[blockIdx.x];",
        "    const long long offset = offsets_[k];",
        "    const long long size = offsets_[k + 1] - offset;",
        "    const T* p_ = reinterpret_cast<const T*>(params_[k]);",
        "    const T* g_ = reinterpret_cast<const T*>(grads_[k]);",
        *(f"    double acc{j} = 0.0;" for j in range(n_norms)),
        f"    for (int r = 0; r < {ROWS}; ++r) {{",
        f"        const long long i = first + (long long)r * {LANES} + threadIdx.x;",
        "        if (i >= size) break;",
        "        const T p = p_[i];",
        "        const T g = g_[i];",
        *(f"        T& {s} = {s}_[offset + i];" for s in state),
        rule.cuda_start() + rule.per_tensor.cuda_values,
        *(f"        acc{j} += (double)value{j} * (double)value{j};" for j in range(n_norms)),
        "    }",
        *(f"    lanes_[((long long)blockIdx.x * {n_norms} + {j}) * {LANES} + threadIdx.x] = "
          f"acc{j};" for j in range(n_norms)),
        "}"] + [f"#undef {k.upper()}" for k in flags])
    rows = (f'extern "C" __global__ void fastopt_norms_rows(\n'
            "        const double* partials_, const long long* chunk_first_, long long rows,\n"
            "        long long n_norms, double* sums_) {\n"
            "    const long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
            "    if (q >= rows * n_norms) return;\n"
            "    const long long k = q / n_norms, j = q % n_norms;\n"
            "    double s = 0.0;\n"
            "    for (long long c = chunk_first_[k]; c < chunk_first_[k + 1]; ++c)\n"
            "        s += partials_[c * n_norms + j];\n"
            "    sums_[q] = s;\n"
            "}")
    tree = cuda_sources(ctype)[1]
    return [StorageSource(name, lanes, (), (), False), tree,
            StorageSource("fastopt_norms_rows", rows, (), (), False)]


class DeviceNorms:
    """``f(grad addresses, scalars) -> sums`` (host, float64, (params, norms)) of a
    PerTensor rule's first pass over one bucket on the GPU (``xp``: cupy, or numpy for the
    C++ twin; ``launches``: ``norms_cuda_sources``' kernels; ``state``: the used state
    buffers, in the kernel's order; ``stage(addresses)``: where the kernels read them).
    The sums come back to the host: one synchronisation a bucket and step."""

    def __init__(self, launches: list, xp: Any, n_norms: int, param_addresses: list[int],
                 sizes: list[int], state: list, stage: Any) -> None:
        from ._gpu import chunk_table

        arrays, starts = chunk_table(sizes, CHUNK)
        self.n, self.n_norms, self.rows = len(arrays), n_norms, len(sizes)
        self.tables = (xp.asarray(np.asarray(param_addresses, np.uint64)),
                       xp.asarray(np.cumsum([0] + list(sizes)).astype(np.int64)),
                       xp.asarray(arrays), xp.asarray(starts))
        self.chunk_first = xp.asarray(np.asarray(block_offsets(sizes, CHUNK), np.int64))
        self.lanes = xp.zeros(self.n * n_norms * LANES)
        self.partials, self.sums = xp.zeros(self.n * n_norms), xp.zeros(self.rows * n_norms)
        self.launches, self.state, self.stage, self.xp = launches, state, stage, xp

    def __call__(self, addresses: Any, scalars: Any) -> np.ndarray:
        lanes, tree, rows = self.launches
        params, offsets, arrays, starts = self.tables
        if self.n:
            lanes((self.n,), (LANES,), (params, self.stage(addresses), offsets, arrays, starts,
                                        *self.state, *scalars, self.lanes))
            count = self.n * self.n_norms
            tree((-(-count // LANES),), (LANES,), (self.lanes, self.partials, np.int64(count)))
        total = self.rows * self.n_norms
        rows((-(-total // LANES),), (LANES,), (self.partials, self.chunk_first,
                                               np.int64(self.rows), np.int64(self.n_norms),
                                               self.sums))
        sums = self.sums.get() if hasattr(self.sums, "get") else self.sums.copy()
        return sums.reshape(self.rows, self.n_norms)
