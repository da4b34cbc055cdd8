"""8-bit blockwise state (``state_dtype="int8"``): bitsandbytes' dynamic maps and blocks.

A state array of a param with n elements (C order) is kept as n uint8 codes and
ceil(n / 256) float32 absmaxes, one per block of 256 elements from the param's start;
element e stands for

    MAP[code[e]] * absmax[e // 256]

with MAP bitsandbytes' dynamic quantization map (``create_dynamic_map``: 256 sorted values
in [-1, 1], dense near 0): the signed map for state that can be negative (moments), the
unsigned one for state that cannot (second moments, accumulators: the rule's
``nonnegative_state``). A step dequantizes a block, runs the rule on it in float32 and
requantizes it in the same pass:

    absmax  = max |s| over the block            (NaN if one is NaN)
    y       = clip(s * (1 / absmax), -1, 1)     (float32; NaN, as 0 * inf gives, -> 0)
    code    = the number of midpoints (MAP[c] + MAP[c+1]) / 2 below y

that is the nearest value of the map, a tie going to the lower one (bitsandbytes'
``quantize_blockwise``: ``torch.bucketize`` on the same midpoints). The NumPy functions
are the reference; the numba ones find a code with one table lookup on y's top 17 bits
(every such bucket of floats holds at most one midpoint, checked when the table is built)
and one comparison, so the loops vectorise, and give the same bits
(tests/test_blockwise.py checks every midpoint's neighbourhood and a sweep of [-1, 1]).
"""
from __future__ import annotations

import numpy as np

from ._cpu import numba, scalar_helper

if numba is not None:
    from ._ndarray import as_bits, as_float

BLOCK = 256
ABSMAX = "_absmax"              # state "m" keeps its absmaxes as "m_absmax"
SHIFT = 16                      # a lookup key keeps a float's exponent and 7 fraction bits
LOW = 104 << (23 - SHIFT)       # exponents below 2**-23 share the first key
KEYS = (128 - 104) << (23 - SHIFT)      # keys a sign: up to 1.0
NEVER = 1 << SHIFT


