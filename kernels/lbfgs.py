"""L-BFGS kernels: the two-loop recursion and the history update, three ways.

History: the last m pairs s = x_new - x, y = g_new - g in preallocated (m, n) ring buffers
S, Y on the backend's device; ``order`` lists the slots oldest first; rho_i = 1/(s_i.y_i).

    two_loop:  q = g
               for i newest..oldest:  alpha_i = rho_i s_i.q;   q -= alpha_i y_i
               r = gamma q                         (gamma = s.y/y.y of the newest pair)
               for i oldest..newest:  beta = rho_i y_i.r;  r += (alpha_i - beta) s_i
               d = -r                              (d = -H g, the search direction)

The fused versions make 2k+1 passes over n: each pass does one pair's axpy together with
the dot product the next pass needs, so each loop reads each history vector once
(~8kn + 3n words moved, against ~10kn for dot-then-axpy). Dot products accumulate in
float64 whatever the array dtype.

    update_pair:  s = x_new - x;  y = g_new - g;  returns (s.y, y.y, max|g_new|)

one pass that also yields the curvature and the stopping test's gradient norm.
"""
from __future__ import annotations

import functools
import re

import numpy as np

from . import bfgs, cg
from ._cpu import prange


# -- (1) NumPy reference -----------------------------------------------------------------
def two_loop_reference(g, S, Y, rho, order, gamma, d):
    """d = -H g by the textbook two-loop recursion (unfused, whole-array operations)."""
    q = g.astype(np.float64)
    alpha = np.empty(len(order))
    for j in reversed(range(len(order))):
        i = order[j]
        alpha[j] = rho[i] * np.dot(S[i], q)
        q -= alpha[j] * Y[i]
    r = gamma * q
    for j in range(len(order)):
        i = order[j]
        beta = rho[i] * np.dot(Y[i], r)
        r += (alpha[j] - beta) * S[i]
    np.negative(r, out=d, casting="same_kind")


def update_pair_reference(x_new, x, g_new, g, s, y):
    """s = x_new - x; y = g_new - g; return (s.y, y.y, max|g_new|)."""
    np.subtract(x_new, x, out=s)
    np.subtract(g_new, g, out=y)
    s64, y64 = s.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    return (float(np.dot(s64, y64)), float(np.dot(y64, y64)),
            float(np.max(np.abs(g_new))) if g_new.size else 0.0)


def step_reference(out, x, a, d):
    """out = x + a*d."""
    np.multiply(d, a, out=out)
    out += x


def step_copy_reference(out, copy, x, a, d):
    """out = copy = x + a*d (the trial point, and the copy fun gets, in one pass)."""
    step_reference(out, x, a, d)
    copy[...] = out


# -- (2) Numba CPU kernels (compiled serial and parallel by kernels._cpu.lbfgs_kernels) --
def two_loop_numba(g, S, Y, rho, order, gamma, alpha, d):
    """The fused two-loop recursion; ``alpha`` is scratch of length len(order)."""
    k = order.size
    n = g.size
    if k == 0:
        for i in prange(n):
            d[i] = -gamma * g[i]
        return
    s_new = S[order[k - 1]]
    dot = 0.0
    for i in prange(n):                       # q = g, fused with s_newest . q
        d[i] = g[i]
        dot += s_new[i] * np.float64(g[i])
    for j in range(k - 1, -1, -1):            # newest .. oldest
        a = rho[order[j]] * dot
        alpha[j] = a
        y = Y[order[j]]
        w = S[order[j - 1]] if j > 0 else y   # the next pass's dot partner
        dot = 0.0
        for i in prange(n):
            qi = d[i] - a * y[i]
            d[i] = qi
            dot += w[i] * np.float64(qi)
    scale = gamma                              # r = gamma q, folded into the first pass
    for j in range(k):                        # oldest .. newest
        c = alpha[j] - rho[order[j]] * scale * dot
        s = S[order[j]]
        last = j == k - 1
        w = s if last else Y[order[j + 1]]
        sign = -1.0 if last else 1.0          # the last pass writes d = -r
        dot = 0.0
        for i in prange(n):
            ri = scale * d[i] + c * s[i]
            d[i] = sign * ri
            dot += w[i] * np.float64(ri)
        scale = 1.0


