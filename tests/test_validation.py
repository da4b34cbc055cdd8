"""Bad input gets a clear error before anything is modified."""
import numpy as np
import pytest
from conftest import assert_unchanged, snapshot

import fastopt
from fastopt.kernels import RULES


class FakeDeviceArray:
    """Stands in for a GPU array: it has __cuda_array_interface__."""

    shape, dtype = (4,), np.dtype(np.float64)
    __cuda_array_interface__ = {"shape": (4,), "typestr": "<f8", "data": (0, False), "version": 3}


def two_params():
    return [np.linspace(0, 1, 4), np.linspace(1, 2, 6).reshape(2, 3)]


def stepped_optimizer(rule="Adam", backend="numpy", groups=False, **hp):
    params = two_params()
    given = [{"params": params[:1]}, {"params": params[1:]}] if groups else params
    opt = getattr(fastopt, rule)(given, backend=backend, **hp)
    opt.step([np.ones(4), np.ones((2, 3))])
    return params, opt


BAD_GRADS = [
    ("single array for a list", np.ones(4), TypeError, "grads must be a list or tuple of 2"),
    ("too few", [np.ones(4)], ValueError, "must hold 2 arrays.*grads are taken in"),
    ("wrong shape", [np.ones(4), np.ones(6)], ValueError,
     r"grads\[1\] has shape \(6,\).*grads are taken in .*order.*\(param, grad\) pairs"),
    ("swapped", [np.ones((2, 3)), np.ones(4)], ValueError,
     r"grads\[0\] has shape \(2, 3\), its param has \(4,\); grads are taken in"),
    ("dtype mismatch", [np.ones(4), np.ones((2, 3), np.float32)], TypeError,
     r"grads\[1\] has dtype float32.*grads are taken in"),
    ("pairs missing one", lambda p: [(p[1], np.ones((2, 3)))], ValueError,
     r"pairs have none for (params|param_groups)\[0"),
    ("pairs naming one twice", lambda p: [(p[0], np.ones(4))] * 2, ValueError,
     "two pairs give a grad for"),
    ("pairs with another array", lambda p: [(p[0], np.ones(4)), (p[1].copy(), np.ones((2, 3)))],
     ValueError, "pair 1's param is not one of this optimizer's"),
    ("pairs, a bad grad", lambda p: [(p[1], np.ones(4)), (p[0], np.ones((2, 3)))],
     ValueError, r"the grad paired with (params|param_groups)\[0\].* has shape \(2, 3\), its "
                 r"param has \(4,\)$"),
    ("pairs, not a pair", lambda p: [(p[0], np.ones(4)), [p[1], np.ones((2, 3))]],
     TypeError, "entry 1 is a list of 2, not a pair"),
    ("non-contiguous", [np.ones(4), np.ones((3, 2)).T], ValueError, "C-contiguous"),
    ("not an array", [np.ones(4), [[1.0] * 3] * 2], TypeError, "must be a numpy.ndarray"),
    ("device array", [np.ones(4), FakeDeviceArray()], TypeError, "a device array"),
]


@pytest.mark.parametrize("groups", [False, True], ids=["one group", "two groups"])
@pytest.mark.parametrize("backend", [b for b in ("numpy", "numba")
                                     if b in fastopt.available_backends()])
@pytest.mark.parametrize("what,grads,exc,match", BAD_GRADS, ids=[b[0] for b in BAD_GRADS])
def test_bad_grads(what, grads, exc, match, backend, groups):
    """Every grad is checked before any bucket is updated: a bad second grad leaves the
    first group's param alone too."""
    params, opt = stepped_optimizer(backend=backend, groups=groups)
    snap = snapshot(params, opt)
    with pytest.raises(exc, match=match):
        opt.step(grads(params) if callable(grads) else grads)
    assert_unchanged(params, opt, snap)
    assert opt.step_count == 1


@pytest.mark.parametrize("groups", [False, True], ids=["one group", "two groups"])
def test_grads_by_param_in_any_order_step_as_in_group_order(groups):
    """(param, grad) pairs, a list or a zip, in any order: the same step as the grads in
    group order, bit for bit; for one array too."""
    ordered, opt = stepped_optimizer(groups=groups)
    paired, opt2 = stepped_optimizer(groups=groups)
    rng = np.random.default_rng(0)
    for k in range(3):
        g = [rng.standard_normal(4), rng.standard_normal((2, 3))]
        opt.step(g)
        opt2.step([(paired[1], g[1]), (paired[0], g[0])] if k % 2 else zip(paired, g))
    for a, b in zip(ordered, paired):
        np.testing.assert_array_equal(a, b)
    p = np.ones(3)
    one = fastopt.SGD(p, lr=0.1, backend="numpy")
    one.step([(p, np.ones(3))])
    np.testing.assert_array_equal(p, np.full(3, 0.9))


