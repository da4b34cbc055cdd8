"""Params and state stored narrower than float32: how a step widens them and writes back.

A param (and its grad) stored in bfloat16 (``ml_dtypes.bfloat16``) or float16, and state
kept in bfloat16 (``state_dtype="bfloat16"``), are widened to float32, the rule runs in
float32, and the results are written back (the state always to nearest):

* rounded to nearest, ties to even: what ``x.astype(bfloat16)`` (ml_dtypes: a NaN becomes
  the quiet NaN of its sign) and ``x.astype(float16)`` (NumPy: a NaN keeps its top payload
  bits) give;
* or, for bfloat16, rounded stochastically: r, 16 random bits, are added to the float32's
  bits and the low 16 dropped, so x rounds up with probability (its distance to the
  lower neighbour) / (the gap): unbiased in expectation. r comes from a counter-based
  generator, the same bits on every backend: for element e of the optimizer's param i at
  step t, ``r = hash32(base + (e + 1) * GOLDEN32) >> 16`` (32-bit arithmetic; ``hash32``
  the "lowbias32" integer hash) with ``base`` the low 32 bits of
  ``mix(mix(mix(seed + GOLDEN) ^ t) ^ i)``, ``mix`` SplitMix64's finaliser: one 64-bit
  hash a param and step, two 32-bit multiplies an element (vectorised).

The NumPy functions here are the reference (the conversions are NumPy's and ml_dtypes',
the stochastic rounding this module's); the numba functions work on float32 tiles through
a uint32 view of the same memory (numba has no 16-bit floats on the CPU) and give the same
bits (tests/test_precision.py compares them on every 16-bit pattern and on boundary and
random float32 patterns).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._blockwise import BLOCK as BLOCK_SIZE
from ._blockwise import dequantize_tile, quantize_tile
from ._cpu import (BLOCK, INDEX, OFFSET, PARAM, SIZE, _first_row_at, common_start, numba, prange,
                   scalar_helper, state_views)

try:
    from numba.core import types as nbtypes
    from numba.np.unsafe.ndarray import to_fixed_tuple

    from ._ndarray import as_bits, as_float, place_addresses, resolve_grads, void_pointer
except Exception:  # the numba backend is optional (or broken)
    pass

BFLOAT16, FLOAT16, INT8 = 1, 2, 3      # the storage kinds the tiled loop is compiled for
GOLDEN, GOLDEN32 = 0x9E3779B97F4A7C15, 0x9E3779B9
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_H1, _H2 = 0x7FEB352D, 0x846CA68B          # lowbias32's multipliers


def storage_kind(dtype: Any) -> int:
    """0 for float32/float64 params (read and written as they are), else BFLOAT16 or
    FLOAT16."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return FLOAT16
    return BFLOAT16 if dtype.name == "bfloat16" else 0


def stored_bits(kind: int) -> type:
    """The unsigned integer type the loops see a storage kind's values as."""
    return np.uint8 if kind == INT8 else np.uint16


def bfloat16(what: str = "bfloat16") -> np.dtype:
    """ml_dtypes' bfloat16 as a NumPy dtype, or an ImportError saying what needs it."""
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError(f"{what} needs ml_dtypes (NumPy's bfloat16): pip install "
                          "'fastopt[bf16]'") from None
    return np.dtype(ml_dtypes.bfloat16)


def is_16bit(dtype: Any) -> bool:
    return storage_kind(dtype) != 0


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype a step computes in for params of ``dtype``: float32 for 16-bit ones."""
    return np.dtype(np.float32) if is_16bit(dtype) else np.dtype(dtype)


# -- the reference (NumPy) -------------------------------------------------------------------
def widen(x: np.ndarray) -> np.ndarray:
    """A 16-bit float array as float32 (exact)."""
    return x.astype(np.float32)


def narrow(x32: np.ndarray, dtype: Any) -> np.ndarray:
    """float32 values in ``dtype``, rounded to nearest (ties to even)."""
    with np.errstate(all="ignore"):
        return x32.astype(dtype)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 values (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def stream_base(seed: int, t: int, param: int) -> np.uint32:
    """The start of param ``param``'s random stream at step ``t``."""
    z = np.array([(seed + GOLDEN) % 2 ** 64], np.uint64)
    z = _mix(_mix(z) ^ np.uint64(t % 2 ** 64))
    return np.uint32(_mix(z ^ np.uint64(param))[0] & np.uint64(0xFFFFFFFF))


