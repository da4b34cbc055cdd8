"""The CuPy bucket kernels compiled for the CPU with the system C++ compiler.

Each rule variant's CUDA kernel (kernels/_gpu.py: the very source cupy.RawKernel gets)
is compiled with the few CUDA spellings shimmed, in one shared library, beside a launcher
that runs its grid one block and thread at a time; ``TwinBackend`` drives it through the
same ``BucketLaunch`` (tables, chunks, argument order) the cupy backend uses, with host
arrays for device arrays. A typo or a math error in a GPU kernel, or a wrong table or
chunk, therefore fails CI, which has no GPU.
"""
from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from fastopt.backends import FlatGrads, HostBackend
from fastopt.kernels._gpu import (BucketLaunch, CudaSource, kernel_source, multi_tensor_name,
                                  multi_tensor_params, multi_tensor_source)
from fastopt.kernels._gpu_precision import (StorageLaunch, StorageSource, storage_module,
                                            storage_source)
from fastopt.kernels._reduce import (DeviceBucketSum, DeviceNorms, cuda_ctype, cuda_sources,
                                     norms_cuda_sources)

SHIM = """\
#include <cmath>
using std::sqrt;
using std::fabs;
using std::isinf;
#define __device__
#define __forceinline__ inline
"""
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# no contraction into fused multiply-adds, IEEE semantics: round like NumPy (and the GPU
# with --fmad=false)
FLAGS = ["-O2", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC"]


def compiler() -> str | None:
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def build_library(code: str, build_dir: Path, stem: str) -> ctypes.CDLL:
    """Compile ``code`` into a shared library (cached by its hash) and load it."""
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    lib = build_dir / f"{stem}_{digest}.so"
    if not lib.exists():
        src = build_dir / f"{stem}_{digest}.cpp"
        src.write_text(code)
        subprocess.run([compiler(), *FLAGS, str(src), "-o", str(lib)], check=True,
                       capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


# The grid, run one (block, thread) at a time: every thread sees its own indices.
GRID_SHIM = """\
struct Dim3 { unsigned x; };
static Dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
"""


def launcher_source(source: CudaSource, dtype: np.dtype) -> str:
    """The bucket kernel of ``source`` for ``dtype`` and an extern "C" launcher that runs
    its grid on the CPU, in a namespace of its own (its typedef and macros stay there)."""
    name = multi_tensor_name(source, dtype)
    params = multi_tensor_params(source)
    args = ", ".join(p.rsplit(" ", 1)[1] for p in params)
    lines = [f"namespace {name}_ns {{", multi_tensor_source(source, dtype),
             f'extern "C" void {name}_launch(unsigned grid, unsigned block, {", ".join(params)}) {{',
             "    gridDim.x = grid; blockDim.x = block;",
             "    for (unsigned b = 0; b < grid; ++b)",
             "        for (unsigned t = 0; t < block; ++t) {",
             f"            blockIdx.x = b; threadIdx.x = t; {name}({args});",
             "        }", "}", "}"]
    lines += [f"#undef {line.split()[1]}" for line in source.preamble.splitlines()
              if line.startswith("#define")]
    return "\n".join(lines)


class Twin:
    """The bucket kernels of a set of (rule, hp) variants compiled for the CPU;
    ``launcher(source, dtype)`` gives ``launch(grid, block, args)`` as cupy's RawKernel
    takes it (host arrays for device arrays, NumPy scalars by value)."""

    def __init__(self, variants, build_dir: Path) -> None:
        parts = [SHIM, GRID_SHIM]
        seen = set()
        for rule, hp in variants:
            if rule.whole is not None:        # its own kernels: TwinBackend.whole_kernel
                continue
            source = kernel_source(rule, rule.variant(hp), hp)
            for dtype in CTYPES:
                if (source, dtype) not in seen:
                    seen.add((source, dtype))
                    parts.append(launcher_source(source, dtype))
        self.lib = build_library("\n\n".join(parts), build_dir, "cuda_twin")
        self.build_dir = build_dir

    def launcher(self, source: CudaSource, dtype: np.dtype):
        fn = getattr(self.lib, multi_tensor_name(source, dtype) + "_launch")
        scalar = ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double
        fn.restype = None

        def launch(grid, block, args):
            converted = []
            for a in args:
                if isinstance(a, np.ndarray):
                    assert a.flags.c_contiguous
                    converted.append(ctypes.c_void_p(a.ctypes.data))
                else:
                    assert isinstance(a, np.generic) and a.dtype == dtype, a
                    converted.append(scalar(a))
            fn(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), *converted)

        return launch


class HostAddresses(FlatGrads):
    """The grads' host addresses, as DeviceGradAddresses gives device ones."""

    def resolve(self, grads):
        return np.array([g.ctypes.data for g in super().resolve(grads)], dtype=np.uint64)


class TwinBackend(HostBackend):
    """NumPy arrays updated by the CUDA bucket kernels compiled for the CPU, through the
    same BucketLaunch (tables, chunking, argument order) the cupy backend uses."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin

    def grads_resolver(self, owner, params, order, labels, spans, roots):
        return HostAddresses(self, owner, params, order, labels, spans, roots)

    def bucket_kernel(self, rule, hp, params, state, offsets, storage=None):
        if storage is not None:
            return self.storage_kernel(rule, hp, params, state, storage)
        source = kernel_source(rule, rule.variant(hp), hp)
        used = [state[rule.state.index(s)] for s in source.out_params[1:]]
        return BucketLaunch(self.twin.launcher(source, params[0].dtype), np, source,
                            [p.ctypes.data for p in params], [p.size for p in params], used)

    def bucket_sumsq(self, params, storage=None):
        """kernels/_reduce.py's CUDA sum of squares, compiled for the CPU."""
        launches = [storage_launcher(s, self.twin.build_dir)
                    for s in cuda_sources(cuda_ctype(params[0].dtype))]
        return DeviceBucketSum(launches, np, [p.size for p in params], lambda a: a)

    def bucket_norms(self, rule, hp, params, state, offsets):
        """kernels/_reduce.py's CUDA first pass of a PerTensor rule, compiled for the CPU."""
        launches = [storage_launcher(s, self.twin.build_dir) for s in norms_cuda_sources(
            rule, rule.variant(hp), hp, cuda_ctype(params[0].dtype))]
        used = [state[rule.state.index(s)] for s in rule.state_used(hp)]
        return DeviceNorms(launches, np, len(rule.per_tensor.norms),
                           [p.ctypes.data for p in params], [p.size for p in params], used,
                           lambda a: a)

    def whole_kernel(self, rule, hp, params, shapes, state):
        """A whole-param rule's CUDA kernels (kernels/_rule.py: WholeParam), compiled for
        the CPU, run by the rule's own launch sequence."""
        launches = [storage_launcher(s, self.twin.build_dir)
                    for s in rule.whole.cuda_sources(cuda_ctype(params[0].dtype))]
        return rule.whole.device(launches, np, [p.ctypes.data for p in params], shapes,
                                 state, params[0].dtype, lambda a: a)

    def storage_kernel(self, rule, hp, params, state, storage):
        """A 16-bit or 8-bit bucket: kernels/_gpu_precision.py's kernel, compiled for the
        CPU on first use (one library a kernel, cached by its source's hash)."""
        source = storage_source(rule, rule.variant(hp), hp, (
            storage.kind, storage.state_kind, storage.master.size > 0, storage.stochastic))
        named = dict(zip(rule.state, state))
        scales = dict(zip(rule.state, storage.scales))
        return StorageLaunch(storage_launcher(source, self.twin.build_dir), np, source,
                             [p.ctypes.data for p in params], [p.size for p in params],
                             storage.positions, named, scales, storage.master, storage.rng)


TWIN_BITS = """\
#include <cstring>
static inline float uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline unsigned float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
"""
ARGS = {np.dtype(np.uint64): ctypes.c_uint64, np.dtype(np.int64): ctypes.c_int64,
        np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}


def storage_launcher(source: StorageSource, build_dir: Path):
    """``launch(grid, block, args)`` of a storage kernel compiled for the CPU: its grid
    run one (block, thread) at a time; arrays by address, NumPy scalars by value."""
    params = [line.strip().rstrip(",").rstrip(") {") for line in
              source.code.split("(", 1)[1].split(") {", 1)[0].split(",")]
    names = ", ".join(p.rsplit(" ", 1)[1].lstrip("*") for p in params)
    code = "\n".join([SHIM, GRID_SHIM, storage_module([source], TWIN_BITS),
                      f'extern "C" void launch_it(unsigned grid, unsigned block, '
                      f'{", ".join(params)}) {{',
                      "    gridDim.x = grid; blockDim.x = block;",
                      "    for (unsigned b = 0; b < grid; ++b)",
                      "        for (unsigned t = 0; t < block; ++t) {",
                      f"            blockIdx.x = b; threadIdx.x = t; {source.name}({names});",
                      "        }", "}"])
    fn = build_library(code, build_dir, source.name).launch_it
    fn.restype = None

    def launch(grid, block, args):
        converted = [ctypes.c_void_p(a.ctypes.data) if isinstance(a, np.ndarray)
                     else ARGS[a.dtype](a) for a in args]
        fn(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), *converted)
    return launch


