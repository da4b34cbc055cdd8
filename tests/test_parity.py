"""Every compiled backend against the NumPy reference, over the whole rule table.

The Numba loops evaluate the reference's operations in the same order, in the array dtype,
from the same host scalars, with IEEE rounding and no contraction into fused multiply-adds
(no fastmath flags): so they must agree with the reference bit for bit, float32 and float64,
NaN and Inf included. Any formula or rounding difference fails these tests.
"""
import numpy as np
import pytest
from cases import parametrize_cases
from conftest import assert_bits_equal, assert_same_from_signed_zeros, make_optimizer

import fastopt
from fastopt.kernels import RULES
from fastopt.kernels._cpu import PARALLEL_THRESHOLD_BYTES

STEPS = 60
SIZES = [1000, PARALLEL_THRESHOLD_BYTES // 12 + 1001]   # the serial and the parallel path

needs_numba = pytest.mark.skipif("numba" not in fastopt.available_backends(),
                                 reason="numba is not installed")


def run_both(rule, hp, backend, dtype, n, grads_fn, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n).astype(dtype)
    ref, fast = p0.copy(), p0.copy()
    opt_ref = make_optimizer(rule, ref, hp, "numpy")
    opt_fast = make_optimizer(rule, fast, hp, backend)
    assert opt_fast.backend == backend
    if backend == "numba":       # the size picks the path under test
        (bucket,) = opt_fast._groups[0].buckets
        parallel = bucket.kernel.loop.targetoptions.get("parallel", False)
        assert bool(parallel) == (n > 1000), (n, parallel)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            g = grads_fn(rng, n, dtype)
            opt_ref.step(g)
            opt_fast.step(g)
    return opt_ref, opt_fast, ref, fast


def gaussian(rng, n, dtype):
    return rng.standard_normal(n).astype(dtype)


def assert_state_equal(opt_ref, opt_fast):
    """Every state array identical."""
    for st_ref, st_fast in zip(opt_ref.state, opt_fast.state):
        assert st_ref.keys() == st_fast.keys()
        for k in st_ref:
            assert_bits_equal(st_fast[k], st_ref[k], err_msg=k)


@needs_numba
@pytest.mark.parametrize("n", SIZES, ids=["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_numba_matches_reference(rule, hp, dtype, n):
    opt_ref, opt_fast, ref, fast = run_both(rule, hp, "numba", dtype, n, gaussian)
    assert fast.dtype == dtype
    assert not np.array_equal(fast, np.random.default_rng(0).standard_normal(n).astype(dtype))
    assert_bits_equal(fast, ref)
    assert_state_equal(opt_ref, opt_fast)


def with_non_finite(rng, n, dtype):
    """Gaussian grads with NaN, +Inf, -Inf, zeros and huge values sprinkled in."""
    g = rng.standard_normal(n).astype(dtype)
    idx = rng.choice(n, size=5 * 8, replace=False).reshape(5, 8)
    g[idx[0]], g[idx[1]], g[idx[2]], g[idx[3]] = np.nan, np.inf, -np.inf, 0.0
    g[idx[4]] = np.finfo(dtype).max / 4
    return g


@needs_numba
@pytest.mark.parametrize("n", SIZES, ids=["serial", "parallel"])
@parametrize_cases()
def test_numba_propagates_nan_and_inf_like_reference(rule, hp, n):
    opt_ref, opt_fast, ref, fast = run_both(rule, hp, "numba", np.float32, n, with_non_finite,
                                            steps=6)
    # (a NaN in a grad makes its param's norms NaN: LAMB and LARS then step it all to NaN)
    assert np.isnan(ref).any() and (np.isfinite(ref).any() or RULES[rule].per_tensor)
    assert_bits_equal(fast, ref)           # NaN positions equal too
    assert_state_equal(opt_ref, opt_fast)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_numba_keeps_the_sign_of_zero_like_reference(rule, hp, dtype):
    """Signed zeros and NaN in params, state and grads (Lion's sign(-0.0), Adam's max)."""
    assert_same_from_signed_zeros(rule, hp, dtype,
                                  lambda p: make_optimizer(rule, p, hp, "numba"))


@needs_numba
def test_numba_state_dict_loads_into_numpy_and_back():
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(100) for _ in range(10)]
    a, b = np.ones(100), np.ones(100)
    fast = fastopt.Nadam(a, backend="numba")
    ref = fastopt.Nadam(b, backend="numpy")
    for g in grads[:5]:
        fast.step(g)
    ref.load_state_dict(fast.state_dict())
    b[:] = a
    for g in grads[5:]:
        fast.step(g)
        ref.step(g)
    np.testing.assert_array_equal(a, b)
    fast.load_state_dict(ref.state_dict())
    assert fast.step_count == 10


@needs_numba
def test_numba_follows_numbas_thread_count():
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        n = SIZES[1]
        opt_ref, opt_fast, ref, fast = run_both("Adam", {"lr": 0.01}, "numba", np.float32, n,
                                                gaussian, steps=5)
        np.testing.assert_array_equal(fast, ref)
    finally:
        numba.set_num_threads(before)