def update_pair_numba(x_new, x, g_new, g, s, y):
    sy = 0.0
    yy = 0.0
    gmax = 0.0
    for i in prange(x.size):
        si = x_new[i] - x[i]
        yi = g_new[i] - g[i]
        s[i] = si
        y[i] = yi
        sy += np.float64(si) * yi
        yy += np.float64(yi) * yi
        gmax = max(gmax, abs(np.float64(g_new[i])))
    return sy, yy, gmax


def step_numba(out, x, a, d):
    for i in prange(x.size):
        out[i] = x[i] + a * d[i]


def step_copy_numba(out, copy, x, a, d):
    for i in prange(x.size):
        v = x[i] + a * d[i]
        out[i] = v
        copy[i] = v


def dot_numba(a, b):
    acc = 0.0
    for i in prange(a.size):
        acc += np.float64(a[i]) * b[i]
    return acc


NUMBA_KERNELS = {"two_loop": two_loop_numba, "update_pair": update_pair_numba,
                 "step": step_numba, "dot": dot_numba, "step_copy": step_copy_numba,
                 **cg.NUMBA_KERNELS, **bfgs.NUMBA_KERNELS}
REFERENCE_KERNELS = {"step_copy": step_copy_reference,      # what HostOps.call runs
                     **cg.REFERENCE, **bfgs.REFERENCE}
MATRIX_KERNELS = bfgs.MATRIX_KERNELS                      # they move n^2 elements, not n
BLAS_KERNELS = frozenset({"matvec"})     # NumPy's BLAS on the numba backend too (see below)
# Where the numba kernels pay, measured (``pytest benchmarks/quick/test_quick_methods.py
# --benchmark-only -k numba_against_numpy``, and the same at 3e4, 3e5 and 6e5: each
# method's own time per iteration on extended Rosenbrock, numba over numpy, interleaved):
# - below 1e4 elements the per-iteration saving (~0.03 ms) never repays numba's one-time
#   start in a process (~0.2 s), so small problems run the NumPy kernels;
# - vectors that sit in cache: NumPy's vectorised BLAS dot products beat numba's float64
#   sums (then one accumulation chain per thread; see SUMS), and waking numba's threads
#   costs more than the pass. float64 L-BFGS-B and CG lose up to 1.3x below 3e5
#   elements, float32 CG between 0.44x and 1.28x at 1e5 from run to run (its passes go
#   parallel there, in cache); Newton-CG, many short passes per iteration, 1.5x at 1e5
#   float32 and 1.2x at 3e5 float64;
# - from these sizes up, numba took 0.4-0.8 of NumPy's time.
NUMBA_FROM = {"newton-cg": {np.dtype(np.float32): 1_000_000, np.dtype(np.float64): 600_000},
              "cg": {np.dtype(np.float32): 300_000, np.dtype(np.float64): 300_000}}
NUMBA_FROM_ANY_METHOD = {np.dtype(np.float32): 10_000, np.dtype(np.float64): 300_000}
NUMBA_FROM_MATRIX = 10_000       # BFGS's rank-two pass over (n, n): no sums, streams


def numba_pays(elements: int, dtype: np.dtype, matrix: bool = False,
               method: str = "l-bfgs-b") -> bool:
    """Whether ``method``'s passes over this many elements run faster as numba kernels
    than as NumPy (the figures above)."""
    if matrix:
        return elements >= NUMBA_FROM_MATRIX
    return elements >= NUMBA_FROM.get(method, NUMBA_FROM_ANY_METHOD)[np.dtype(dtype)]


# The float64 sums may be reassociated: LLVM then keeps several partial sums in vector
# registers where one chain per thread waited on each add's latency (the two-loop
# direction at 266k elements and 10 pairs, where the history sits in cache: float32
# 3.9 -> 1.1 ms, float64 3.0 -> 1.8 ms). Only the order of the sums changes; every
# element is computed as written, and the sums were never NumPy's order anyway.
SUMS = {"fastmath": {"reassoc"}}


@functools.lru_cache(maxsize=None)
def numba_kernel(name: str, parallel: bool):
    """The numba dispatcher of one kernel (made once per process, compiled per dtype)."""
    from ._cpu import serial_and_parallel

    return serial_and_parallel(NUMBA_KERNELS[name], **SUMS)[parallel]


