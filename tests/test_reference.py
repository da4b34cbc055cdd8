"""The NumPy reference of every rule against the independent scalar-loop formulas."""
import numpy as np
import pytest
from cases import parametrize_cases
from conftest import make_optimizer
from scalar_rules import run_scalar

import fastopt

STEPS = 25


def random_run(rule, hp, rng, dtype=np.float64, shape=(8, 8)):
    """A 2-D param (a matrix: LARS's trust ratio applies) and its grads."""
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]
    return p0, grads


@parametrize_cases()
def test_reference_matches_scalar_loop_float64(rule, hp, rng):
    p0, grads = random_run(rule, hp, rng)
    p = p0.copy()
    opt = make_optimizer(rule, p, hp)
    for g in grads:
        opt.step(g)
    expected = run_scalar(rule, hp, p0, grads, [hp.get("lr", opt.hyperparams["lr"])] * STEPS)
    assert not np.array_equal(p, p0)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-13)


@parametrize_cases()
def test_reference_float32_stays_float32_and_close(rule, hp, rng):
    """float32 math stays float32 (no silent promotion) and tracks the float64 formula.

    25 steps of O(1) updates with float32 rounding (eps 6e-8 per operation, ~10
    operations per step) stay well inside 1e-4 relative to the parameter scale."""
    p0, grads = random_run(rule, hp, rng, np.float32)
    p = p0.copy()
    opt = make_optimizer(rule, p, hp)
    for g in grads:
        opt.step(g)
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for st in opt.state for s in st.values())
    expected = run_scalar(rule, hp, p0.astype(np.float64), [g.astype(np.float64) for g in grads],
                          [hp["lr"] if "lr" in hp else opt.hyperparams["lr"]] * STEPS)
    np.testing.assert_allclose(p, expected, rtol=1e-4, atol=1e-4)


@parametrize_cases()
def test_multiple_params_of_any_shape(rule, hp, rng):
    """A list of params of different shapes and dtypes equals one optimizer per param."""
    shapes = [(3, 4), (5,), (2, 3, 2), ()]
    dtypes = [np.float64, np.float32, np.float64, np.float32]
    params = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    singles = [p.copy() for p in params]
    opt = make_optimizer(rule, params, hp)
    opts = [make_optimizer(rule, s, hp) for s in singles]
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
        opt.step(grads)
        for o, g in zip(opts, grads):
            o.step(g)
    for p, s in zip(params, singles):
        np.testing.assert_array_equal(p, s)


def test_schedule_lr_is_used_per_step(rng):
    p0 = rng.standard_normal(8)
    grads = [rng.standard_normal(8) for _ in range(10)]
    sched = fastopt.schedules.inverse_time(0.1, k=0.5)
    p = p0.copy()
    opt = fastopt.Adam(p, lr=sched, backend="numpy")
    for g in grads:
        opt.step(g)
    expected = run_scalar("Adam", {}, p0, grads, [sched(t) for t in range(1, 11)])
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_nan_and_inf_in_grads_propagate_like_the_formula():
    p = np.zeros(4)
    opt = fastopt.Adam(p, lr=0.1, backend="numpy")
    with np.errstate(invalid="ignore"):
        opt.step(np.array([np.nan, np.inf, -np.inf, 1.0]))
    assert np.isnan(p[0]) and np.isnan(p[1]) and np.isnan(p[2]) and np.isfinite(p[3])


@pytest.mark.parametrize("rule", ["SGD", "Adam", "Nadam"])
def test_zero_size_params_are_fine(rule):
    p = np.zeros((0, 3))
    opt = make_optimizer(rule, p, {})
    opt.step(np.zeros((0, 3)))
    assert opt.step_count == 1
