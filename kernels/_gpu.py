"""CuPy GPU kernels: each rule's CUDA body in one kernel per variant and dtype that updates
a whole bucket of arrays in one launch.

A rule's ``cuda_body`` is C++ for one element: ``g`` and the per-step scalars are inputs
(scalars are kernel arguments, never baked into the source, so one compiled kernel serves
every step), ``p`` and the state arrays the variant uses are in-out references. The
compile-time flags become preprocessor macros (``#if AMSGRAD``), so a variant declares and
touches only its own arrays. cupy compiles a kernel once (cached on disk under
``~/.cupy/kernel_cache``); the backend compiles it when an optimizer is constructed.

``--fmad=false`` keeps a*b+c as a multiply and an add, each rounded, as NumPy does; with
CUDA's default IEEE division and square root the GPU then rounds like the reference.
The same source compiles on the CPU (tests/cuda_twin.py) so CI proves the GPU math.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ._rule import GSCALE

PREAMBLE = """\
template <typename T> __device__ __forceinline__ T nan_max(T a, T b) {
    return (a > b || a != a) ? a : b;   // numpy.maximum: NaN propagates; a tie gives b
}
"""
OPTIONS = ("--fmad=false",)
# Threads per block. cupy's default (128) measured best on an H100 for every rule but plain
# SGD (read p and g, write p): there 256 moved 2.71 TB/s against 2.52 (0.91 vs 0.85 of a
# device copy at 1e8 float32), while the rules that stream 3+ arrays lost 1-3% with 256.
BLOCK_SIZE, BLOCK_SIZE_TWO_ARRAYS = 128, 256


@dataclass(frozen=True)
class CudaSource:
    """What the CUDA kernel of one rule variant is built from."""

    name: str
    in_params: tuple[str, ...]      # "g" then the scalars, all of type T
    out_params: tuple[str, ...]     # "p" then the used state arrays, all of type T
    body: str
    preamble: str
    per_param: tuple[str, ...] = ()     # a PerTensor rule's per-param scalars (an array)

    @property
    def block_size(self) -> int:
        return BLOCK_SIZE_TWO_ARRAYS if len(self.out_params) == 1 else BLOCK_SIZE


def kernel_source(rule: Any, flags: Mapping[str, bool], hp: Mapping[str, Any]) -> CudaSource:
    """The CUDA source of ``rule`` for one variant (its flags and used state)."""
    suffix = "".join(f"_{k}{int(v)}" for k, v in sorted(flags.items()))
    macros = "".join(f"#define {k.upper()} {int(v)}\n" for k, v in sorted(flags.items()))
    return CudaSource(name=f"fastopt_{rule.name}{suffix}",
                      in_params=("g",) + tuple(rule.scalars) + (GSCALE,),
                      out_params=("p",) + tuple(rule.state_used(hp)),
                      body=rule.cuda_start() + rule.cuda_body, preamble=macros + PREAMBLE,
                      per_param=rule.per_tensor.scalars if rule.per_tensor else ())


# -- many arrays in one launch ------------------------------------------------------------
# A bucket (the params of one group and dtype) is updated by one launch of a kernel that
# covers all its arrays, as torch's MultiTensorApply does: block b updates one chunk of
# CHUNK elements of one array, found in two tables the backend uploads once per bucket
# (which array, where in it); the params' addresses and the state's offsets are uploaded
# once too, and only the grads' addresses (a new array each step) are copied each step.
CHUNK = 4096
CTYPES = {"float32": "float", "float64": "double"}


def chunk_table(sizes: list[int], chunk: int = CHUNK) -> tuple[Any, Any]:
    """(array, first element) of each chunk of ``chunk`` elements, arrays in order."""
    import numpy as np

    counts = [-(-n // chunk) for n in sizes]
    arrays = np.repeat(np.arange(len(sizes), dtype=np.int32), counts)
    starts = np.concatenate([np.arange(c, dtype=np.int64) * chunk for c in counts] or
                            [np.zeros(0, np.int64)])
    return arrays, starts.astype(np.int64)


def multi_tensor_name(source: CudaSource, dtype: Any) -> str:
    return f"{source.name}_multi_{CTYPES[str(dtype)]}"


def multi_tensor_params(source: CudaSource) -> list[str]:
    """The kernel's parameters: the tables (params' and grads' addresses, the arrays'
    element offsets, each chunk's array and first element), the used state buffers (flat,
    the bucket's), a PerTensor rule's per-param scalars (an array) and the scalars, by
    value."""
    return ["const unsigned long long* params_", "const unsigned long long* grads_",
            "const long long* offsets_", "const int* chunk_array_",
            "const long long* chunk_start_", *(f"T* {s}_" for s in source.out_params[1:]),
            *(["const T* per_param_"] if source.per_param else []),
            *(f"const T {s}" for s in source.in_params[1:])]


def multi_tensor_source(source: CudaSource, dtype: Any) -> str:
    """The kernel over a bucket's chunks, for ``dtype`` (block b: chunk b)."""
    state = source.out_params[1:]
    args = multi_tensor_params(source)
    lines = [f"typedef {CTYPES[str(dtype)]} T;", source.preamble,
             f'extern "C" __global__ void {multi_tensor_name(source, dtype)}(',
             "        " + ",\n        ".join(args) + ") {",
             "    const int k = chunk_array_[blockIdx.x];",
             "    const long long first = chunk_start_[blockIdx.x];",
             "    const long long offset = offsets_[k];",
             "    const long long size = offsets_[k + 1] - offset;",
             *(f"    const T {name} = per_param_[k * {len(source.per_param)} + {j}];"
               for j, name in enumerate(source.per_param)),
             f"    const long long last = first + {CHUNK} < size ? first + {CHUNK} : size;",
             "    T* p_ = reinterpret_cast<T*>(params_[k]);",
             "    const T* g_ = reinterpret_cast<const T*>(grads_[k]);",
             "    for (long long i = first + threadIdx.x; i < last; i += blockDim.x) {",
             "        T& p = p_[i];",
             "        const T g = g_[i];",
             *(f"        T& {s} = {s}_[offset + i];" for s in state),
             source.body,
             "    }",
             "}"]
    return "\n".join(lines)


