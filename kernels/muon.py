"""Muon (Jordan et al. 2024) as torch.optim.Muon computes it: momentum orthogonalised by a
quintic Newton-Schulz iteration, for matrices (2-D params) only.

    buf = lerp(buf, g, 1 - momentum)                      (buf starts at 0)
    u   = lerp(g, buf, momentum) if nesterov else buf
    X   = u (its transpose if m > n);   X = X / max(||X||_F, eps)
    ns_steps times:   A = X Xᵀ;   X = a X + (b A + c A²) X
    p   = p*(1 - lr*wd) - lr*ratio * X                   (X transposed back)
    ratio = sqrt(max(1, m/n))   (adjust_lr_fn None or "original")
            0.2*sqrt(max(m, n)) ("match_rms_adamw")

The iteration's matrix products are BLAS's (NumPy's matmul on the CPU, cuBLAS through CuPy
on the GPU) in the params' dtype; the elementwise steps around them are fused kernels
(numba, CUDA). torch runs the iteration in bfloat16 (on a CPU without bfloat16 arithmetic,
slowly): the two differ by bfloat16's rounding (under 5% of the params' movement over five
steps, tests/test_muon.py).
||X||_F is float64.
"""
from __future__ import annotations

import math

import numpy as np

from . import _rule as r
from ._cpu import cast_like, lerp_in_dtype, scalar_helper
from ._whole import array_at, state_views

HYPERPARAMS = (r.lr(1e-3), r.weight_decay(0.1, decoupled=True),
               r.nonnegative("momentum", 0.95, "buf = lerp(buf, g, 1 - momentum)"),
               r.flag("nesterov", True, "step along lerp(g, buf, momentum) rather than buf"),
               r.Hyper("ns_coefficients", (3.4445, -4.7750, 2.0315), "triple",
                       "(a, b, c) of the iteration X = aX + (bA + cA²)X, A = XXᵀ"),
               r.nonnegative("eps", 1e-7, "X is divided by max(||X||, eps)"),
               r.Hyper("ns_steps", 5, "iterations", "Newton-Schulz iterations (0-99)"),
               r.Hyper("adjust_lr_fn", None, "choice", "the lr's scale per shape: None or "
                       "'original' sqrt(max(1, m/n)), 'match_rms_adamw' 0.2*sqrt(max(m, n))"))
STATE = ("buf",)
SCALARS = ("lr", "keep", "momentum", "one_minus_momentum", "nesterov", "a", "b", "c", "eps",
           "steps", "match_adamw")


def host_scalars(hp, t, lr, extra):
    a, b, c = hp["ns_coefficients"]
    return (lr, 1.0 - lr * hp["weight_decay"], hp["momentum"], 1.0 - hp["momentum"],
            float(hp["nesterov"]), a, b, c, hp["eps"], float(hp["ns_steps"]),
            float(hp["adjust_lr_fn"] == "match_rms_adamw")), extra


def lr_ratio(shape, match_adamw):
    m, n = shape
    return 0.2 * math.sqrt(max(m, n)) if match_adamw else math.sqrt(max(1.0, m / n))


def orthogonalized(u, s, xp):
    """The Newton-Schulz iteration on u (BLAS's products, in u's dtype)."""
    lr, keep, momentum, one_minus_momentum, nesterov, a, b, c, eps, steps, match = s
    x = u.T if u.shape[0] > u.shape[1] else u
    wide = x.astype(np.float64)
    norm = math.sqrt(float(xp.vdot(wide, wide)))
    x = x / x.dtype.type(max(norm, float(eps)))
    for _ in range(int(steps)):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if u.shape[0] > u.shape[1] else x


def step(p, g, buf, s, gscale, ops):
    """One param's step: ``ops`` the backend's elementwise parts (momentum, apply), ``xp``
    its array module; g as given (read times gscale)."""
    u = ops.momentum(g, buf, s, gscale)
    x = orthogonalized(u, s, ops.xp)
    ratio = lr_ratio(p.shape, s[-1])
    ops.apply(p, x, s[1], p.dtype.type(float(s[0]) * ratio))


# -- the elementwise parts: NumPy, numba, CUDA ----------------------------------------------
class NumpyOps:
    xp = np

    @staticmethod
    def momentum(g, buf, s, gscale):
        lr, keep, momentum, one_minus_momentum, nesterov = s[:5]
        g = g * gscale if gscale != 1 else g
        buf[...] = r.lerp(buf, g, one_minus_momentum)
        return r.lerp(g, buf, momentum) if nesterov else buf.copy()

    @staticmethod
    def apply(p, x, keep, lr):
        p *= keep
        p -= lr * x


def reference(p, g, buf, scalars):
    """NumPy reference for one param (g after the common start), in place."""
    step(p, g, buf, scalars, 1, NumpyOps)


@scalar_helper
def cpu_momentum(g, buf, u, gscale, momentum, one_minus_momentum, nesterov):
    """Numba: buf and u of flat arrays."""
    one = cast_like(1.0, momentum)
    for i in range(g.size):
        gi = g[i] * gscale
        b = lerp_in_dtype(buf[i], gi, one_minus_momentum, one)
        buf[i] = b
        u[i] = lerp_in_dtype(gi, b, momentum, one) if nesterov else b


