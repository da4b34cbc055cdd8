"""Conjugate-gradient kernels: the fused passes of nonlinear CG and of Newton-CG's inner,
linear CG, three ways (NumPy reference, Numba, CUDA).

Nonlinear CG (``minimize(method="CG")``), per iteration besides the line search's
x + t d (3n words):

    cg_trial:      at each trial point, one pass reading the gradient fun returned, d
                   and g, writing it into the solver's g_t (4n: the copy the solver
                   makes anyway, with the dots): (g_t.d, g_t.g_t, g_t.g, max|g_t|)
    cg_direction:  d = beta d - g, returning g.d; reads g, d, writes d (3n)

The trial pass gives every beta (FR: g_t.g_t/g.g; PR+: max(0, (g_t.g_t - g_t.g)/g.g);
HS: (g_t.g_t - g_t.g)/(g_t.d - g.d)), the stopping test's max|g| and the
sufficient-descent test (g_t.d_new = beta g_t.d - g_t.g_t) with no other pass.

Linear CG for H z = -g inside Newton-CG, per inner iteration besides the product H p:

    cg_start:      z = 0, r = g, p = -g; returns (g.g, sum|g|)
    fd_hessp:      Hp = (g(x + eps p) - g) / eps, returning p.Hp (one pass, when no
                   Hessian is given); with hessp or hess, p.Hp is a plain dot
    cg_advance:    z += alpha p; r += alpha Hp; returns (r.r, sum|r|)
    cg_direction:  p = beta p - r (the pass above)
    dot_l1:        (a.b, sum|b|): the search direction's g.d and |d|_1 together

Dot products and norms accumulate in float64 whatever the array dtype; scalars that
multiply arrays come in the array dtype.
"""
from __future__ import annotations

import numpy as np

from ._cpu import prange


def _f64(a):
    return a.astype(np.float64, copy=False)


def _max_abs(a) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


# -- (1) NumPy reference -----------------------------------------------------------------
def cg_trial_reference(g_src, d, g, g_t):
    """g_t = g_src; returns (g_t.d, g_t.g_t, g_t.g, max|g_t|)."""
    g_t[...] = g_src
    g64 = _f64(g_t)
    return (float(np.dot(g64, _f64(d))), float(np.dot(g64, g64)), float(np.dot(g64, _f64(g))),
            _max_abs(g_t))


def cg_direction_reference(g, d, beta):
    """d = beta d - g; returns g.d."""
    np.multiply(d, beta, out=d)
    np.subtract(d, g, out=d)
    return float(np.dot(_f64(g), _f64(d)))


def cg_start_reference(g, z, r, p):
    """z = 0, r = g, p = -g; returns (g.g, sum|g|)."""
    z.fill(0)
    r[...] = g
    np.negative(g, out=p)
    g64 = _f64(g)
    return float(np.dot(g64, g64)), float(np.sum(np.abs(g64)))


def fd_hessp_reference(g_eps, g, eps, p, hp):
    """Hp = (g_eps - g) / eps; returns p.Hp."""
    np.subtract(g_eps, g, out=hp)
    np.divide(hp, eps, out=hp)
    return float(np.dot(_f64(p), _f64(hp)))


def cg_advance_reference(z, r, p, hp, alpha):
    """z += alpha p; r += alpha Hp; returns (r.r, sum|r|)."""
    z += alpha * p
    r += alpha * hp
    r64 = _f64(r)
    return float(np.dot(r64, r64)), float(np.sum(np.abs(r64)))


def dot_l1_reference(a, b):
    """(a.b, sum|b|)."""
    b64 = _f64(b)
    return float(np.dot(_f64(a), b64)), float(np.sum(np.abs(b64)))


REFERENCE = {"cg_trial": cg_trial_reference, "cg_direction": cg_direction_reference,
             "cg_start": cg_start_reference, "fd_hessp": fd_hessp_reference,
             "cg_advance": cg_advance_reference, "dot_l1": dot_l1_reference}


# -- (2) Numba CPU kernels ----------------------------------------------------------------
def cg_trial_numba(g_src, d, g, g_t):
    gd = 0.0
    gg = 0.0
    gq = 0.0
    gmax = 0.0
    for i in prange(g_t.size):
        g_t[i] = g_src[i]
        gi = np.float64(g_src[i])
        gd += gi * d[i]
        gg += gi * gi
        gq += gi * g[i]
        gmax = max(gmax, abs(gi))
    return gd, gg, gq, gmax


def cg_direction_numba(g, d, beta):
    gd = 0.0
    for i in prange(g.size):
        di = d[i] * beta - g[i]
        d[i] = di
        gd += np.float64(g[i]) * di
    return gd


def cg_start_numba(g, z, r, p):
    gg = 0.0
    l1 = 0.0
    for i in prange(g.size):
        gi = g[i]
        z[i] = 0
        r[i] = gi
        p[i] = -gi
        gg += np.float64(gi) * gi
        l1 += abs(np.float64(gi))
    return gg, l1