def test_list_of_grads_for_a_single_param():
    p = np.ones(3)
    opt = fastopt.SGD(p, lr=0.1, backend="numpy")
    with pytest.raises(TypeError, match="grads must be a single array like params"):
        opt.step([np.ones(3)])
    np.testing.assert_array_equal(p, np.ones(3))


@pytest.mark.parametrize("bad_lr", [-0.1, float("nan"), float("inf"), "0.1"])
def test_schedule_returning_a_bad_lr_changes_nothing(bad_lr):
    params = two_params()
    opt = fastopt.Adam(params, lr=lambda t: 0.1 if t == 1 else bad_lr, backend="numpy")
    opt.step([np.ones(4), np.ones((2, 3))])
    snap = snapshot(params, opt)
    with pytest.raises(ValueError, match="lr schedule at step 2"):
        opt.step([np.ones(4), np.ones((2, 3))])
    assert_unchanged(params, opt, snap)


BAD_PARAMS = [
    ("integer", np.arange(4), TypeError, "dtype float32, float64, bfloat16 .*got int64"),
    ("complex", np.ones(4, complex), TypeError, "got complex128"),
    ("non-contiguous", np.ones((4, 4))[:, 0], ValueError, "C-contiguous"),
    ("read-only", np.broadcast_to(np.ones(1), (4,)), ValueError, "read-only|C-contiguous"),
    ("python list", [1.0, 2.0], TypeError, r"params\[0\] must be a numpy.ndarray"),
    ("empty list", [], ValueError, "params is empty"),
    ("overlapping", [np.ones(8)[:4], None], ValueError, "share memory"),
]


@pytest.mark.parametrize("what,params,exc,match", BAD_PARAMS, ids=[b[0] for b in BAD_PARAMS])
def test_bad_params(what, params, exc, match):
    if what == "overlapping":
        base = np.ones(8)
        params = [base[:5], base[4:]]
    with pytest.raises(exc, match=match):
        fastopt.Adam(params, backend="numpy")


def test_read_only_params():
    p = np.ones(4)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="params is read-only"):
        fastopt.SGD(p, backend="numpy")


BAD_HYPERPARAMS = [      # joint checks; every keyword's own kind is covered below
    ("SGD", dict(nesterov=True), "nesterov=True needs momentum > 0"),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
]


# One bad value per kind of hyperparameter (kernels/_rule.py KINDS), for every keyword of
# every registered rule: the error names the keyword.
BAD_BY_KIND = {
    "lr": [-1.0, float("nan"), "0.1"],
    "nonnegative": [-1e-3, float("inf"), None],
    "optional_nonnegative": [-1.0, float("nan")],
    "unit_interval": [1.0, -0.1],
    "unit_interval_closed": [1.5, float("nan")],
    "betas": [0.9, (0.9, 1.0), (-0.1, 0.9), (0.9, float("nan"))],
    "flag": ["yes", 2],
    "etas": [1.2, (1.2, 0.5), (0.0, 1.2), (0.5, 1.0), (0.5, float("inf")), {0.5, 1.2}],
    "step_sizes": [1e-6, (0.1, 0.01), (-1.0, 1.0), (0.0, float("nan")), "ab"],
    "betas3": [(0.9, 0.999), (0.9, 0.999, 1.0), (0.9, -0.1, 0.9), {0.1, 0.2, 0.3}],
    "nonpositive": [0.1, float("nan"), None],
    "at_least_one": [0.5, float("inf")],
    "eps_pair": [1e-3, (None, -1.0), (-1e-30, 1e-3), (None, None), {0.1, 0.2}],
    "triple": [(1.0, 2.0), (1.0, float("nan"), 2.0), "abc", {1.0, 2.0, 3.0}],
    "iterations": [-1, 100, 2.5, True],
    "choice": ["sqrt", 1],
}
BAD_HYPERPARAMS += [(rule.class_name, {h.name: bad}, rf"{h.name}(\[\d\])? must")
                    for rule in RULES.values() for h in rule.hyperparams
                    for bad in BAD_BY_KIND[h.kind]]


def test_every_kind_of_hyperparameter_has_bad_values():
    from fastopt.kernels._rule import KINDS

    assert set(BAD_BY_KIND) == set(KINDS)


@pytest.mark.parametrize("rule,hp,match", BAD_HYPERPARAMS,
                         ids=[f"{r}-{list(h)[0]}={list(h.values())[0]!r}"
                              for r, h, _ in BAD_HYPERPARAMS])
def test_bad_hyperparameters(rule, hp, match):
    p = np.ones((3, 3))             # (a matrix: Muon takes nothing else)
    with pytest.raises((ValueError, TypeError), match=match) as info:
        getattr(fastopt, rule)(p, backend="numpy", **hp)
    assert str(info.value).startswith(rule + ":")
    np.testing.assert_array_equal(p, np.ones((3, 3)))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        fastopt.SGD(np.ones(3), backend="jax")