@scalar_helper
def cpu_apply(p, x, keep, lr):
    """Numba: p = p*keep - lr*x (x of any strides)."""
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            p[i, j] = p[i, j] * keep - lr * x[i, j]


class NumbaOps:
    xp = np

    @staticmethod
    def compile(dtype):
        """Compile (or load from numba's cache) both kernels for ``dtype`` now, so that no
        step waits for the JIT."""
        one, block = np.ones(1, dtype), np.ones((1, 1), dtype)
        cpu_momentum(one, one.copy(), one.copy(), one[0], one[0], one[0], True)
        cpu_apply(block, block.copy(), one[0], one[0])

    @staticmethod
    def momentum(g, buf, s, gscale):
        u = np.empty_like(buf)
        cpu_momentum(g.ravel(), buf.ravel(), u.ravel(), gscale, s[2], s[3], s[4] != 0)
        return u

    @staticmethod
    def apply(p, x, keep, lr):
        cpu_apply(p, x, keep, lr)


LERP = "({w} < (T)0.5 ? {a} + {w} * ({b} - {a}) : {b} - ({b} - {a}) * ((T)1 - {w}))"
CUDA_KERNELS = {
    "momentum": ("const T* g, T* buf, T* u, long long n, T gscale, T momentum, "
                 "T one_minus_momentum, T nesterov", """
    if (i >= n) return;
    const T gi = g[i] * gscale, a = buf[i];
    const T b = """ + LERP.format(a="a", b="gi", w="one_minus_momentum") + """;
    buf[i] = b;
    u[i] = nesterov != 0 ? """ + LERP.format(a="gi", b="b", w="momentum") + " : b;"),
    "apply": ("T* p, const T* x, long long rows, long long cols, long long x_row, "
              "long long x_col, T keep, T lr", """
    if (i >= rows * cols) return;
    p[i] = p[i] * keep - lr * x[(i / cols) * x_row + (i % cols) * x_col];"""),
}


def cuda_sources(ctype):
    """The two elementwise kernels for params of C type ``ctype`` (one thread an element)."""
    from ._gpu_precision import StorageSource

    out = []
    for name, (args, body) in CUDA_KERNELS.items():
        kernel = f"fastopt_muon_{name}_{ctype}"
        code = "\n".join([f"typedef {ctype} T;", f'extern "C" __global__ void {kernel}(',
                          f"        {args}) {{", "    const long long i = (long long)blockIdx.x"
                          " * blockDim.x + threadIdx.x;" + body, "}"])
        out.append(StorageSource(kernel, code, (), (), False))
    return out


class DeviceOps:
    """The elementwise parts as the CUDA kernels (``launches``: momentum, apply)."""

    BLOCK = 128

    def __init__(self, launches, xp):
        self.launches, self.xp = launches, xp

    def momentum(self, g, buf, s, gscale):
        u = self.xp.empty_like(buf)
        self.launches[0]((-(-g.size // self.BLOCK),), (self.BLOCK,),
                         (g, buf, u, np.int64(g.size), gscale, s[2], s[3], s[4]))
        return u

    def apply(self, p, x, keep, lr):
        row, col = (stride // x.itemsize for stride in x.strides)
        self.launches[1]((-(-p.size // self.BLOCK),), (self.BLOCK,),
                         (p, x, np.int64(p.shape[0]), np.int64(p.shape[1]), np.int64(row),
                          np.int64(col), keep, lr))


class DeviceStep:
    """``f(grad addresses, scalars)`` on the GPU (``xp``: cupy, or numpy for the C++ twin):
    per param the momentum kernel, the iteration with ``xp``'s matmul, the apply kernel."""

    def __init__(self, launches, xp, addresses, shapes, state, dtype, stage):
        self.params = [array_at(xp, a, s, dtype) for a, s in zip(addresses, shapes)]
        self.bufs = [v["buf"] for v in state_views(RULE, shapes, state)]
        self.ops, self.xp, self.dtype = DeviceOps(launches, xp), xp, np.dtype(dtype)

    def __call__(self, addresses, scalars):
        s, gscale = scalars[:len(SCALARS)], scalars[len(SCALARS)]
        for p, buf, address in zip(self.params, self.bufs, addresses):
            if p.size:
                step(p, array_at(self.xp, int(address), p.shape, self.dtype), buf, s, gscale,
                     self.ops)


RULE = r.Rule("muon", "Muon", "Muon (Jordan et al. 2024): momentum orthogonalised by "
              "Newton-Schulz iterations, for matrices.", __doc__, HYPERPARAMS, STATE, SCALARS,
              host_scalars, reference, None, "",
              tuned_lr=dict(quadratic=1e-2, rosenbrock=1e-3, logistic=1e-2, digits=2e-2),
              torch_class="Muon", torch_state={"buf": "momentum_buffer"}, torch_step=False,
              whole=r.WholeParam(7, cuda_sources, DeviceStep, host=step,
                                 ops={"numpy": NumpyOps, "numba": NumbaOps}, ndims=(2,)))