def fd_hessp_numba(g_eps, g, eps, p, hp):
    php = 0.0
    for i in prange(g.size):
        hi = (g_eps[i] - g[i]) / eps
        hp[i] = hi
        php += np.float64(p[i]) * hi
    return php


def cg_advance_numba(z, r, p, hp, alpha):
    rr = 0.0
    l1 = 0.0
    for i in prange(z.size):
        z[i] += alpha * p[i]
        ri = r[i] + alpha * hp[i]
        r[i] = ri
        rr += np.float64(ri) * ri
        l1 += abs(np.float64(ri))
    return rr, l1


def dot_l1_numba(a, b):
    ab = 0.0
    l1 = 0.0
    for i in prange(a.size):
        bi = np.float64(b[i])
        ab += a[i] * bi
        l1 += abs(bi)
    return ab, l1


NUMBA_KERNELS = {"cg_trial": cg_trial_numba, "cg_direction": cg_direction_numba,
                 "cg_start": cg_start_numba, "fd_hessp": fd_hessp_numba,
                 "cg_advance": cg_advance_numba, "dot_l1": dot_l1_numba}


# -- (3) CUDA kernels (appended to kernels.lbfgs.CUDA_SOURCE: block_sum, GRID_STRIDE) ---------
CUDA_SOURCE = r"""
// g_t = g_src; (g_t.d, g_t.g_t, g_t.g) added to out[0..2]; max|g_t| into out[3]
template <typename T>
__global__ void cg_trial(long long n, const T* g_src, const T* d, const T* g, T* gt,
                         double* out) {
    double gd = 0.0, gg = 0.0, gq = 0.0, gmax = 0.0;
    GRID_STRIDE(i, n) {
        gt[i] = g_src[i];
        double gi = g_src[i];
        gd += gi * d[i];
        gg += gi * gi;
        gq += gi * g[i];
        gmax = fmax(gmax, fabs(gi));
    }
    gd = block_sum(gd);
    gg = block_sum(gg);
    gq = block_sum(gq);
    gmax = block_max(gmax);
    if (threadIdx.x == 0) {
        atomicAdd(out, gd); atomicAdd(out + 1, gg); atomicAdd(out + 2, gq);
        max_into(out + 3, gmax);
    }
}

// d = beta d - g; out += g.d
template <typename T>
__global__ void cg_direction(long long n, const T* g, T* d, T beta, double* out) {
    double acc = 0.0;
    GRID_STRIDE(i, n) { T di = d[i] * beta - g[i]; d[i] = di; acc += (double)g[i] * di; }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(out, acc);
}

// z = 0, r = g, p = -g; out += (g.g, sum|g|)
template <typename T>
__global__ void cg_start(long long n, const T* g, T* z, T* r, T* p, double* out) {
    double gg = 0.0, l1 = 0.0;
    GRID_STRIDE(i, n) {
        T gi = g[i];
        z[i] = 0; r[i] = gi; p[i] = -gi;
        gg += (double)gi * gi;
        l1 += fabs((double)gi);
    }
    gg = block_sum(gg);
    l1 = block_sum(l1);
    if (threadIdx.x == 0) { atomicAdd(out, gg); atomicAdd(out + 1, l1); }
}

// Hp = (g_eps - g) / eps; out += p.Hp
template <typename T>
__global__ void fd_hessp(long long n, const T* g_eps, const T* g, T eps, const T* p, T* hp,
                         double* out) {
    double acc = 0.0;
    GRID_STRIDE(i, n) { T hi = (g_eps[i] - g[i]) / eps; hp[i] = hi; acc += (double)p[i] * hi; }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(out, acc);
}

// z += alpha p; r += alpha Hp; out += (r.r, sum|r|)
template <typename T>
__global__ void cg_advance(long long n, T* z, T* r, const T* p, const T* hp, T alpha,
                           double* out) {
    double rr = 0.0, l1 = 0.0;
    GRID_STRIDE(i, n) {
        z[i] += alpha * p[i];
        T ri = r[i] + alpha * hp[i];
        r[i] = ri;
        rr += (double)ri * ri;
        l1 += fabs((double)ri);
    }
    rr = block_sum(rr);
    l1 = block_sum(l1);
    if (threadIdx.x == 0) { atomicAdd(out, rr); atomicAdd(out + 1, l1); }
}

// out += (a.b, sum|b|)
template <typename T>
__global__ void dot_l1(long long n, const T* a, const T* b, double* out) {
    double ab = 0.0, l1 = 0.0;
    GRID_STRIDE(i, n) { double bi = b[i]; ab += a[i] * bi; l1 += fabs(bi); }
    ab = block_sum(ab);
    l1 = block_sum(l1);
    if (threadIdx.x == 0) { atomicAdd(out, ab); atomicAdd(out + 1, l1); }
}
"""
# Each CUDA kernel takes (n, the host version's arguments in order, out) and adds its
# results into out: this many float64 slots
CUDA_RESULTS = {"cg_trial": 4, "cg_direction": 1, "cg_start": 2, "fd_hessp": 1,
                "cg_advance": 2, "dot_l1": 2}