class BucketLaunch:
    """One bucket's launch of its multi-tensor kernel, with the bucket's tables uploaded
    once (``xp``: cupy, or numpy for the CPU twin; ``launch(grid, block, args)``: a
    ``cupy.RawKernel`` or the twin's)."""

    def __init__(self, launch: Any, xp: Any, source: CudaSource, param_addresses: list[int],
                 sizes: list[int], state: list) -> None:
        import numpy as np

        arrays, starts = chunk_table(sizes)
        offsets = np.cumsum([0] + list(sizes)).astype(np.int64)
        self.tables = (xp.asarray(np.asarray(param_addresses, dtype=np.uint64)),
                       xp.asarray(offsets), xp.asarray(arrays), xp.asarray(starts))
        self.launch, self.state, self.xp = launch, list(state), xp
        self.grid, self.block = (len(arrays),), (source.block_size,)
        self.by_value = len(source.in_params) - 1 if source.per_param else None

    def __call__(self, grad_addresses: Any, scalars: Any) -> None:
        """One step: ``grad_addresses`` (uint64, on the device) of this bucket's grads;
        ``scalars`` on the host (a PerTensor rule's per-param ones after the step's:
        uploaded as an array)."""
        if self.grid[0]:
            params, offsets, arrays, starts = self.tables
            per_param = [] if self.by_value is None else [
                self.xp.asarray(scalars[self.by_value:])]
            self.launch(self.grid, self.block, (params, grad_addresses, offsets, arrays, starts,
                                                *self.state, *per_param,
                                                *scalars[:self.by_value]))