# -- backend glue: the same operations for every backend ---------------------------------
class HostOps:
    """minimize's operations on NumPy arrays: the reference, or the Numba kernels where
    they pay (loaded at construction, serial or parallel by the bytes a pass moves)."""

    xp = np

    def __init__(self, n: int, dtype: np.dtype, compiled: bool, by_size: bool = True,
                 method: str = "l-bfgs-b") -> None:
        """``compiled``: the numba backend's kernels where they pay for ``method`` over n
        elements of ``dtype`` (``numba_pays``), everywhere with ``by_size=False``."""
        self.dtype = np.dtype(dtype)
        self._kernels = {}
        self.compiled = {matrix: compiled and (not by_size or numba_pays(
            n * n if matrix else n, self.dtype, matrix, method)) for matrix in (False, True)}
        if self.compiled[False] or self.compiled[True]:
            from ._cpu import PARALLEL_THRESHOLD_BYTES
            from ._threads import parallel_ok

            threads = parallel_ok()
            parallel = threads and n * self.dtype.itemsize * 4 >= PARALLEL_THRESHOLD_BYTES
            self._parallel = {False: parallel, True: threads and n * n * self.dtype.itemsize
                              >= PARALLEL_THRESHOLD_BYTES}
            # numba's own dot, not numpy's: BLAS threads left spinning after np.dot took the
            # second core from numba's threads (the direction ran 3.6x slower at n = 1e6)
        if self.compiled[False]:
            self._two_loop, self._update, self._step, self._dot = (
                numba_kernel(k, parallel) for k in ("two_loop", "update_pair", "step", "dot"))
            self._warm_up()
        else:
            self._two_loop, self._dot = None, np.dot
            self._update, self._step = update_pair_reference, step_reference

    def _warm_up(self) -> None:
        """Compile (or load from cache) for this dtype now, not in the first iteration."""
        one = np.ones(1, self.dtype)
        H = np.ones((1, 1), self.dtype)
        self.two_loop(one, H, H, np.ones(1), np.zeros(1, np.int64), 1.0, one.copy())
        self.update_pair(one, one, one, one, one.copy(), one.copy())
        self.step(one.copy(), one, 1.0, one)
        self.dot(one, one)

    def zeros(self, shape) -> np.ndarray:
        return np.zeros(shape, self.dtype)

    def call(self, name: str, *args):
        """Run the kernel ``name`` of kernels.cg or kernels.bfgs (float arguments are cast
        to the arrays' dtype); returns what it returns."""
        return self._kernel(name)(*(self.dtype.type(a) if isinstance(a, float) else a
                                    for a in args))

    def _kernel(self, name: str):
        fn = self._kernels.get(name)
        if fn is None:
            matrix = name in MATRIX_KERNELS
            fn = self._kernels[name] = numba_kernel(name, self._parallel[matrix]) \
                if self.compiled[matrix] and name not in BLAS_KERNELS \
                else REFERENCE_KERNELS[name]
        return fn

    def step_copy(self, out, copy, x, a: float, d) -> None:
        """out = copy = x + a d in one pass (the trial point and fun's copy of it)."""
        self._kernel("step_copy")(out, copy, x, self.dtype.type(a), d)

    def two_loop(self, g, S, Y, rho, order, gamma, d) -> None:
        if self._two_loop is None:
            two_loop_reference(g, S, Y, rho, order, gamma, d)
        else:
            self._two_loop(g, S, Y, rho, order, gamma, np.empty(len(order)), d)

    def update_pair(self, x_new, x, g_new, g, s, y) -> tuple[float, float, float]:
        return self._update(x_new, x, g_new, g, s, y)

    def step(self, out, x, a: float, d) -> None:
        self._step(out, x, self.dtype.type(a), d)

    def dot(self, a, b) -> float:
        return float(self._dot(a, b))

    def max_abs(self, a) -> float:
        return float(np.max(np.abs(a))) if a.size else 0.0


