"""Property tests (hypothesis): for any valid hyperparameters, shapes and dtypes the
compiled backend equals the reference bit for bit, and a state_dict resume is exact."""
import numpy as np
import pytest
from cases import MATRICES_ONLY
from conftest import make_optimizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastopt
from fastopt.kernels import RULES


def in_float32(low: float, high: float):
    """Zero or numbers float32 holds (one that rounds to 0 there is refused for float32
    params)."""
    return st.floats(low, high).filter(lambda x: x == 0 or np.float32(x) != 0)


unit = in_float32(0.0, 0.999)
nonneg = in_float32(0.0, 0.1)
# A strategy per kind of hyperparameter (kernels/_rule.py KINDS): every keyword of every
# registered rule is drawn, within ranges where the float32 math stays finite.
BY_KIND = {
    "lr": nonneg,
    "nonnegative": nonneg,
    "optional_nonnegative": st.one_of(st.none(), nonneg),
    "unit_interval": unit,
    "unit_interval_closed": unit,
    "betas": st.tuples(unit, unit),
    "flag": st.booleans(),
    "etas": st.tuples(in_float32(0.01, 0.99), in_float32(1.01, 3.0)),
    "step_sizes": st.tuples(in_float32(0.0, 1e-3), in_float32(1e-3, 10.0)),
    "betas3": st.tuples(unit, unit, unit),
    "nonpositive": in_float32(-1.0, 0.0),
    "at_least_one": in_float32(1.0, 3.0),
    "eps_pair": st.tuples(st.one_of(st.none(), nonneg), nonneg),
    "triple": st.tuples(in_float32(3.0, 3.5), in_float32(-4.8, -4.0), in_float32(1.5, 2.1)),
    "iterations": st.integers(0, 6),
    "choice": st.sampled_from([None, "original", "match_rms_adamw"]),
}
NARROWER = {"Adadelta": {"lr": in_float32(0.0, 2.0)}}


def hyperparameters(rule):
    """Every keyword of ``rule`` drawn from its kind (SGD's nesterov only where valid)."""
    fields = {h.name: NARROWER.get(rule.class_name, {}).get(h.name, BY_KIND[h.kind])
              for h in rule.hyperparams}
    return st.fixed_dictionaries(fields).map(
        lambda hp: dict(hp, nesterov=hp["nesterov"] and hp["momentum"] > 0
                        and hp.get("dampening", 0) == 0) if "nesterov" in hp else hp)


ANY_SHAPE = [rule for rule in RULES.values() if rule.class_name not in MATRICES_ONLY]
cases = st.sampled_from(ANY_SHAPE).flatmap(
    lambda rule: st.tuples(st.just(rule.class_name), hyperparameters(rule)))
matrix_cases = st.sampled_from([RULES[name] for name in MATRICES_ONLY]).flatmap(
    lambda rule: st.tuples(st.just(rule.class_name), hyperparameters(rule)))
shapes = st.lists(st.integers(1, 7), min_size=0, max_size=3).map(tuple)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.skipif("numba" not in fastopt.available_backends(), reason="numba not installed")
@SETTINGS
@given(case=cases, shape=shapes, dtype=st.sampled_from([np.float32, np.float64]),
       steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_numba_equals_reference_for_any_hyperparameters(case, shape, dtype, steps, seed):
    check_numba_equals_reference(case, shape, dtype, steps, seed)


@pytest.mark.skipif("numba" not in fastopt.available_backends(), reason="numba not installed")
@SETTINGS
@given(case=matrix_cases, shape=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       dtype=st.sampled_from([np.float32, np.float64]), steps=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_matrix_rules_equal_the_reference_for_any_hyperparameters(case, shape, dtype, steps,
                                                                   seed):
    check_numba_equals_reference(case, shape, dtype, steps, seed)


def check_numba_equals_reference(case, shape, dtype, steps, seed):
    rule, hp = case
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape).astype(dtype)
    ref, fast = p0.copy(), p0.copy()
    opt_ref, opt_fast = make_optimizer(rule, ref, hp), make_optimizer(rule, fast, hp, "numba")
    with np.errstate(all="ignore"):
        for _ in range(steps):
            g = rng.standard_normal(shape).astype(dtype)
            opt_ref.step(g)
            opt_fast.step(g)
    np.testing.assert_array_equal(fast, ref)


@SETTINGS
@given(case=cases, split=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_resuming_from_a_state_dict_is_exact(case, split, seed):
    rule, hp = case
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(5) for _ in range(6)]
    straight = np.linspace(-1, 1, 5)
    opt = make_optimizer(rule, straight, hp)
    for g in grads:
        opt.step(g)
    first = np.linspace(-1, 1, 5)
    opt1 = make_optimizer(rule, first, hp)
    for g in grads[:split]:
        opt1.step(g)
    opt2 = make_optimizer(rule, first, hp)
    opt2.load_state_dict(opt1.state_dict())
    for g in grads[split:]:
        opt2.step(g)
    np.testing.assert_array_equal(first, straight)


@pytest.mark.skipif("numba" not in fastopt.available_backends(), reason="numba not installed")
@SETTINGS
@given(case=cases, layout=st.lists(st.tuples(shapes, st.sampled_from([np.float32, np.float64]),
                                              st.integers(0, 2)), min_size=1, max_size=12),
       seed=st.integers(0, 2**16))
def test_any_buckets_equal_the_reference(case, layout, seed):
    """Arrays of any shapes and dtypes, in up to three groups (the second and third with
    their own lr): the numba buckets equal the per-array reference."""
    rule, hp = case
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(shape).astype(dtype) for shape, dtype, _ in layout]
    groups = sorted({g for _, _, g in layout})

    def given_as(ps):
        return [{"params": [p for p, (_, _, g) in zip(ps, layout) if g == j],
                 **({"lr": 0.01 * j} if j else {})} for j in groups]

    order = [i for j in groups for i, (_, _, g) in enumerate(layout) if g == j]
    ref, fast = [p.copy() for p in p0], [p.copy() for p in p0]
    opt_ref = make_optimizer(rule, given_as(ref), hp)
    opt_fast = make_optimizer(rule, given_as(fast), hp, "numba")
    with np.errstate(all="ignore"):
        for _ in range(3):
            g = [rng.standard_normal(p0[i].shape).astype(p0[i].dtype) for i in order]
            opt_ref.step(g)
            opt_fast.step(g)
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(a, b)
