"""Adafactor (Shazeer & Stern 2018) as torch.optim.Adafactor computes it: second moments
factored into row and column means for params of 2+ dims (the last two), so an (m, n)
matrix keeps m + n numbers of state; a vector keeps a full variance. No first moment.

    g     = -g                                          (maximize=True)
    w     = t^beta2_decay;   rho = min(lr, 1/sqrt(t))
    alpha = max(eps2, RMS(p)) * rho                     (p before the decay)
    p     = p*(1 - lr*wd)
    matrix: row_var = lerp(row_var, mean_j g^2, w);  col_var = lerp(col_var, mean_i g^2, w)
            v = row_var*col_var / max(mean(row_var), eps1)
    vector: v = variance = lerp(variance, g^2, w)
    u     = g / sqrt(max(v, eps1^2))                    (rsqrt(.)*g)
    p    -= alpha / max(1, RMS(u)/d) * u                (eps1=None: the dtype's epsilon)

A whole-param rule (kernels/_rule.py: WholeParam): each param's sums are float64 in one
fixed order for every backend: a row's sum in ``ROW_LANES`` lanes (element j to lane
j % 8, each in turn) then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)); a whole param's: its
rows' sums (a vector's elements) in chunks of ``TOTAL_CHUNK``, each chunk in the same
eight lanes, the chunks' sums one after another from 0 (so a vector's chunks can run on
different threads); a column's one row after another.
"""
from __future__ import annotations

import math

import numpy as np

from . import _rule as r
from ._cpu import cast_like, lerp_in_dtype as lerp, nan_max, prange, rsqrt, scalar_helper

ROW_LANES = 8
COLUMN_BLOCK = 512         # the columns a numba thread sums at once, row after row
ROWS_AT_ONCE = 64          # the rows a numba thread takes at once
TOTAL_CHUNK = 4096         # a whole param's sum: chunks of this many rows (see above)
HYPERPARAMS = (r.lr(1e-2),
               r.Hyper("beta2_decay", -0.8, "nonpositive", "the second moments' weight "
                       "decays as t^beta2_decay"),
               r.Hyper("eps", (None, 1e-3), "eps_pair", "(eps1, eps2): eps1 bounds v "
                       "below (None: the dtype's epsilon), eps2 bounds RMS(p) below"),
               r.Hyper("d", 1.0, "at_least_one", "the update's RMS is clipped to d"),
               r.weight_decay(0.0, decoupled=True), r.maximize())
STATE = ("row_var", "col_var", "variance")
SCALARS = ("w", "rho", "keep", "eps1", "eps2", "d", "sign")


def host_scalars(hp, t, lr, extra):
    eps1, eps2 = hp["eps"]
    return (t ** hp["beta2_decay"], min(lr, 1.0 / math.sqrt(t)), 1.0 - lr * hp["weight_decay"],
            -1.0 if eps1 is None else eps1, eps2, hp["d"], -1.0 if hp["maximize"] else 1.0), \
        extra


def state_shape(name, shape):
    """row_var (..., m, 1) and col_var (..., 1, n) for params of 2+ dims, variance for the
    others (torch's names and shapes); None: the param keeps no such array."""
    if len(shape) >= 2:
        return {"row_var": (*shape[:-1], 1), "col_var": (*shape[:-2], 1, shape[-1])}.get(name)
    return shape if name == "variance" else None


def dims(shape):
    """(slabs, rows a slab, columns, factored) of a param of ``shape``."""
    if len(shape) < 2:
        return (1, int(np.prod(shape)), 1, 0)
    return (int(np.prod(shape[:-2])), shape[-2], shape[-1], 1)


