import numpy as np
import pytest

import fastopt
from fastopt.kernels import RULES


def make_optimizer(rule: str, params, hp: dict, backend: str = "numpy", **options):
    return getattr(fastopt, rule)(params, backend=backend, **hp, **options)


def assert_bits_equal(actual, expected, err_msg: str = "") -> None:
    """Equal values, NaN in the same places, and the same sign on every zero (the one case
    where == holds between different bit patterns)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_array_equal(actual, expected, err_msg=err_msg)
    numbers = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(actual[numbers]), np.signbit(expected[numbers]),
                                  err_msg=f"signed zeros differ {err_msg}")


def assert_same_from_signed_zeros(rule: str, hp: dict, dtype, make_other) -> None:
    """The optimizer ``make_other(params)`` against the NumPy reference, both started from
    every combination of +0.0, -0.0, +-1 and NaN in a param, its state (all state arrays
    alike, set through a state_dict) and its first grad; bits compared after every step
    (a later step may hide a wrong sign)."""
    values = np.array([0.0, -0.0, 1.0, -1.0, np.nan], dtype)
    p0, state, g = (a.ravel() for a in np.meshgrid(values, values, values, indexing="ij"))
    ref, other = p0.copy(), p0.copy()
    opt_ref, opt_other = make_optimizer(rule, ref, hp), make_other(other)
    sd = opt_ref.state_dict()
    never_negative = RULES[rule].nonnegative_state      # -1 is refused there; -0.0 is not
    sd.update({k: np.where(state < 0, -state, state) if k[2:] in never_negative else state.copy()
               for k in sd if k.startswith("0.")})
    opt_ref.load_state_dict(sd)
    opt_other.load_state_dict(sd)
    with np.errstate(all="ignore"):
        for step, grad in enumerate([g, np.roll(g, 7), np.roll(g, 31)]):
            opt_ref.step(grad)
            opt_other.step(grad)
            assert_bits_equal(other, ref, err_msg=f"params, step {step}")
            for k, v in opt_ref.state[0].items():
                assert_bits_equal(opt_other.state[0][k], v, err_msg=f"{k}, step {step}")


def snapshot(params, opt):
    """Copies of the params and the optimizer's state_dict, for assert_unchanged."""
    return [p.copy() for p in params], opt.state_dict()


def assert_unchanged(params, opt, snap) -> None:
    """The params and every entry of the state_dict exactly as in ``snap``."""
    old_params, old_sd = snap
    for p, q in zip(params, old_params):
        np.testing.assert_array_equal(p, q)
    sd = opt.state_dict()
    assert sd.keys() == old_sd.keys()
    for k in sd:
        np.testing.assert_array_equal(sd[k], old_sd[k], err_msg=k)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run only where the cupy backend can (cupy and a CUDA device)."""
    if "cupy" in fastopt.available_backends():
        return
    skip = pytest.mark.skip(reason="needs cupy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
