"""BFGS kernels: the dense inverse-Hessian update as one pass over the (n, n) matrix.

    H+ = (I - rho s y^T) H (I - rho y s^T) + rho s s^T,        rho = 1 / s.y
       = H + s u^T + u s^T,          u = (rho^2 y.Hy + rho)/2 s - rho Hy

so once Hy is known the update is a symmetric rank-two update that reads and writes H
once (SciPy forms it with two n^3 matrix products). Hy needs no product of its own:
H g_old = -d (the direction), so Hy = H g_new + d, and the next direction needs none
either: H+ g_new = H g_new + s (u.g_new) + u (s.g_new). An iteration is

    matvec:     hg = H g_new                          (BLAS or cuBLAS; n^2 words)
    bfgs_sums:  s = x_new - x, y = g_new - g, and the seven sums the scalars need:
                (s.y, y.y, y.hg, y.d, s.g_new, hg.g_new, d.g_new)     (8n; one copy to
                the host: the only synchronisation of the update on the GPU)
    bfgs_vectors: u = a s + b (hg + d), d_new = -(c hg + e s + f u)   (5n)
    rank_two:   H = scale H + s u^T + u s^T           (2 n^2; scale: N&W's first scaling)
"""
from __future__ import annotations

import numpy as np

from ._cpu import prange

ROW_BLOCK_ELEMENTS = 1 << 16     # the reference's temporaries: at most this many elements


def _f64(a):
    return a.astype(np.float64, copy=False)


# -- (1) NumPy reference -----------------------------------------------------------------
def rank_two_reference(H, s, u, scale):
    """H = scale H + s u^T + u s^T, a block of rows at a time."""
    n = s.size
    rows = max(1, ROW_BLOCK_ELEMENTS // max(n, 1))
    for i in range(0, n, rows):
        block = slice(i, i + rows)
        if scale != 1:
            H[block] *= scale
        H[block] += np.outer(s[block], u) + np.outer(u[block], s)


def matvec_reference(H, g, out):
    """out = H g."""
    np.dot(H, g, out=out)


def bfgs_sums_reference(x_new, x, g_new, g, hg, d, s, y):
    """s = x_new - x; y = g_new - g; returns (s.y, y.y, y.hg, y.d, s.g_new, hg.g_new,
    d.g_new)."""
    np.subtract(x_new, x, out=s)
    np.subtract(g_new, g, out=y)
    s64, y64, g64 = _f64(s), _f64(y), _f64(g_new)
    return tuple(float(np.dot(a, b)) for a, b in ((s64, y64), (y64, y64), (y64, _f64(hg)),
                                                  (y64, _f64(d)), (s64, g64),
                                                  (_f64(hg), g64), (_f64(d), g64)))


def bfgs_vectors_reference(s, hg, d, a, b, c, e, f, u, d_new):
    """u = a s + b (hg + d); d_new = -(c hg + e s + f u)."""
    u[...] = a * s + b * (hg + d)
    d_new[...] = -(c * hg + e * s + f * u)


REFERENCE = {"rank_two": rank_two_reference, "matvec": matvec_reference,
             "bfgs_sums": bfgs_sums_reference, "bfgs_vectors": bfgs_vectors_reference}


# -- (2) Numba CPU kernels (parallel over rows) ---------------------------------------------
def rank_two_numba(H, s, u, scale):
    n = s.size
    for i in prange(n):
        si, ui = s[i], u[i]
        if scale != 1:
            for j in range(n):
                H[i, j] = scale * H[i, j] + (si * u[j] + ui * s[j])
        else:
            for j in range(n):
                H[i, j] += si * u[j] + ui * s[j]


def matvec_numba(H, g, out):
    n = g.size
    for i in prange(n):
        acc = 0.0
        for j in range(n):
            acc += np.float64(H[i, j]) * g[j]
        out[i] = acc


def bfgs_sums_numba(x_new, x, g_new, g, hg, d, s, y):
    sy = 0.0
    yy = 0.0
    yhg = 0.0
    yd = 0.0
    sg = 0.0
    hgg = 0.0
    dg = 0.0
    for i in prange(x.size):
        si = x_new[i] - x[i]
        yi = g_new[i] - g[i]
        s[i] = si
        y[i] = yi
        s64, y64, g64 = np.float64(si), np.float64(yi), np.float64(g_new[i])
        sy += s64 * y64
        yy += y64 * y64
        yhg += y64 * hg[i]
        yd += y64 * d[i]
        sg += s64 * g64
        hgg += g64 * hg[i]
        dg += g64 * d[i]
    return sy, yy, yhg, yd, sg, hgg, dg


def bfgs_vectors_numba(s, hg, d, a, b, c, e, f, u, d_new):
    for i in prange(s.size):
        ui = a * s[i] + b * (hg[i] + d[i])
        u[i] = ui
        d_new[i] = -(c * hg[i] + e * s[i] + f * ui)


NUMBA_KERNELS = {"rank_two": rank_two_numba, "matvec": matvec_numba,
                 "bfgs_sums": bfgs_sums_numba, "bfgs_vectors": bfgs_vectors_numba}
MATRIX_KERNELS = frozenset({"rank_two", "matvec"})      # they move n^2 elements, not n


# -- (3) CUDA (the product is cuBLAS's: cupy's matmul) ------------------------------------
CUDA_SOURCE = r"""
// H = scale H + s u^T + u s^T over the n x n elements of H
template <typename T>
__global__ void rank_two(long long n, T* H, const T* s, const T* u, T scale, double* out) {
    GRID_STRIDE(k, n * n) {
        long long i = k / n, j = k - i * n;
        T h = scale != (T)1 ? scale * H[k] : H[k];
        H[k] = h + (s[i] * u[j] + u[i] * s[j]);
    }
}

// s = x_new - x; y = g_new - g; out += (s.y, y.y, y.hg, y.d, s.g_new, hg.g_new, d.g_new)
template <typename T>
__global__ void bfgs_sums(long long n, const T* x_new, const T* x, const T* g_new, const T* g,
                          const T* hg, const T* d, T* s, T* y, double* out) {
    double acc[7] = {0, 0, 0, 0, 0, 0, 0};
    GRID_STRIDE(i, n) {
        T si = x_new[i] - x[i], yi = g_new[i] - g[i];
        s[i] = si;
        y[i] = yi;
        double s64 = si, y64 = yi, g64 = g_new[i];
        acc[0] += s64 * y64; acc[1] += y64 * y64; acc[2] += y64 * hg[i]; acc[3] += y64 * d[i];
        acc[4] += s64 * g64; acc[5] += g64 * hg[i]; acc[6] += g64 * d[i];
    }
    for (int k = 0; k < 7; ++k) {
        double total = block_sum(acc[k]);
        if (threadIdx.x == 0) atomicAdd(out + k, total);
    }
}

// u = a s + b (hg + d); d_new = -(c hg + e s + f u)
template <typename T>
__global__ void bfgs_vectors(long long n, const T* s, const T* hg, const T* d, T a, T b, T c,
                             T e, T f, T* u, T* d_new, double* out) {
    GRID_STRIDE(i, n) {
        T ui = a * s[i] + b * (hg[i] + d[i]);
        u[i] = ui;
        d_new[i] = -(c * hg[i] + e * s[i] + f * ui);
    }
}
"""
CUDA_RESULTS = {"rank_two": 0, "bfgs_sums": 7, "bfgs_vectors": 0}