# -- NumPy ---------------------------------------------------------------------------------
def row_sums(x):
    """float64 sums of the rows of ``x`` (2-D, float64) in the fixed order above."""
    rows, n = x.shape
    padded = np.zeros((rows, -(-n // ROW_LANES) * ROW_LANES))
    padded[:, :n] = x
    lanes = np.cumsum(padded.reshape(rows, -1, ROW_LANES), axis=1)[:, -1, :]
    return (((lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])) +
            ((lanes[:, 4] + lanes[:, 5]) + (lanes[:, 6] + lanes[:, 7])))


def total(x):
    """float64 sum of a vector (float64): chunks of TOTAL_CHUNK in the eight lanes, the
    chunks' sums in turn (zeros padding the last chunk change no lane: x >= 0 or NaN)."""
    chunks = -(-x.size // TOTAL_CHUNK)
    padded = np.zeros(chunks * TOTAL_CHUNK)
    padded[:x.size] = x
    return float(in_turn(row_sums(padded.reshape(chunks, TOTAL_CHUNK)))) if chunks else 0.0


def in_turn(x, axis=-1):
    """float64 sums along ``axis``, one element after another."""
    return np.cumsum(x, axis=axis).take(-1, axis=axis) if x.shape[axis] else \
        np.zeros(np.delete(x.shape, axis % x.ndim))


def squares(x):
    x = x.astype(np.float64)
    return x * x


@scalar_helper
def coefficient(p_sumsq, u_sumsq, numel, rho, eps2, d):
    """alpha / max(1, RMS(u)/d) in float64 (max as Python's: a NaN loses)."""
    rms = math.sqrt(p_sumsq) / math.sqrt(numel)
    ratio = math.sqrt(u_sumsq) / (math.sqrt(numel) * d)
    return (rms if rms > eps2 else eps2) * rho / (ratio if ratio > 1.0 else 1.0)


def reference(p, g, row_var, col_var, variance, scalars):
    """NumPy reference for one param (p and g shaped like it, g after the common start;
    the state it keeps, shaped, None for the others), in place."""
    w, rho, keep, eps1, eps2, d, sign = scalars
    eps1 = np.finfo(p.dtype).eps if eps1 < 0 else eps1
    eps1, eps1_sq = p.dtype.type(eps1), p.dtype.type(float(eps1) * float(eps1))
    if p.ndim < 2:
        p_sumsq = total(squares(p).ravel())
        variance[...] = r.lerp(variance, g * g, w)
        v = variance
    else:
        slabs, m, n, _ = dims(p.shape)
        sq = squares(g).reshape(-1, n)
        p_sumsq = total(row_sums(squares(p).reshape(-1, n)))
        rows = row_var.reshape(slabs, m)
        rows[...] = r.lerp(rows, (row_sums(sq) / n).astype(p.dtype).reshape(slabs, m), w)
        cols = col_var.reshape(slabs, n)
        cols[...] = r.lerp(cols, (in_turn(sq.reshape(slabs, m, n), 1) / m).astype(p.dtype), w)
        mean = np.maximum((in_turn(rows.astype(np.float64)) / m).astype(p.dtype), eps1)
        v = (row_var * col_var) / mean.reshape(*p.shape[:-2], 1, 1)
    u = rsqrt(np.maximum(v, eps1_sq)) * g
    u_sumsq = total(row_sums(squares(u).reshape(-1, dims(p.shape)[2])))
    step = p.dtype.type(coefficient(p_sumsq, u_sumsq, p.size, rho, eps2, d))
    p *= keep
    p -= step * u


# -- numba (one param: flat p, g and state; the grad's common start done here) ------------
@scalar_helper
def lanes_sum(x, n):
    """x[:n]'s sum (float64) in the fixed order above."""
    l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = 0.0
    full = n - n % 8
    for c in range(0, full, 8):
        l0 += x[c]
        l1 += x[c + 1]
        l2 += x[c + 2]
        l3 += x[c + 3]
        l4 += x[c + 4]
        l5 += x[c + 5]
        l6 += x[c + 6]
        l7 += x[c + 7]
    tail = n - full
    if tail > 0:
        l0 += x[full]
    if tail > 1:
        l1 += x[full + 1]
    if tail > 2:
        l2 += x[full + 2]
    if tail > 3:
        l3 += x[full + 3]
    if tail > 4:
        l4 += x[full + 4]
    if tail > 5:
        l5 += x[full + 5]
    if tail > 6:
        l6 += x[full + 6]
    return ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))


@scalar_helper
def in_order(x):
    """x's sum, one element after another from 0."""
    s = 0.0
    for v in x:
        s += v
    return s


@scalar_helper
def chunked_total(x, n):
    """x[:n]'s sum in ``total``'s order (chunks of TOTAL_CHUNK in lanes, then in turn)."""
    s = 0.0
    for lo in range(0, n, TOTAL_CHUNK):
        hi = min(n, lo + TOTAL_CHUNK)
        s += lanes_sum(x[lo:hi], hi - lo)
    return s


@scalar_helper
def started(g, e, gscale, sign):
    """Element e of the grad after the common start."""
    return sign * (g[e] * gscale)


def cpu_param(p, g, state, dims, s, gscale, flags):
    """Numba: the formula above for one param; each loop over rows or columns may run in
    parallel (numba's prange: compiled with parallel=True for big params), each item's sums
    in the fixed order, whatever the threads."""
    row_var, col_var, variance = state
    w, rho, keep, eps1, eps2, d, sign = s
    slabs, m, n, factored = dims[0], dims[1], dims[2], dims[3]
    rows = slabs * m
    one = cast_like(1.0, w)
    eps1 = cast_like(np.finfo(p.dtype).eps, w) if eps1 < 0 else eps1
    eps1_sq = cast_like(np.float64(eps1) * np.float64(eps1), w)
    mean = np.empty(slabs, p.dtype)
    chunks = -(-rows // ROWS_AT_ONCE) * factored       # (a vector's loops are others)
    if not factored:                        # a vector: one element a row, TOTAL_CHUNK at once
        n_chunks = -(-rows // TOTAL_CHUNK)
        p_chunks, u_chunks = np.empty(n_chunks), np.empty(n_chunks)
        for t in prange(n_chunks):
            lo, hi = t * TOTAL_CHUNK, min(rows, (t + 1) * TOTAL_CHUNK)
            pb, ub = np.empty(hi - lo), np.empty(hi - lo)
            pv, gv, vv = p[lo:hi], g[lo:hi], variance[lo:hi]    # (views from 0: the loop
            for j in range(hi - lo):                            # vectorises)
                gj = started(gv, j, gscale, sign)
                vv[j] = lerp(vv[j], gj * gj, w, one)
                pb[j] = np.float64(pv[j]) * np.float64(pv[j])
                x = np.float64(rsqrt(nan_max(vv[j], eps1_sq)) * gj)
                ub[j] = x * x
            p_chunks[t], u_chunks[t] = lanes_sum(pb, hi - lo), lanes_sum(ub, hi - lo)
        p_sumsq, u_sumsq = in_order(p_chunks), in_order(u_chunks)
    else:
        p_rows, u_rows = np.empty(rows), np.empty(rows)
        for t in prange(chunks):            # row_var, and each row's sum of p^2
            buf = np.empty(n)
            for i in range(t * ROWS_AT_ONCE, min(rows, (t + 1) * ROWS_AT_ONCE)):
                gr, pr = g[i * n:(i + 1) * n], p[i * n:(i + 1) * n]
                for c in range(n):
                    x = np.float64(started(gr, c, gscale, sign))
                    buf[c] = x * x
                row_var[i] = lerp(row_var[i], cast_like(lanes_sum(buf, n) / n, w), w, one)
                for c in range(n):
                    buf[c] = np.float64(pr[c]) * np.float64(pr[c])
                p_rows[i] = lanes_sum(buf, n)
        blocks = -(-n // COLUMN_BLOCK)
        for t in prange(slabs * blocks):    # col_var: COLUMN_BLOCK columns, row by row
            b, first = t // blocks, (t % blocks) * COLUMN_BLOCK
            last = min(n, first + COLUMN_BLOCK)
            acc = np.zeros(last - first)
            for i in range(b * m, (b + 1) * m):
                for c in range(first, last):
                    x = np.float64(started(g, i * n + c, gscale, sign))
                    acc[c - first] += x * x
            for c in range(first, last):
                col_var[b * n + c] = lerp(col_var[b * n + c], cast_like(acc[c - first] / m, w),
                                          w, one)
        for b in range(slabs):
            total = 0.0
            for i in range(b * m, (b + 1) * m):
                total += np.float64(row_var[i])
            mean[b] = nan_max(cast_like(total / m, w), eps1)
        for t in prange(chunks):            # each row's sum of u^2
            buf = np.empty(n)
            lo, hi = t * ROWS_AT_ONCE, min(rows, (t + 1) * ROWS_AT_ONCE)
            b = lo // m                     # the slab of row i, followed without a division
            for i in range(lo, hi):
                if i == (b + 1) * m:
                    b += 1
                rv, mb = row_var[i], mean[b]
                cv, gr = col_var[b * n:(b + 1) * n], g[i * n:(i + 1) * n]
                for c in range(n):
                    u = rsqrt(nan_max(rv * cv[c] / mb, eps1_sq)) * started(gr, c, gscale,
                                                                           sign)
                    buf[c] = np.float64(u) * np.float64(u)
                u_rows[i] = lanes_sum(buf, n)
        p_sumsq, u_sumsq = chunked_total(p_rows, rows), chunked_total(u_rows, rows)
    step = cast_like(coefficient(p_sumsq, u_sumsq, p.size, rho, eps2, d), w)
    if not factored:
        for i in prange(rows):
            u = rsqrt(nan_max(variance[i], eps1_sq)) * started(g, i, gscale, sign)
            p[i] = p[i] * keep - step * u
    for t in prange(chunks):                # p = p*keep - step*u
        lo, hi = t * ROWS_AT_ONCE, min(rows, (t + 1) * ROWS_AT_ONCE)
        b = lo // m
        for i in range(lo, hi):
            if i == (b + 1) * m:
                b += 1
            rv, mb = row_var[i], mean[b]    # (a row's own views: the loop vectorises)
            cv, gr, pr = col_var[b * n:(b + 1) * n], g[i * n:(i + 1) * n], p[i * n:(i + 1) * n]
            for c in range(n):
                u = rsqrt(nan_max(rv * cv[c] / mb, eps1_sq)) * started(gr, c, gscale, sign)
                pr[c] = pr[c] * keep - step * u


# -- CUDA: seven launches a bucket, one thread a row, column, slab, chunk, param or element
# (each sum in the order above; block b works on param
# item_param_[b]; DeviceStep runs them; tests/cuda_twin.py compiles them for the CPU)
CUDA_HEAD = """
    const long long n = dims_[4 * k + 2], m = dims_[4 * k + 1];
    const bool factored = dims_[4 * k + 3] != 0;
    const T one = 1, eps1 = eps1_ < 0 ? (sizeof(T) == 4 ? (T)1.1920928955078125e-07
                                                        : (T)2.220446049250313e-16) : eps1_;
    const T eps1_sq = (T)((double)eps1 * (double)eps1);
    const T* g = reinterpret_cast<const T*>(grads_[k]);
    T* p = reinterpret_cast<T*>(params_[k]);
    T* row_var = row_var_ + starts_[3 * k];
    T* col_var = col_var_ + starts_[3 * k + 1];
    T* variance = variance_ + starts_[3 * k + 2];
"""
LERP = "a = w < (T)0.5 ? a + w * (b - a) : b - (b - a) * (one - w);"
V = """
        T v = factored ? row_var[i] * col_var[(i / m) * n + c] / mean_[slab_first_[k] + i / m]
                       : variance[i];
        v = (v > eps1_sq || v != v) ? v : eps1_sq;
        const T u = (one / sqrt(v)) * (sign * (g[i * n + c] * gscale));
"""
TREE = "((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))"
CUDA_KERNELS = {
    # each param's rows: the lanes of g^2 (row_var or variance lerped) and of p^2
    "rows": ("row", """
    const long long i = q;
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long long c = 0; c < n; ++c) {
        const double x = (double)(sign * (g[i * n + c] * gscale)), y = (double)p[i * n + c];
        l[c % 8] += x * x;
        lp[c % 8] += y * y;
    }
    const T b = (T)((TREE) / (double)n);
    T& a = factored ? row_var[i] : variance[i];
    LERP
    for (int j = 0; j < 8; ++j) l[j] = lp[j];
    psum_[row_first_[k] + q] = TREE;""".replace("TREE", TREE).replace("LERP", LERP)),
    # each factored param's columns, slab by slab: col_var lerped
    "cols": ("col", """
    const long long b0 = (q / n) * m, c = q % n;
    double s = 0.0;
    for (long long i = b0; i < b0 + m; ++i) {
        const double x = (double)(sign * (g[i * n + c] * gscale));
        s += x * x;
    }
    const T b = (T)(s / (double)m);
    T& a = col_var[q];
    """ + LERP),
    # each slab's mean of row_var, at least eps1
    "slabs": ("slab", """
    double s = 0.0;
    for (long long i = q * m; i < (q + 1) * m; ++i) s += (double)row_var[i];
    const T v = (T)(s / (double)m);
    mean_[slab_first_[k] + q] = (v > eps1 || v != v) ? v : eps1;"""),
    # each row's lanes of u^2
    "urows": ("row", """
    const long long i = q;
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long long c = 0; c < n; ++c) {""" + V + """
        l[c % 8] += (double)u * (double)u;
    }
    usum_[row_first_[k] + q] = TREE;""".replace("TREE", TREE)),
    # each chunk of TOTAL_CHUNK rows of a param: its rows' sums in the eight lanes
    "chunks": ("chunk", """
    const long long rows = dims_[4 * k] * m, lo = q * TOTAL_CHUNK;
    const long long hi = lo + TOTAL_CHUNK < rows ? lo + TOTAL_CHUNK : rows;
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lu[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long long r = lo; r < hi; ++r) {
        l[(r - lo) % 8] += psum_[row_first_[k] + r];
        lu[(r - lo) % 8] += usum_[row_first_[k] + r];
    }
    pchunk_[chunk_first_[k] + q] = TREE;
    for (int j = 0; j < 8; ++j) l[j] = lu[j];
    uchunk_[chunk_first_[k] + q] = TREE;""".replace("TREE", TREE)
               .replace("TOTAL_CHUNK", str(TOTAL_CHUNK))),
    # each param: its chunks' sums in turn, then alpha / max(1, RMS(u)/d)
    "params": ("param", """
    const long long rows = dims_[4 * k] * m;
    const long long chunks = (rows + TOTAL_CHUNK - 1) / TOTAL_CHUNK;
    double ps = 0.0, us = 0.0;
    for (long long c = 0; c < chunks; ++c) {
        ps += pchunk_[chunk_first_[k] + c];
        us += uchunk_[chunk_first_[k] + c];
    }
    const double numel = (double)(rows * n);
    const double rms = sqrt(ps) / sqrt(numel), ratio = sqrt(us) / (sqrt(numel) * (double)d);
    coef_[k] = (T)((rms > (double)eps2 ? rms : (double)eps2) * (double)rho /
                   (ratio > 1.0 ? ratio : 1.0));""".replace("TOTAL_CHUNK", str(TOTAL_CHUNK))),
    # each element: p = p*keep - coef*u
    "update": ("element", """
    const long long i = q / n, c = q % n;""" + V + """
    p[q] = p[q] * keep - coef_[k] * u;"""),
}
CUDA_ARGS = ("const unsigned long long* params_, const unsigned long long* grads_, "
             "const long long* dims_, const long long* starts_, const int* item_param_, "
             "const long long* item_first_, const long long* item_count_, "
             "const long long* row_first_, const long long* slab_first_, "
             "const long long* chunk_first_, T* row_var_, T* col_var_, "
             "T* variance_, T* mean_, double* psum_, double* usum_, double* pchunk_, "
             "double* uchunk_, T* coef_, T w, T keep, "
             "T eps1_, T rho, T eps2, T d, T sign, T gscale")


def cuda_sources(ctype):
    """The seven kernels for params of C type ``ctype`` (kernels/_gpu_precision.py's
    StorageSource; one thread an item: a row, column, slab, chunk of rows, param or
    element)."""
    from ._gpu_precision import StorageSource

    out = []
    for name, (item, body) in CUDA_KERNELS.items():
        kernel = f"fastopt_adafactor_{name}_{ctype}"
        code = "\n".join([f"typedef {ctype} T;", f'extern "C" __global__ void {kernel}(',
                          f"        {CUDA_ARGS}) {{",
                          "    const int k = item_param_[blockIdx.x];",
                          "    const long long q = (long long)(blockIdx.x - item_first_[k]) *"
                          " blockDim.x + threadIdx.x;",
                          "    if (q >= item_count_[k]) return;" + CUDA_HEAD + body,
                          "}"])
        out.append(StorageSource(kernel, code, (), (), False))
    return out


def items(kind, dims):
    """How many threads of ``kind`` a param of ``dims`` takes (none for an empty one)."""
    slabs, m, n, factored = dims
    if not slabs * m * n:
        return 0
    return {"row": slabs * m, "col": slabs * n * factored, "slab": slabs * factored,
            "chunk": -(-slabs * m // TOTAL_CHUNK), "param": 1, "element": slabs * m * n}[kind]


class DeviceStep:
    """``f(grad addresses, scalars)``: the seven launches over one bucket (``xp``: cupy, or
    numpy for the twin; ``launches``: cuda_sources' kernels as ``launch(grid, block,
    args)``; ``stage(addresses)``: the grads' addresses where the kernels read them)."""

    BLOCK = 128

    def __init__(self, launches, xp, addresses, shapes, state, dtype, stage):
        from ._whole import state_starts

        each = [dims(s) for s in shapes]
        rows = [items("row", x) for x in each]
        slabs = [items("slab", x) for x in each]
        chunks = [items("chunk", x) for x in each]
        i64 = lambda x: xp.asarray(np.asarray(x, np.int64))  # noqa: E731
        self.params = xp.asarray(np.asarray(addresses, np.uint64))
        self.dims, self.starts = i64(each), i64(state_starts(RULE, shapes))
        self.grids = []
        for item, _ in CUDA_KERNELS.values():
            counts = [items(item, x) for x in each]
            blocks = [-(-c // self.BLOCK) for c in counts]
            self.grids.append((sum(blocks), (
                xp.asarray(np.repeat(np.arange(len(each), dtype=np.int32), blocks)),
                i64(np.cumsum([0] + blocks)[:-1]), i64(counts))))
        firsts = (i64(np.cumsum([0] + rows)[:-1]), i64(np.cumsum([0] + slabs)[:-1]),
                  i64(np.cumsum([0] + chunks)[:-1]))
        empty = xp.zeros(1, dtype)
        self.buffers = (*firsts, *(state.get(s, empty) for s in STATE),
                        xp.zeros(max(sum(slabs), 1), dtype), xp.zeros(max(sum(rows), 1)),
                        xp.zeros(max(sum(rows), 1)), xp.zeros(max(sum(chunks), 1)),
                        xp.zeros(max(sum(chunks), 1)), xp.zeros(max(len(each), 1), dtype))
        self.launches, self.stage = launches, stage

    def __call__(self, addresses, scalars):
        w, rho, keep, eps1, eps2, d, sign, gscale = scalars[:len(SCALARS) + 1]
        tables = (self.params, self.stage(addresses), self.dims, self.starts)
        for launch, (grid, per_item) in zip(self.launches, self.grids):
            if grid:
                launch((grid,), (self.BLOCK,), (*tables, *per_item, *self.buffers, w, keep,
                                                eps1, rho, eps2, d, sign, gscale))


RULE = r.Rule("adafactor", "Adafactor", "Adafactor (Shazeer & Stern 2018): factored second "
              "moments, m + n numbers of state for an (m, n) matrix.", __doc__, HYPERPARAMS,
              STATE, SCALARS, host_scalars, reference, None, "",
              tuned_lr=dict(quadratic=5e-2, rosenbrock=3e-2, logistic=5e-2, digits=1e-2),
              nonnegative_state=STATE, torch_class="Adafactor",
              torch_state={s: s for s in STATE},
              whole=r.WholeParam(7, cuda_sources, DeviceStep, shape=state_shape,
                                 cpu=cpu_param, dims=dims))
