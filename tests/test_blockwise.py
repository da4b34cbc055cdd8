"""8-bit blockwise state (kernels/_blockwise.py): bitsandbytes' maps, the reference's
quantization (nearest value, one absmax a block), and the numba helpers' bits against it."""
import numpy as np
import pytest

import fastopt
from fastopt.kernels import _blockwise as B

NUMBA = "numba" in fastopt.available_backends()
needs_numba = pytest.mark.skipif(not NUMBA, reason="needs numba")
SIGNS = [pytest.param(0, id="unsigned"), pytest.param(1, id="signed")]


def test_the_maps_are_bitsandbytes_dynamic_maps():
    for signed in (0, 1):
        m = B.QMAPS[signed]
        assert m.dtype == np.float32 and m.shape == (256,) and np.all(np.diff(m) > 0)
        assert m[-1] == 1 and 0 in m and (m < 0).sum() == 127 * signed
    functional = pytest.importorskip("bitsandbytes.functional")
    for signed in (0, 1):
        theirs = functional.create_dynamic_map(signed=bool(signed)).numpy()
        np.testing.assert_array_equal(B.QMAPS[signed].view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("signed", SIGNS)
def test_the_reference_picks_the_nearest_value_a_tie_to_the_lower(signed):
    m = B.QMAPS[signed]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1 if signed else 0, 1, 4096).astype(np.float32)
    codes, absmax = B.quantize(x, signed)
    y = (x.reshape(-1, 256) * (np.float32(1) / absmax)[:, None]).ravel()
    distance = np.abs(m[codes] - y)
    assert np.all(distance <= np.abs(m[None, :] - y[:, None]).min(axis=1))
    mids = (m[:-1] + m[1:]) / np.float32(2)        # ties: each goes to the lower value
    codes, _ = B.quantize(_with_absmax_one(mids), signed)
    np.testing.assert_array_equal(codes.reshape(-1, 256)[:, 1:].ravel(), np.arange(255))


def test_blocks_are_per_array_with_a_short_last_one():
    x = np.arange(600, dtype=np.float32)
    codes, absmax = B.quantize(x, 0)
    assert codes.shape == (600,) and absmax.shape == (3,) == (B.blocks(600),)
    np.testing.assert_array_equal(absmax, [255, 511, 599])
    back = B.dequantize(codes, absmax, 0)
    gap = np.diff(B.QMAPS[0]).max() * absmax.max()
    assert np.abs(back - x).max() <= gap / 2


# -- the numba helpers give the reference's bits -----------------------------------------------
def _numba_quantize(x, signed):
    codes = np.empty(x.size, np.uint8)
    absmax = np.empty(B.blocks(x.size), np.float32)
    B.quantize_tile(x.copy(), codes, absmax, signed, np.empty(2 * B.BLOCK, np.uint32))
    return codes, absmax


def _with_absmax_one(y):
    """y (|y| <= 1) in blocks of 255 values and a 1.0, so that every block scales by 1."""
    y = np.concatenate([y, np.zeros(-y.size % 255, np.float32)]).reshape(-1, 255)
    return np.concatenate([np.ones((y.shape[0], 1), np.float32), y], axis=1).ravel()


@needs_numba
@pytest.mark.parametrize("signed", SIGNS)
def test_numba_codes_are_the_references_on_a_sweep_of_minus_one_to_one(signed):
    """Every 61st float32 pattern of [0, 1] and their negatives, and 8 patterns either side
    of every midpoint: the table lookup gives what the search through the map gives."""
    sweep = np.arange(0, 0x3F800001, 61, dtype=np.uint32).view(np.float32)
    mids = ((B.QMAPS[signed][:-1] + B.QMAPS[signed][1:]) / np.float32(2)).view(np.int32)
    near = (mids[:, None] + np.arange(-8, 9)).astype(np.int32).view(np.float32).ravel()
    y = np.concatenate([sweep, -sweep, near[np.abs(near) <= 1], [np.float32(-0.0)]])
    x = _with_absmax_one(y.astype(np.float32))
    for got, want in zip(_numba_quantize(x, signed), B.quantize(x, signed)):
        np.testing.assert_array_equal(got, want)


EDGES = {
    "zeros": np.zeros(300, np.float32),
    "negative zeros": np.full(300, -0.0, np.float32),
    "a NaN": np.where(np.arange(300) == 7, np.nan, np.linspace(-1, 1, 300)).astype(np.float32),
    "a negative NaN": np.where(np.arange(300) == 9, -np.nan, 0.5).astype(np.float32),
    "an inf": np.where(np.arange(300) == 3, np.inf, 0.25).astype(np.float32),
    "subnormals": np.linspace(-1e-39, 1e-39, 300).astype(np.float32),
    "huge": np.linspace(-3e38, 3e38, 300).astype(np.float32),
    "one element": np.array([-0.3], np.float32),
    "no element": np.zeros(0, np.float32),
}


@needs_numba
@pytest.mark.parametrize("signed", SIGNS)
@pytest.mark.parametrize("name", list(EDGES))
def test_numba_quantizes_edge_blocks_as_the_reference(name, signed):
    x = EDGES[name] if signed else np.abs(EDGES[name])
    (codes, absmax), (want_codes, want_absmax) = _numba_quantize(x, signed), B.quantize(x, signed)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(absmax.view(np.uint32), want_absmax.view(np.uint32))


@needs_numba
@pytest.mark.parametrize("signed", SIGNS)
def test_numba_dequantizes_as_the_reference(signed):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, 1000).astype(np.uint8)
    absmax = np.array([0.5, 3e-20, np.nan, 7.0], np.float32)
    out = np.empty(1000, np.float32)
    B.dequantize_tile(codes, absmax, out, signed)
    np.testing.assert_array_equal(out, B.dequantize(codes, absmax, signed))