# -- (3) CUDA kernels (cupy RawModule) ----------------------------------------------------
# Grid-stride loops; each block reduces its partial dot products in shared memory and adds
# them to a float64 slot of a device array with atomicAdd. The two-loop passes read the
# previous pass's dot product from that array, so the recursion runs without the host:
# rho and gamma are kernel arguments (the host knows them from the history update).
# tests/cuda_twin.py compiles this source for the CPU too (one thread, one block).
CUDA_SOURCE = r"""
#define BLOCK 256

__device__ double block_sum(double v) {
    __shared__ double part[BLOCK];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    double total = part[0];
    __syncthreads();
    return total;
}

__device__ double block_max(double v) {
    __shared__ double part[BLOCK];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] = fmax(part[threadIdx.x], part[threadIdx.x + half]);
        __syncthreads();
    }
    double total = part[0];
    __syncthreads();
    return total;
}

// out = max(out, v) for v >= 0: such doubles order as their bits do
__device__ void max_into(double* out, double v) {
    atomicMax((unsigned long long*)out, (unsigned long long)__double_as_longlong(v));
}

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

// d = -gamma g (no history)
template <typename T>
__global__ void lbfgs_scaled_descent(long long n, double gamma, const T* g, T* d) {
    GRID_STRIDE(i, n) { d[i] = (T)(-gamma * g[i]); }
}

// q = g, fused with out = s_newest . q
template <typename T>
__global__ void lbfgs_start(long long n, const T* g, const T* s, T* d, double* out) {
    double acc = 0.0;
    GRID_STRIDE(i, n) { T gi = g[i]; d[i] = gi; acc += (double)s[i] * gi; }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(out, acc);
}

// first loop, one pair: alpha = rho s.q (s.q = *dot_in); q -= alpha y; out = w . q
template <typename T>
__global__ void lbfgs_down(long long n, double rho, const double* dot_in, double* alpha,
                           const T* y, const T* w, T* d, double* out) {
    const double a = rho * *dot_in;
    if (blockIdx.x == 0 && threadIdx.x == 0) *alpha = a;
    double acc = 0.0;
    GRID_STRIDE(i, n) { T qi = (T)(d[i] - a * y[i]); d[i] = qi; acc += (double)w[i] * qi; }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(out, acc);
}

// second loop, one pair: beta = rho y.r (= rho*scale*(*dot_in)); r = scale*d + (alpha-beta) s;
// d = sign*r; out = w . r
template <typename T>
__global__ void lbfgs_up(long long n, double rho, double scale, double sign,
                         const double* dot_in, const double* alpha, const T* s, const T* w,
                         T* d, double* out) {
    const double c = *alpha - rho * scale * *dot_in;
    double acc = 0.0;
    GRID_STRIDE(i, n) {
        T ri = (T)(scale * d[i] + c * s[i]);
        d[i] = (T)(sign * ri);
        acc += (double)w[i] * ri;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(out, acc);
}

// s = x_new - x; y = g_new - g; out = (s.y, y.y, max|g_new|)   (out[2] >= 0: max as bits)
template <typename T>
__global__ void lbfgs_pair(long long n, const T* x_new, const T* x, const T* g_new,
                           const T* g, T* s, T* y, double* out) {
    double sy = 0.0, yy = 0.0, gmax = 0.0;
    GRID_STRIDE(i, n) {
        T si = x_new[i] - x[i];
        T yi = g_new[i] - g[i];
        s[i] = si;
        y[i] = yi;
        sy += (double)si * yi;
        yy += (double)yi * yi;
        gmax = fmax(gmax, fabs((double)g_new[i]));
    }
    sy = block_sum(sy);
    yy = block_sum(yy);
    gmax = block_max(gmax);
    if (threadIdx.x == 0) { atomicAdd(out, sy); atomicAdd(out + 1, yy); max_into(out + 2, gmax); }
}

// out = x + a d
template <typename T>
__global__ void lbfgs_step(long long n, T a, const T* x, const T* d, T* out) {
    GRID_STRIDE(i, n) { out[i] = x[i] + a * d[i]; }
}
"""
SOURCE = CUDA_SOURCE + cg.CUDA_SOURCE + bfgs.CUDA_SOURCE     # one module: every method's kernels
CUDA_RESULTS = {**cg.CUDA_RESULTS, **bfgs.CUDA_RESULTS}         # float64 results of CupyOps.call


def kernel_signatures(source: str) -> dict[str, list[tuple[str, str]]]:
    """{name: [(type, argument name)]} of each templated __global__ kernel in ``source``."""
    found = {}
    for m in re.finditer(r"template <typename T>\s*__global__ void (\w+)\((.*?)\)\s*\{",
                         source, re.S):
        params = [p.strip().rsplit(" ", 1) for p in " ".join(m.group(2).split()).split(",")]
        found[m.group(1)] = [(t.strip(), n.strip()) for t, n in params]
    return found


SIGNATURES = kernel_signatures(SOURCE)


