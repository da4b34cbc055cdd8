"""CuPy GPU kernels: each rule's CUDA body as one ElementwiseKernel per variant.

A rule's ``cuda_body`` is C++ for one element: ``g`` and the per-step scalars are inputs
(scalars are kernel arguments, never baked into the source, so one compiled kernel serves
every step), ``p`` and the state arrays the variant uses are in-out references. The
compile-time flags become preprocessor macros (``#if AMSGRAD``), so a variant declares and
touches only its own arrays. cupy compiles a kernel once per dtype on its first call
(cached on disk under ``~/.cupy/kernel_cache``); the backend makes that call when an
optimizer is constructed.

``--fmad=false`` keeps a*b+c as a multiply and an add, each rounded, as NumPy does; with
CUDA's default IEEE division and square root the GPU then rounds like the reference.
The same source compiles on the CPU (tests/cuda_twin.py) so CI proves the GPU math.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

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
    """What an ElementwiseKernel of one rule variant is built from."""

    name: str
    in_params: tuple[str, ...]      # "g" then the scalars, all of type T
    out_params: tuple[str, ...]     # "p" then the used state arrays, all of type T
    body: str
    preamble: str

    @property
    def block_size(self) -> int:
        return BLOCK_SIZE_TWO_ARRAYS if len(self.out_params) == 1 else BLOCK_SIZE


def kernel_source(rule: Any, flags: Mapping[str, bool], hp: Mapping[str, Any]) -> CudaSource:
    """The CUDA source of ``rule`` for one variant (its flags and used state)."""
    suffix = "".join(f"_{k}{int(v)}" for k, v in sorted(flags.items()))
    macros = "".join(f"#define {k.upper()} {int(v)}\n" for k, v in sorted(flags.items()))
    return CudaSource(name=f"fastopt_{rule.name}{suffix}",
                      in_params=("g",) + tuple(rule.scalars),
                      out_params=("p",) + tuple(rule.state_used(hp)),
                      body=rule.cuda_body, preamble=macros + PREAMBLE)


def elementwise_kernel(source: CudaSource) -> Any:
    """The cupy.ElementwiseKernel for ``source`` (compiled per dtype on first call)."""
    import cupy

    return cupy.ElementwiseKernel(", ".join(f"T {n}" for n in source.in_params),
                                  ", ".join(f"T {n}" for n in source.out_params),
                                  source.body, source.name, preamble=source.preamble,
                                  options=OPTIONS, no_return=True)