def _hash32(x: np.ndarray) -> np.ndarray:
    """lowbias32 on uint32 values (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint32(16))) * np.uint32(_H1)
    x = (x ^ (x >> np.uint32(15))) * np.uint32(_H2)
    return x ^ (x >> np.uint32(16))


def random_bits(seed: int, t: int, param: int, n: int) -> np.ndarray:
    """The 16 random bits of elements 0..n-1 of param ``param`` at step ``t``, as uint32."""
    e = np.arange(1, n + 1, dtype=np.uint64).astype(np.uint32)
    return _hash32(stream_base(seed, t, param) + e * np.uint32(GOLDEN32)) >> np.uint32(16)


def narrow_stochastic(x32: np.ndarray, seed: int, t: int, param: int) -> np.ndarray:
    """float32 values (C order: element e is x32.ravel()[e]) as bfloat16, stochastically
    rounded (see above); a NaN becomes the quiet NaN of its sign, as rounding to nearest
    gives it."""
    u = np.ascontiguousarray(x32, np.float32).reshape(-1).view(np.uint32)
    bits = ((u + random_bits(seed, t, param, u.size)) >> np.uint32(16)).astype(np.uint16)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    bits[nan] = ((u[nan] >> np.uint32(16)) & np.uint32(0x8000) | np.uint32(0x7FC0)).astype(
        np.uint16)
    return bits.view(bfloat16()).reshape(np.shape(x32))


# -- the numba loops' helpers: float32 tiles through their uint32 view ----------------------
@scalar_helper
def widen_f16(src, u):
    """u[:n] = the float32 bits of the float16 bits ``src`` (n = src.size), exactly as
    NumPy widens them (a NaN keeps its payload). Branch-free: a subnormal is renormalised
    by a float32 subtraction, so the loop vectorises."""
    for i in range(src.size):
        h = np.uint32(src[i])
        o = np.uint32((h & np.uint32(0x7FFF)) << np.uint32(13))   # exponent and fraction
        e = o & np.uint32(0x0F800000)
        o = np.uint32(o + np.uint32(112 << 23))                     # rebiased: 15 -> 127
        big = np.uint32(o + np.uint32(112 << 23))                   # inf, NaN: all ones
        small = as_bits(as_float(np.uint32(o + np.uint32(1 << 23))) - np.float32(2.0 ** -14))
        o = big if e == 0x0F800000 else (small if e == 0 else o)
        u[i] = o | ((h & np.uint32(0x8000)) << np.uint32(16))


@scalar_helper
def narrow_f16(u, dst):
    """dst[:n] = the float16 bits of the float32 bits ``u`` (n = dst.size), to nearest,
    ties to even, as NumPy rounds them (a NaN keeps its top payload, never becoming an
    inf). Branch-free: subnormals are rounded by a float32 addition, so it vectorises."""
    for i in range(dst.size):
        x = np.uint32(u[i])
        a = x & np.uint32(0x7FFFFFFF)
        payload = (a >> np.uint32(13)) & np.uint32(0x3FF)
        nan = np.uint32(0x7C00) | (payload if payload != 0 else np.uint32(1))
        # normal: rebias 127 -> 15 and round at bit 13 (a carry may make it inf: right)
        r = np.uint32(a - np.uint32(0x38000000))
        normal = np.uint32(np.uint32(r + np.uint32(0xFFF) + ((r >> np.uint32(13))
                                                              & np.uint32(1))) >> np.uint32(13))
        # subnormal: adding 0.5 leaves the float16 fraction, rounded, in the low bits
        tiny = np.uint32(as_bits(as_float(a) + np.float32(0.5)) - np.uint32(126 << 23))
        h = nan if a > 0x7F800000 else (np.uint32(0x7C00) if a >= 0x47800000 else (
            normal if a >= 0x38800000 else tiny))
        dst[i] = np.uint16(h | ((x >> np.uint32(16)) & np.uint32(0x8000)))


@scalar_helper
def _mix_one(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


@scalar_helper
def stream_start(seed, t, param):
    """``stream_base`` for the numba loops (uint64 arguments; a uint32)."""
    z = _mix_one(_mix_one(_mix_one(seed + np.uint64(GOLDEN)) ^ t) ^ param)
    return np.uint32(z & np.uint64(0xFFFFFFFF))


@scalar_helper
def widen_bf16(src, u):
    """u[:n] = the float32 bits of the bfloat16 bits ``src`` (n = src.size)."""
    for i in range(src.size):
        u[i] = np.uint32(src[i]) << np.uint32(16)


@scalar_helper
def narrow_bf16(u, dst, stochastic, base, first):
    """dst[:n] = the bfloat16 bits of the float32 bits ``u`` (n = dst.size): to nearest,
    or (``stochastic``) with the random bits of elements first, first + 1, ... of the
    stream ``base``; a NaN becomes the quiet NaN of its sign. Every step truncated to 32
    bits and branch-free, so that it vectorises in 32-bit lanes."""
    for i in range(dst.size):
        x = u[i]
        if stochastic:
            h = np.uint32(base + np.uint32(np.uint32(first + i + 1) * np.uint32(GOLDEN32)))
            h = np.uint32((h ^ (h >> np.uint32(16))) * np.uint32(_H1))
            h = np.uint32((h ^ (h >> np.uint32(15))) * np.uint32(_H2))
            add = np.uint32((h ^ (h >> np.uint32(16))) >> np.uint32(16))
        else:
            add = np.uint32(np.uint32(0x7FFF) + ((x >> np.uint32(16)) & np.uint32(1)))
        rounded = np.uint32(np.uint32(x + add) >> np.uint32(16))
        nan = np.uint32(((x >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0))
        dst[i] = np.uint16(nan if (x & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
                           else rounded)


@scalar_helper
def widen_any(src, u, kind):
    """``widen_bf16`` or ``widen_f16`` by ``kind``."""
    if kind == BFLOAT16:
        widen_bf16(src, u)
    else:
        widen_f16(src, u)


@scalar_helper
def narrow_any(u, dst, kind, stochastic, base, first):
    """``narrow_bf16`` or ``narrow_f16`` (to nearest) by ``kind``."""
    if kind == BFLOAT16:
        narrow_bf16(u, dst, stochastic, base, first)
    else:
        narrow_f16(u, dst)


# -- the tiled bucket loop ----------------------------------------------------------------------
TILE = 1024     # elements widened to float32 at a time (4 KiB tiles, a few a thread)


def tiles_like(state):
    """A float32 tile of TILE elements per array of ``state`` (a thread's widened state)."""
    return tuple(np.empty(TILE, np.float32) for _ in state)


if numba is not None:
    @numba.extending.overload(tiles_like, jit_options=dict(cache=False))  # generated source
    def _tiles_unrolled(state):
        items = "".join("np.empty(TILE, np.float32), " for _ in range(len(state)))
        return eval(f"lambda state: ({items})", dict(np=np, TILE=TILE))


@scalar_helper
def block_start(table, element, total):
    """The first element, at or after ``element``, that starts a block of its param."""
    if element >= total:
        return total
    k = _first_row_at(table, element)
    offset, size = table[k, OFFSET], table[k, SIZE]
    return offset + min(-(-(element - offset) // BLOCK_SIZE) * BLOCK_SIZE, size)


def load_state(stored, tile, absmax, first_block, kind, signed):
    """tile[:n] = the float32 values of the state ``stored`` (n = stored.size): 16-bit
    floats widened, or 8-bit codes dequantized with ``absmax[first_block:]``."""


def store_state(tile, stored, absmax, first_block, kind, signed, scratch):
    """``load_state``'s inverse: 16-bit floats to nearest, or 8-bit codes requantized
    block by block (their absmaxes written to ``absmax[first_block:]``; ``scratch``: a
    uint32 tile of the thread's)."""


if numba is not None:   # one body per stored type, chosen when the loop is typed
    @numba.extending.overload(load_state, jit_options=dict(cache=False))
    def _load_state(stored, tile, absmax, first_block, kind, signed):
        if stored.dtype == nbtypes.uint8:
            return lambda stored, tile, absmax, first_block, kind, signed: dequantize_tile(
                stored, absmax[first_block:], tile, signed)
        if stored.dtype == nbtypes.uint16:
            return lambda stored, tile, absmax, first_block, kind, signed: widen_any(
                stored, tile.view(np.uint32), kind)
        return lambda stored, tile, absmax, first_block, kind, signed: None  # not stored

    @numba.extending.overload(store_state, jit_options=dict(cache=False))
    def _store_state(tile, stored, absmax, first_block, kind, signed, scratch):
        if stored.dtype == nbtypes.uint8:
            return lambda tile, stored, absmax, first_block, kind, signed, scratch: \
                quantize_tile(tile, stored, absmax[first_block:], signed, scratch)
        if stored.dtype == nbtypes.uint16:
            return lambda tile, stored, absmax, first_block, kind, signed, scratch: \
                narrow_any(tile.view(np.uint32), stored, kind, False, np.uint32(0), 0)
        return lambda tile, stored, absmax, first_block, kind, signed, scratch: None


def _bucket_loop_tiled(table, grads, state, scalars, parts, ids, checks, dims, spans, layout,
                       addresses, master, rng, scales):
    """``kernels/_cpu.py``'s bucket loop where params, grads or state are not float32 as
    the arithmetic is (cloned per rule variant and storage, bound as constants: ``KIND``
    the params' and grads' (0: float32 as they are; BFLOAT16, FLOAT16), ``STATE_KIND``
    the state's (0: float32; BFLOAT16; INT8: codes, with one absmax per block in
    ``scales``, ``SIGNED`` saying which map each state array uses), ``MASTER``,
    ``STOCHASTIC``): each thread takes its elements a tile at a time (with INT8 state,
    its part starts and ends on a block of each param), widens what is stored narrower
    into float32 tiles (with ``MASTER``, updates the float32 master copy in ``master``,
    laid out as the state, instead of the params), runs the rule's element body on them,
    and writes back: the state to nearest (INT8: requantized block by block), the params
    to nearest or (``STOCHASTIC``) with ``rng`` = (seed, step)'s random bits for param
    ``table[k, INDEX]``. Grads are located and checked as by the other loop."""
    bad = resolve_grads(ids, checks, dims, spans, grads, layout) if ids.size else (
        place_addresses(addresses, checks, spans, grads) if addresses.size else -1)
    if bad >= 0:     # (inline: a call of its own cost 0.1 us a step, 5% of a small one)
        return bad
    s = to_fixed_tuple(scalars, N_SCALARS)  # noqa: F821 (bound per clone; no PerTensor rule)
    gscale = scalars[N_SCALARS]  # noqa: F821 (the grad's scale: kernels/_rule.py)
    n = table.shape[0]
    total = table[n - 1, OFFSET] + table[n - 1, SIZE] if n else 0
    for part in prange(parts):
        lo, hi = total * part // parts, total * (part + 1) // parts
        if STATE_KIND == INT8:  # noqa: F821
            lo, hi = block_start(table, lo, total), block_start(table, hi, total)
        pf = np.empty(TILE, np.float32)
        gf = np.empty(TILE, np.float32)
        sf = tiles_like(state)
        scratch = np.empty(2 * BLOCK_SIZE, np.uint32)      # requantizing's
        for k in range(_first_row_at(table, lo), n):
            offset, size = table[k, OFFSET], table[k, SIZE]
            if offset >= hi:
                break
            a = max(lo, offset) - offset
            m = min(hi, offset + size) - offset - a
            # views of the memory as either type: only the stored one is read
            p32 = numba.carray(void_pointer(table[k, PARAM]), size, np.float32)[a:a + m]
            g32 = numba.carray(void_pointer(grads[k]), size, np.float32)[a:a + m]
            p16 = numba.carray(void_pointer(table[k, PARAM]), size, np.uint16)[a:a + m]
            g16 = numba.carray(void_pointer(grads[k]), size, np.uint16)[a:a + m]
            st = state_views(state, offset + a, offset + a + m)
            base = stream_start(rng[0], rng[1], np.uint64(table[k, INDEX])) \
                if STOCHASTIC else np.uint32(0)  # noqa: F821
            for t0 in range(0, m, TILE):
                c = min(TILE, m - t0)
                first_block = table[k, BLOCK] + (a + t0) // BLOCK_SIZE
                if MASTER:  # noqa: F821
                    pt = master[offset + a + t0:offset + a + t0 + c]
                elif KIND == 0:  # noqa: F821
                    pt = p32[t0:t0 + c]
                else:
                    pt = pf[:c]
                    widen_any(p16[t0:t0 + c], pf.view(np.uint32), KIND)  # noqa: F821
                if KIND == 0:  # noqa: F821
                    gt = g32[t0:t0 + c]
                else:
                    gt = gf[:c]
                    widen_any(g16[t0:t0 + c], gf.view(np.uint32), KIND)  # noqa: F821
                if STATE_KIND == 0:  # noqa: F821
                    stt = state_views(st, t0, t0 + c)
                else:
                    for j in range(len(sf)):
                        load_state(st[j][t0:t0 + c], sf[j], scales[j], first_block,
                                   STATE_KIND, SIGNED[j])  # noqa: F821
                    stt = state_views(sf, 0, c)
                for i in range(c):
                    pi, gi = common_start(pt[i], gt[i] * gscale, s,
                                          START_AT)  # noqa: F821
                    ELEMENT(i, pi, gi, pt, stt, s, FLAGS)  # noqa: F821
                if STATE_KIND != 0:  # noqa: F821
                    for j in range(len(sf)):
                        store_state(sf[j], st[j][t0:t0 + c], scales[j], first_block,
                                    STATE_KIND, SIGNED[j], scratch)  # noqa: F821
                if KIND != 0:  # noqa: F821
                    narrow_any(pt.view(np.uint32), p16[t0:t0 + c], KIND,  # noqa: F821
                               STOCHASTIC, base, a + t0)  # noqa: F821
    return -1