def two_loop_launches(g, S, Y, rho, order, gamma, d, dots, alpha):
    """The CUDA two-loop recursion as a sequence of (kernel, args) launches; ``dots``
    (2k+1 float64, zeroed) and ``alpha`` (k float64) are device scratch."""
    k, n = len(order), g.size
    if k == 0:
        yield "lbfgs_scaled_descent", (n, float(gamma), g, d)
        return
    yield "lbfgs_start", (n, g, S[order[k - 1]], d, dots[0:])
    for step, j in enumerate(range(k - 1, -1, -1)):           # newest .. oldest
        w = S[order[j - 1]] if j > 0 else Y[order[j]]
        yield "lbfgs_down", (n, float(rho[order[j]]), dots[step:], alpha[j:], Y[order[j]], w, d,
                             dots[step + 1:])
    for j in range(k):                                        # oldest .. newest
        last = j == k - 1
        w = S[order[j]] if last else Y[order[j + 1]]
        yield "lbfgs_up", (n, float(rho[order[j]]), float(gamma) if j == 0 else 1.0,
                           -1.0 if last else 1.0, dots[k + j:], alpha[j:], S[order[j]], w, d,
                           dots[k + j + 1:])


class CupyOps:
    """L-BFGS operations on CuPy arrays with the kernels above (one module per dtype)."""

    BLOCK = 256

    def __init__(self, n: int, dtype: np.dtype) -> None:
        import cupy

        self.cp = self.xp = cupy
        self.dtype = np.dtype(dtype)
        ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[self.dtype]
        names = [f"{k}<{ctype}>" for k in SIGNATURES]
        module = cupy.RawModule(code=SOURCE, options=("--fmad=false", "-std=c++14"),
                                name_expressions=names)
        self.kernels = {k: module.get_function(name) for k, name in zip(SIGNATURES, names)}
        self.max_grid = cupy.cuda.Device().attributes["MultiProcessorCount"] * 8
        self.grid = self._grid(n)
        self.pair_out = cupy.zeros(3, np.float64)
        self.scratch = {}

    def _grid(self, work: int) -> int:
        return max(1, min((work + self.BLOCK - 1) // self.BLOCK, self.max_grid))

    def _launch(self, name: str, args, grid: int | None = None) -> None:
        types = {"T": self.dtype.type, "long long": np.int64, "double": np.float64}
        converted = tuple(types[t](a) if t in types else a
                          for (t, _), a in zip(SIGNATURES[name], args))
        self.kernels[name]((grid or self.grid,), (self.BLOCK,), converted)

    def zeros(self, shape):
        return self.cp.zeros(shape, self.dtype)

    def call(self, name: str, *args):
        """kernels.cg's and kernels.bfgs's kernels, as HostOps.call runs them; the float64
        results come back in one copy to the host."""
        if name == "matvec":
            H, g, out = args
            self.cp.matmul(H, g, out=out)
            return None
        n = next(a.size for a in args if getattr(a, "ndim", 0) == 1)
        out = self.cp.zeros(max(CUDA_RESULTS[name], 1), np.float64)
        grid = self._grid(n * n) if name in MATRIX_KERNELS else self.grid
        self._launch(name, (n, *args, out)[:len(SIGNATURES[name])], grid)
        if CUDA_RESULTS[name] == 0:
            return None
        values = tuple(float(v) for v in out.get())
        return values[0] if len(values) == 1 else values

    def two_loop(self, g, S, Y, rho, order, gamma, d) -> None:
        k = len(order)
        if k not in self.scratch:
            self.scratch[k] = (self.cp.zeros(2 * k + 1, np.float64), self.cp.zeros(max(k, 1), np.float64))
        dots, alpha = self.scratch[k]
        dots.fill(0)
        for name, args in two_loop_launches(g, S, Y, rho, [int(o) for o in order], gamma, d,
                                            dots, alpha):
            self._launch(name, args)

    def update_pair(self, x_new, x, g_new, g, s, y) -> tuple[float, float, float]:
        self.pair_out.fill(0)
        self._launch("lbfgs_pair", (x.size, x_new, x, g_new, g, s, y, self.pair_out))
        sy, yy, gmax = self.pair_out.get()         # the one host sync of an iteration's update
        return float(sy), float(yy), float(gmax)

    def step(self, out, x, a: float, d) -> None:
        self._launch("lbfgs_step", (x.size, float(a), x, d, out))

    def dot(self, a, b) -> float:
        return float(self.cp.dot(a, b))

    def max_abs(self, a) -> float:
        return float(self.cp.max(self.cp.abs(a))) if a.size else 0.0