def blocks(n: int) -> int:
    """The number of blocks (absmaxes) of a state array with n elements."""
    return -(-n // BLOCK)


def _linspace(n: int) -> np.ndarray:
    """torch.linspace(0.1, 1, n, dtype=torch.float32), as torch computes it."""
    step = float(np.float32((np.float32(1.0) - np.float32(0.1)) / np.float32(n - 1)))
    k = np.arange(n)
    return np.where(k < n // 2, float(np.float32(0.1)) + step * k,
                    1.0 - step * (n - 1 - k)).astype(np.float32)


def dynamic_map(signed: bool) -> np.ndarray:
    """bitsandbytes' ``create_dynamic_map(signed)`` (7 exponent bits), bit for bit: per
    decade 10**-6 .. 10**-1, the midpoints of an even split of [0.1, 1] into 2**i (signed)
    or 2**(i + 1) parts, scaled by the decade, with their negatives if signed; 0 and 1."""
    data = []
    for i in range(7):
        b = _linspace(2 ** i + 1 if signed else 2 ** (i + 1) + 1)
        scaled = np.float32(10.0 ** (i - 6)) * ((b[:-1] + b[1:]) / np.float32(2))
        data += [scaled, -scaled] if signed else [scaled]
    return np.sort(np.concatenate(data + [np.array([0.0, 1.0], np.float32)]))


def _midpoints(qmap: np.ndarray) -> np.ndarray:
    """The 255 midpoints of a map, then +inf (so that ``MIDS[255] < y`` is never true)."""
    return np.append((qmap[:-1] + qmap[1:]) / np.float32(2), np.float32(np.inf))


def _lookup(mids: np.ndarray) -> np.ndarray:
    """Per key (sign, then |y|'s bits >> SHIFT from LOW: a bucket of floats), ``c | T <<
    8``: c the code of the bucket's lowest value, T where its midpoint, if it holds one,
    lies in the low SHIFT bits of y's, counted upwards in value (flipped for negative y),
    so that y's code is c + (low bits >= T) (``_code``). Checked here: no bucket holds two
    midpoints, and the first one (every float below 2**-23) none."""
    k = np.arange(KEYS, dtype=np.int64)
    lo = np.where(k == 0, 0, (k + LOW) << SHIFT).astype(np.uint32).view(np.float32)
    hi = (((k + LOW + 1) << SHIFT) - 1).astype(np.uint32).view(np.float32)
    table = []
    for negative, (low, high) in enumerate(((lo, hi), (-hi, -lo))):
        first, last = (np.searchsorted(mids[:-1], x, side="left") for x in (low, high))
        if (last - first).max() > 1 or last[0] != first[0]:
            raise AssertionError("a lookup bucket holds two midpoints: use more bits")
        bits = mids[np.minimum(first, 254)].view(np.uint32) & np.uint32(NEVER - 1)
        at = (bits ^ np.uint32(NEVER - 1 if negative else 0)).astype(np.int64) + 1
        table.append(first | np.where(last > first, at, NEVER) << 8)
    return np.concatenate(table).astype(np.int32)


QMAPS = np.stack([dynamic_map(False), dynamic_map(True)])      # [signed]
MIDS = np.stack([_midpoints(m) for m in QMAPS])
LOOKUP = np.stack([_lookup(m) for m in MIDS])


# -- the reference (NumPy) -------------------------------------------------------------------
def _padded(x: np.ndarray) -> np.ndarray:
    """x's elements as rows of one block each (the last one padded with zeros)."""
    flat = np.ascontiguousarray(x, np.float32).reshape(-1)
    out = np.zeros(blocks(flat.size) * BLOCK, np.float32)
    out[:flat.size] = flat
    return out.reshape(-1, BLOCK)


def quantize(x: np.ndarray, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(codes shaped like x, absmax per block) of float32 values x (see above)."""
    rows = _padded(x)
    absmax = np.abs(rows).max(axis=1)
    absmax[np.isnan(absmax)] = np.nan       # one NaN, whatever the state's payload
    with np.errstate(all="ignore"):
        y = np.clip(rows * (np.float32(1) / absmax)[:, None], -1, 1)
    y[np.isnan(y)] = 0
    codes = np.searchsorted(MIDS[int(signed)][:-1], y, side="left").astype(np.uint8)
    return codes.reshape(-1)[:np.size(x)].reshape(np.shape(x)), absmax


def dequantize(codes: np.ndarray, absmax: np.ndarray, signed: bool,
               qmap: np.ndarray | None = None) -> np.ndarray:
    """The float32 values that ``codes`` and ``absmax`` stand for, shaped like codes (on
    ``qmap``, another 256-value map, where given: bitsandbytes' state on its own)."""
    flat = codes.reshape(-1)
    scale = np.repeat(absmax.astype(np.float32), BLOCK)[:flat.size]
    qmap = QMAPS[int(signed)] if qmap is None else qmap
    return (qmap[flat] * scale).reshape(codes.shape)


# -- the numba loops' helpers ----------------------------------------------------------------
@scalar_helper
def dequantize_tile(codes, absmax, out, signed):
    """out[:n] = the values of codes[:n] (n = codes.size), block b scaled by absmax[b]."""
    qmap = QMAPS[signed]
    for b in range(0, codes.size, BLOCK):
        scale = absmax[b // BLOCK]
        block, values = codes[b:b + BLOCK], out[b:b + BLOCK]   # (loops from 0 vectorise)
        for i in range(block.size):
            values[i] = qmap[block[i]] * scale


@scalar_helper
def _key(y):
    """y in [-1, 1] as ``key << 16 | low``: its ``_lookup`` bucket and its low bits counted
    upwards in value (integer arithmetic on its bits, each step truncated to 32 bits and
    no branch, so that it vectorises in 32-bit lanes)."""
    b = as_bits(y)
    flip = np.uint32(np.uint32(0) - np.uint32(b >> np.uint32(31)))     # all ones if y < 0
    a = np.uint32(b & np.uint32(0x7FFFFFFF))
    key = np.uint32(max(np.uint32(a >> np.uint32(SHIFT)), np.uint32(LOW)) - np.uint32(LOW))
    key = np.uint32(key + np.uint32(flip & np.uint32(KEYS)))
    low = np.uint32(np.uint32(a ^ flip) & np.uint32(NEVER - 1))
    return np.uint32(np.uint32(key << np.uint32(16)) | low)


@scalar_helper
def quantize_tile(x, codes, absmax, signed, scratch):
    """codes[:n], absmax[:blocks(n)] of the float32 values x[:n] (n = codes.size), with
    ``scratch`` (uint32, 2 * BLOCK, not x's memory: the loops would not vectorise) for
    the values' keys and table entries meanwhile. A block takes four passes: its absmax,
    its keys, the table entries (scalar loads: AVX2's gathers are slower on AMD's cores),
    the codes (c + (low bits >= T), see ``_lookup``); all but the third vectorise."""
    lookup = LOOKUP[signed]
    packed, entries = scratch[:BLOCK], scratch[BLOCK:2 * BLOCK]
    for b in range(0, codes.size, BLOCK):
        values, block = x[b:b + BLOCK], codes[b:b + BLOCK]    # (loops from 0 vectorise)
        top = np.uint32(0)                 # the largest |x| as bits: NaN's are the largest
        for i in range(block.size):
            top = max(top, as_bits(values[i]) & np.uint32(0x7FFFFFFF))
        amax = _float_of(top)
        absmax[b // BLOCK] = amax
        scale = np.float32(1) / amax
        if amax < np.inf and scale < np.inf:    # x * scale is a number (rounded: clip it)
            for i in range(block.size):
                packed[i] = _key(min(max(values[i] * scale, np.float32(-1)), np.float32(1)))
        else:                    # amax 0, tiny, inf or NaN: 0 * inf and NaN give 0
            for i in range(block.size):
                y = values[i] * scale
                packed[i] = _key(np.float32(0) if y != y else
                                 min(max(y, np.float32(-1)), np.float32(1)))
        for i in range(block.size):
            entries[i] = lookup[packed[i] >> np.uint32(16)]
        for i in range(block.size):
            e = entries[i]
            up = np.uint32(np.uint32(packed[i] & np.uint32(NEVER - 1))
                           >= np.uint32(e >> np.uint32(8)))
            block[i] = np.uint8(np.uint32(e & np.uint32(0xFF)) + up)


@scalar_helper
def _float_of(bits):
    """The float32 of ``bits`` (an absmax), a NaN as the quiet NaN (0x7FC00000)."""
    return as_float(bits if bits <= np.uint32(0x7F800000) else np.uint32(0x7FC00000))