def on_twin(opt, twin: Twin):
    """``opt`` (a numpy-backend optimizer) moved onto the twin's kernels, state kept."""
    opt._backend = TwinBackend(twin)
    for group in opt._groups:
        group.buckets = opt._buckets(group, {b.key: b.state for b in group.buckets})
    opt._rebuild_resolver()
    return opt


# -- the L-BFGS CUDA kernels on the CPU: one block of one thread ---------------------------
LBFGS_SHIM = """\
#include <cmath>
#include <cstring>
struct Dim3 { unsigned x; };
static const Dim3 threadIdx = {0}, blockIdx = {0}, blockDim = {1}, gridDim = {1};
#define __global__
#define __device__
#define __shared__ static
static inline void __syncthreads() {}
static inline double atomicAdd(double* p, double v) { double old = *p; *p += v; return old; }
static inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
    unsigned long long old = *p; if (v > old) *p = v; return old; }
static inline long long __double_as_longlong(double x) { long long r; std::memcpy(&r, &x, 8); return r; }
using std::fmax;
using std::fabs;
"""
ARG_TYPES = {"long long": ctypes.c_longlong, "double": ctypes.c_double}


class LbfgsTwin:
    """kernels.lbfgs.SOURCE (the CUDA kernels of every minimize method) compiled for the
    CPU, driven by the same launch sequence as the GPU (kernels.lbfgs.two_loop_launches,
    and CupyOps.call's argument order)."""

    def __init__(self, build_dir: Path) -> None:
        from fastopt.kernels.lbfgs import SIGNATURES, SOURCE

        self.signatures = SIGNATURES
        wrappers = []
        for name, params in self.signatures.items():
            for ctype in CTYPES.values():
                decl = ", ".join(f"{t.replace('T', ctype) if t.startswith(('T', 'const T')) else t} {n}"
                                 for t, n in params)
                call = ", ".join(n for _, n in params)
                wrappers.append(f'extern "C" void {name}_{ctype}({decl}) {{ {name}<{ctype}>({call}); }}')
        self.lib = build_library(LBFGS_SHIM + SOURCE + "\n" + "\n".join(wrappers),
                                 build_dir, "lbfgs_twin")

    def launch(self, name: str, args, dtype) -> None:
        ctype = CTYPES[np.dtype(dtype)]
        fn = getattr(self.lib, f"{name}_{ctype}")
        converted = []
        for (t, _), a in zip(self.signatures[name], args):
            if t in ARG_TYPES:
                converted.append(ARG_TYPES[t](a))
            elif t == "T":
                converted.append(ctypes.c_float(a) if ctype == "float" else ctypes.c_double(a))
            else:
                assert a.flags.c_contiguous
                converted.append(ctypes.c_void_p(a.ctypes.data))
        fn(*converted)

    def two_loop(self, g, S, Y, rho, order, gamma, d) -> None:
        from fastopt.kernels.lbfgs import two_loop_launches

        k = len(order)
        dots, alpha = np.zeros(2 * k + 1), np.zeros(max(k, 1))
        for name, args in two_loop_launches(g, S, Y, rho, [int(o) for o in order], gamma, d,
                                            dots, alpha):
            self.launch(name, args, g.dtype)

    def update_pair(self, x_new, x, g_new, g, s, y):
        out = np.zeros(3)
        self.launch("lbfgs_pair", (x.size, x_new, x, g_new, g, s, y, out), x.dtype)
        return float(out[0]), float(out[1]), float(out[2])

    def step(self, out, x, a, d) -> None:
        self.launch("lbfgs_step", (x.size, a, x, d, out), x.dtype)

    def call(self, name: str, *args):
        """kernels.cg's and kernels.bfgs's CUDA kernels, as CupyOps.call launches them."""
        from fastopt.kernels.lbfgs import CUDA_RESULTS

        if name == "matvec":
            H, g, out = args
            np.matmul(H, g, out=out)
            return None
        n = next(a.size for a in args if getattr(a, "ndim", 0) == 1)
        dtype = next(a.dtype for a in args if isinstance(a, np.ndarray))
        out = np.zeros(max(CUDA_RESULTS[name], 1))
        self.launch(name, (n, *args, out)[:len(self.signatures[name])], dtype)
        if CUDA_RESULTS[name] == 0:
            return None
        values = tuple(float(v) for v in out)
        return values[0] if len(values) == 1 else values
