"""EarlyStopping, and gradient checking with SciPy's signatures and numbers."""
import math

import numpy as np
import pytest

import fastopt


# -- EarlyStopping ----------------------------------------------------------------------------
def test_stops_after_patience_values_without_improvement():
    es = fastopt.EarlyStopping(patience=2)
    decisions = [es.update(v) for v in (3.0, 2.0, 2.5, 2.1, 1.0)]
    assert decisions == [False, False, False, True, False]
    assert (es.best, es.best_epoch, es.epoch) == (1.0, 5, 5)


def test_min_delta_is_the_improvement_that_counts():
    es = fastopt.EarlyStopping(patience=1, min_delta=0.1)
    assert not es.update(1.0) and es.improved
    assert es.update(0.95) and not es.improved          # better by 0.05 < min_delta
    assert es.best == 1.0 and es.best_epoch == 1


def test_max_mode_and_nan():
    es = fastopt.EarlyStopping(patience=2, mode="max")
    es.update(0.5)
    es.update(0.7)
    assert es.best == 0.7 and es.best_epoch == 2
    assert not es.update(math.nan) and not es.improved   # NaN never improves
    assert es.update(0.6)


def test_improved_marks_the_epochs_to_keep():
    """The demo's pattern: keep the params of the last improving epoch, restore them."""
    es = fastopt.EarlyStopping(patience=3)
    kept = None
    for epoch, loss in enumerate([5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 3.9], start=1):
        stop = es.update(loss)
        if es.improved:
            kept = epoch
        if stop:
            break
    assert kept == es.best_epoch == 4 and epoch == 7


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(patience=0), ValueError, "patience must be an integer >= 1"),
    (dict(min_delta=-1.0), ValueError, "min_delta must be"),
    (dict(mode="down"), ValueError, "mode must be 'min' or 'max'"),
])
def test_bad_settings_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastopt.EarlyStopping(**kwargs)
    with pytest.raises(TypeError, match="value must be a real number"):
        fastopt.EarlyStopping().update("0.5")


# -- gradient checking ---------------------------------------------------------------------------
def f(x, a=1.0):
    return float(a * np.sum(np.sin(x) * x ** 2))


def g(x, a=1.0):
    return a * (np.cos(x) * x ** 2 + 2 * x * np.sin(x))


def test_approx_fprime_is_scipys_bit_for_bit():
    so = pytest.importorskip("scipy.optimize")
    x = np.array([0.3, -1.2, 2.0, 0.0, 1e9])
    for eps in (1e-6, fastopt.gradcheck.EPSILON, np.full(5, 1e-7)):
        np.testing.assert_array_equal(fastopt.approx_fprime(x, f, eps, 2.0),
                                      so.approx_fprime(x, f, eps, 2.0))
    jac = lambda v: np.array([v[0] * v[1], np.sin(v[2])])        # noqa: E731
    np.testing.assert_array_equal(fastopt.approx_fprime(x[:3], jac), so.approx_fprime(x[:3], jac))


def test_approx_fprime_approximates_the_gradient():
    x = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(fastopt.approx_fprime(x, f), g(x), rtol=1e-6)


@pytest.mark.parametrize("direction,rng", [("all", None), ("random", 3)])
def test_check_grad_is_scipys_and_tells_a_wrong_gradient(direction, rng):
    so = pytest.importorskip("scipy.optimize")
    x = np.array([0.3, -1.2, 2.0])
    ours = fastopt.check_grad(f, g, x, 2.0, direction=direction,
                              rng=np.random.default_rng(rng))
    theirs = so.check_grad(f, g, x, 2.0, direction=direction, rng=np.random.default_rng(rng))
    assert ours == theirs and ours < 1e-6
    wrong = fastopt.check_grad(f, lambda v, a: 1.01 * g(v, a), x, 2.0, direction=direction,
                               rng=np.random.default_rng(rng))
    assert wrong > 1e-3


def test_check_grad_names_a_bad_direction():
    with pytest.raises(ValueError, match="direction must be 'all' or 'random'"):
        fastopt.check_grad(f, g, np.ones(2), direction="some")


def test_check_grad_takes_scipys_legacy_seed_and_approx_fprime_refuses_2d():
    so = pytest.importorskip("scipy.optimize")
    x = np.array([0.3, -1.2, 2.0])
    assert fastopt.check_grad(f, g, x, direction="random", seed=0) == \
        so.check_grad(f, g, x, direction="random", seed=0)
    with pytest.raises(ValueError, match="at most 1 dimension"):
        fastopt.approx_fprime(np.ones((2, 2)), lambda v: float(v.sum()))
    with pytest.raises(ValueError, match="scalar or a 1-d array"):
        fastopt.approx_fprime(np.ones(2), lambda v: np.ones((2, 2)))
