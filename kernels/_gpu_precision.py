"""CUDA kernels for buckets stored narrower than their float32 arithmetic: 16-bit params
and grads, bfloat16 or 8-bit blockwise state (kernels/_precision.py and _blockwise.py
define the bits; this is the same arithmetic on the GPU).

The conversions work on the values' bits with 32-bit integer arithmetic and float32
additions only, as the numba helpers do, so the GPU (``--fmad=false``) and the CPU twin
(tests/cuda_twin.py) give the reference's bits. Two kernel shapes:

* 16-bit params or bfloat16 state: the bucket kernel of kernels/_gpu.py (a block a chunk,
  a thread an element) with each element widened into float32 locals, the rule's body run
  on them, and each written back rounded (params stochastically where asked, their random
  bits from the stream of (seed, step, param index) and the element's index, as on the
  CPU).
* 8-bit state: a thread a block of 256 elements of one param (the blockwise absmax is a
  reduction over them). Pass 1 runs the body on the dequantized block and keeps each state
  array's largest |value| without writing anything; pass 2 runs it again on the same
  inputs (the same values) and writes the params and the codes requantized with those
  absmaxes. Each thread walks its own 256 elements, so a warp's loads are not coalesced
  (the L1 cache takes the neighbouring elements of the next iterations): simple and the
  twin runs it as written; a warp a block would coalesce.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ._blockwise import BLOCK, KEYS, LOW, NEVER, SHIFT
from ._gpu import CHUNK, PREAMBLE, chunk_table
from ._rule import GSCALE
from ._precision import BFLOAT16, FLOAT16, GOLDEN, GOLDEN32, INT8, _H1, _H2, _M1, _M2

THREADS = 128

CONVERSIONS = f"""\
__device__ __forceinline__ unsigned mix_hash32(unsigned x) {{     // lowbias32
    x = (x ^ (x >> 16)) * {_H1}u;
    x = (x ^ (x >> 15)) * {_H2}u;
    return x ^ (x >> 16);
}}
__device__ __forceinline__ unsigned long long splitmix(unsigned long long z) {{
    z = (z ^ (z >> 30)) * {_M1}ull;
    z = (z ^ (z >> 27)) * {_M2}ull;
    return z ^ (z >> 31);
}}
__device__ __forceinline__ unsigned stream_start(unsigned long long seed, unsigned long long t,
                                                 unsigned long long param) {{
    return (unsigned)(splitmix(splitmix(splitmix(seed + {GOLDEN}ull) ^ t) ^ param)
                      & 0xFFFFFFFFull);
}}
__device__ __forceinline__ float widen_bf16(unsigned short h) {{
    return uint_as_float((unsigned)h << 16);
}}
__device__ __forceinline__ float widen_f16(unsigned short h) {{
    unsigned o = ((unsigned)h & 0x7FFFu) << 13;
    const unsigned e = o & 0x0F800000u;
    o += 112u << 23;
    const unsigned big = o + (112u << 23);
    const unsigned small = float_as_uint(uint_as_float(o + (1u << 23)) - 6.103515625e-05f);
    o = e == 0x0F800000u ? big : (e == 0 ? small : o);
    return uint_as_float(o | (((unsigned)h & 0x8000u) << 16));
}}
__device__ __forceinline__ unsigned short narrow_bf16(float v, bool stochastic, unsigned base,
                                                      unsigned long long e) {{
    const unsigned x = float_as_uint(v);
    const unsigned add = stochastic ?
        mix_hash32(base + (unsigned)(e + 1) * {GOLDEN32}u) >> 16 : 0x7FFFu + ((x >> 16) & 1u);
    const unsigned rounded = (x + add) >> 16;
    const unsigned nan = ((x >> 16) & 0x8000u) | 0x7FC0u;
    return (unsigned short)((x & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}}
__device__ __forceinline__ unsigned short narrow_f16(float v) {{
    const unsigned x = float_as_uint(v);
    const unsigned a = x & 0x7FFFFFFFu;
    const unsigned payload = (a >> 13) & 0x3FFu;
    const unsigned nan = 0x7C00u | (payload != 0 ? payload : 1u);
    const unsigned r = a - 0x38000000u;
    const unsigned normal = (r + 0xFFFu + ((r >> 13) & 1u)) >> 13;
    const unsigned tiny = float_as_uint(uint_as_float(a) + 0.5f) - (126u << 23);
    const unsigned h = a > 0x7F800000u ? nan : (a >= 0x47800000u ? 0x7C00u :
                                                (a >= 0x38800000u ? normal : tiny));
    return (unsigned short)(h | ((x >> 16) & 0x8000u));
}}
__device__ __forceinline__ unsigned char code_of(float y, const int* lookup) {{
    y = y != y ? 0.0f : (y < -1.0f ? -1.0f : (y > 1.0f ? 1.0f : y));
    const unsigned b = float_as_uint(y);
    const unsigned flip = 0u - (b >> 31);
    const unsigned a = b & 0x7FFFFFFFu;
    const unsigned high = a >> {SHIFT};
    const unsigned key = (high > {LOW}u ? high : {LOW}u) - {LOW}u + (flip & {KEYS}u);
    const unsigned low = (a ^ flip) & {NEVER - 1}u;
    const unsigned entry = (unsigned)lookup[key];
    return (unsigned char)((entry & 0xFFu) + (low >= (entry >> 8) ? 1u : 0u));
}}
__device__ __forceinline__ float absmax_of(unsigned top) {{    // a NaN as 0x7FC00000
    return uint_as_float(top <= 0x7F800000u ? top : 0x7FC00000u);
}}
"""
CUDA_BITS = """\
__device__ __forceinline__ float uint_as_float(unsigned u) { return __uint_as_float(u); }
__device__ __forceinline__ unsigned float_as_uint(float f) { return __float_as_uint(f); }
"""


@dataclass(frozen=True)
class StorageSource:
    """The CUDA source of one rule variant for one storage, and how to call it."""

    name: str
    code: str
    state: tuple[str, ...]          # the used state arrays, in argument order
    signed: tuple[int, ...]         # their maps (8-bit state)
    eight: bool                     # one thread a block of 256 (8-bit state)


def storage_source(rule: Any, flags: Mapping[str, bool], hp: Mapping[str, Any],
                   storage: tuple) -> StorageSource:
    """The kernel of ``rule``'s variant for ``storage`` = (params' kind, state's kind,
    master?, stochastic?) (kernels/_precision.py's kinds)."""
    kind, state_kind, master, stochastic = storage
    state = tuple(rule.state_used(hp))
    signed = tuple(int(rule.signed(s)) for s in state)
    suffix = "".join(f"_{k}{int(v)}" for k, v in sorted(flags.items()))
    name = f"fastopt_{rule.name}{suffix}_bits{kind}{state_kind}{int(master)}{int(stochastic)}"
    eight = state_kind == INT8
    narrow_type = "unsigned short" if kind else "float"
    state_type = {0: "float", BFLOAT16: "unsigned short", INT8: "unsigned char"}[state_kind]
    args = [f"{narrow_type}* const* params_", f"const {narrow_type}* const* grads_",
            "const long long* offsets_", "const int* chunk_array_",
            "const long long* chunk_start_", "const long long* blocks_",
            "const long long* indices_", "float* master_", "const float* qmaps_",
            "const int* lookups_", "unsigned long long seed", "unsigned long long step",
            "long long n_chunks",
            *(f"{state_type}* {s}_" for s in state),
            *(f"float* {s}_absmax_" for s in state),
            *(f"const float {s}" for s in (*rule.scalars, GSCALE))]
    load_p = ("master_[offset + i]" if master else
              {0: "params_[k][i]", BFLOAT16: "widen_bf16(params_[k][i])",
               FLOAT16: "widen_f16(params_[k][i])"}[kind])
    load_g = {0: "grads_[k][i]", BFLOAT16: "widen_bf16(grads_[k][i])",
              FLOAT16: "widen_f16(grads_[k][i])"}[kind]
    store_p = {0: "params_[k][i] = p;",
               BFLOAT16: f"params_[k][i] = narrow_bf16(p, {int(stochastic)}, base, i);",
               FLOAT16: "params_[k][i] = narrow_f16(p);"}[kind]
    if master:
        store_p = "master_[offset + i] = p; " + store_p.replace(
            f"narrow_bf16(p, {int(stochastic)}, base, i)", "narrow_bf16(p, 0, 0, i)")

    def load_s(s: str, j: int) -> str:
        if state_kind == INT8:
            return f"qmaps_[{256 * signed[j]} + {s}_[offset + i]] * scale_{s}"
        return f"widen_bf16({s}_[offset + i])" if state_kind else f"{s}_[offset + i]"

    body = ["    typedef float T;",
            *(f"    float {s} = {load_s(s, j)};" for j, s in enumerate(state)),
            "    float p = " + load_p + ";",
            "    const float g = " + load_g + ";",
            rule.cuda_start() + rule.cuda_body]
    head = [f'extern "C" __global__ void {name}(', "        " + ",\n        ".join(args) + ") {"]
    if not eight:
        loop = ["    const int k = chunk_array_[blockIdx.x];",
                "    const long long first = chunk_start_[blockIdx.x];",
                "    const long long offset = offsets_[k];",
                "    const long long size = offsets_[k + 1] - offset;",
                f"    const long long last = first + {CHUNK} < size ? first + {CHUNK} : size;",
                f"    const unsigned base = {int(stochastic)} ? "
                "stream_start(seed, step, (unsigned long long)indices_[k]) : 0u;",
                "    for (long long i = first + threadIdx.x; i < last; i += blockDim.x) {",
                "{", *body,
                *(f"    {s}_[offset + i] = narrow_bf16({s}, 0, 0, 0);" if state_kind else
                  f"    {s}_[offset + i] = {s};" for s in state),
                "    " + store_p, "}", "    }", "}"]
        return StorageSource(name, "\n".join(head + loop), state, signed, eight)
    qb = ["    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;",
          "    if (b >= n_chunks) return;",
          "    const int k = chunk_array_[b];",
          "    const long long first = chunk_start_[b];",
          "    const long long offset = offsets_[k];",
          "    const long long size = offsets_[k + 1] - offset;",
          f"    const long long last = first + {BLOCK} < size ? first + {BLOCK} : size;",
          f"    const long long at = blocks_[k] + first / {BLOCK};",
          f"    const unsigned base = {int(stochastic)} ? "
          "stream_start(seed, step, (unsigned long long)indices_[k]) : 0u;",
          *(f"    const float scale_{s} = {s}_absmax_[at];" for s in state),
          *(f"    unsigned top_{s} = 0; float inverse_{s} = 0;" for s in state),
          "    for (int pass = 0; pass < 2; ++pass) {",
          *(f"        if (pass == 1) {{ const float amax = absmax_of(top_{s}); "
            f"{s}_absmax_[at] = amax; inverse_{s} = 1.0f / amax; }}" for s in state),
          "        for (long long i = first; i < last; ++i) {",
          "{", *body, "    if (pass == 0) {",
          *(f"        const unsigned a_{s} = float_as_uint({s}) & 0x7FFFFFFFu; "
            f"top_{s} = a_{s} > top_{s} ? a_{s} : top_{s};" for s in state),
          "    } else {",
          *(f"        {s}_[offset + i] = code_of({s} * inverse_{s}, "
            f"lookups_ + {2 * KEYS * signed[j]});" for j, s in enumerate(state)),
          "        " + store_p, "    }", "}", "        }", "    }", "}"]
    return StorageSource(name, "\n".join(head + qb), state, signed, eight)


def storage_module(sources: list[StorageSource], bits: str = CUDA_BITS) -> str:
    """The CUDA source of ``sources``' kernels, after the conversions they use."""
    return "\n".join([bits, PREAMBLE, CONVERSIONS, *(s.code for s in sources)])


class StorageLaunch:
    """One bucket's launch of its storage kernel, tables uploaded once (``xp``: cupy, or
    numpy for the twin; ``launch(grid, block, args)``: a RawKernel or the twin's)."""

    def __init__(self, launch: Any, xp: Any, source: StorageSource, param_addresses: list[int],
                 sizes: list[int], positions: list[int], state: dict, scales: dict,
                 master: Any, rng: Any) -> None:
        import numpy as np

        from ._blockwise import LOOKUP, QMAPS
        from ._cpu import block_offsets

        arrays, starts = chunk_table(sizes, BLOCK if source.eight else CHUNK)
        self.tables = (xp.asarray(np.asarray(param_addresses, dtype=np.uint64)),
                       xp.asarray(np.cumsum([0] + list(sizes)).astype(np.int64)),
                       xp.asarray(arrays), xp.asarray(starts),
                       xp.asarray(np.asarray(block_offsets(sizes), np.int64)),
                       xp.asarray(np.asarray(positions, np.int64)))
        self.constants = (xp.asarray(QMAPS.ravel()), xp.asarray(LOOKUP.ravel()))
        self.launch, self.rng, self.master = launch, rng, master
        self.state = [state[s] for s in source.state] + [scales[s] for s in source.state]
        self.n = len(arrays)
        self.grid = (-(-self.n // THREADS),) if source.eight else (self.n,)
        self.block = (THREADS,)

    def __call__(self, grad_addresses: Any, scalars: Any) -> None:
        import numpy as np

        if self.n:
            params, offsets, arrays, starts, blocks, indices = self.tables
            seed, step = (np.uint64(v) for v in self.rng)
            self.launch(self.grid, self.block,
                        (params, grad_addresses, offsets, arrays, starts, blocks, indices,
                         self.master, *self.constants, seed, step, np.int64(self.n),
                         *self.state, *scalars))
