"""BFGS kernels: the dense inverse-Hessian update as one pass over the (n, n) matrix.

    H+ = (I - rho s y^T) H (I - rho y s^T) + rho s s^T,        rho = 1 / s.y
       = H + s u^T + u s^T,          u = (rho^2 y.Hy + rho)/2 s - rho Hy

so once Hy is known the update is a symmetric rank-two update that reads and writes H
once (SciPy forms it with two n^3 matrix products). Hy needs no product of its own:
H g_old = -d (the direction), so Hy = H g_new + d, and the next direction needs none
either: H+ g_new = H g_new + s (u.g_new) + u (s.g_new). One matrix-vector product
(``matvec``, BLAS or cuBLAS on the reference and GPU paths) and one rank-two pass per
iteration: 3 n^2 words moved.
"""
from __future__ import annotations

import numpy as np

from ._cpu import prange

ROW_BLOCK_ELEMENTS = 1 << 16     # the reference's temporaries: at most this many elements


# -- (1) NumPy reference -----------------------------------------------------------------
def rank_two_reference(H, s, u):
    """H += s u^T + u s^T, a block of rows at a time."""
    n = s.size
    rows = max(1, ROW_BLOCK_ELEMENTS // max(n, 1))
    for i in range(0, n, rows):
        block = slice(i, i + rows)
        H[block] += np.outer(s[block], u) + np.outer(u[block], s)


def matvec_reference(H, g, out):
    """out = H g."""
    np.dot(H, g, out=out)


REFERENCE = {"rank_two": rank_two_reference, "matvec": matvec_reference}


# -- (2) Numba CPU kernels (parallel over rows) ---------------------------------------------
def rank_two_numba(H, s, u):
    n = s.size
    for i in prange(n):
        si, ui = s[i], u[i]
        for j in range(n):
            H[i, j] += si * u[j] + ui * s[j]


def matvec_numba(H, g, out):
    n = g.size
    for i in prange(n):
        acc = 0.0
        for j in range(n):
            acc += np.float64(H[i, j]) * g[j]
        out[i] = acc


NUMBA_KERNELS = {"rank_two": rank_two_numba, "matvec": matvec_numba}


# -- (3) CUDA (the product is cuBLAS's: cupy's matmul) ------------------------------------
CUDA_SOURCE = r"""
// H += s u^T + u s^T over the n x n elements of H
template <typename T>
__global__ void rank_two(long long n, T* H, const T* s, const T* u) {
    GRID_STRIDE(k, n * n) {
        long long i = k / n, j = k - i * n;
        H[k] += s[i] * u[j] + u[i] * s[j];
    }
}
"""
CUDA_RESULTS = {"rank_two": 0}
