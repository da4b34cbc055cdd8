"""Param groups, live hyperparameters and buckets of many arrays, against the reference.

Every path is compared bit for bit with plain optimizers of the NumPy reference: a group
must behave exactly like an optimizer of its own with the group's hyperparameters.
"""
import copy
import pickle

import numpy as np
import pytest
from cases import parametrize_cases
from conftest import assert_bits_equal, make_optimizer

import fastopt
from fastopt.kernels import RULES
from fastopt.kernels._rule import KINDS
from fastopt.kernels._cpu import PARALLEL_THRESHOLD_BYTES

HOST_BACKENDS = [b for b in ("numpy", "numba") if b in fastopt.available_backends()]


def arrays(shapes, dtypes=(np.float64,), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtypes[i % len(dtypes)]) for i, s in enumerate(shapes)]


def grads_like(params, rng):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def copies(params):
    return [p.copy() for p in params]


def assert_same_as_reference(rule, hp, backend, params, steps=3, seed=2, check=None):
    """``steps`` steps of ``backend`` and of the reference from copies of ``params``: every
    array bit for bit alike (``check(opt)`` runs on the optimizer under test first)."""
    fast, ref = copies(params), copies(params)
    opt, opt_ref = make_optimizer(rule, fast, hp, backend), make_optimizer(rule, ref, hp)
    if check:
        check(opt)
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            g = grads_like(params, rng)
            opt.step(g)
            opt_ref.step(g)
    for a, b in zip(fast, ref):
        assert_bits_equal(a, b)


# -- groups against one optimizer per group ---------------------------------------------
MOVED = {   # per kind of hyperparameter: a value a second group takes instead of the default
    "lr": lambda v: v / 2,
    "nonnegative": lambda v: 2 * v or 0.05,
    "optional_nonnegative": lambda v: 2 * v or 0.05,
    "unit_interval": lambda v: 0.9 * v or 0.1,
    "unit_interval_closed": lambda v: 0.9 * v or 0.1,
    "betas": lambda b: (0.9 * b[0], 0.9 * b[1]),
    "etas": lambda e: (0.9 * e[0], 1.1 * e[1]),
    "step_sizes": lambda s: (2 * s[0], 0.5 * s[1]),
    "betas3": lambda b: tuple(0.9 * x for x in b),
    "nonpositive": lambda v: 0.5 * v or -0.5,
    "at_least_one": lambda v: 2 * v,
    "eps_pair": lambda e: (1e-20 if e[0] is None else 2 * e[0], 2 * e[1]),
    "triple": lambda t: tuple(0.9 * x for x in t),
    "iterations": lambda v: v + 1,
    "choice": lambda v: "match_rms_adamw",
}


def overrides(rule, hp=None):
    """The hyperparameters a second group sets differently: each but the flags moved from
    its default by its kind (from the registry, so that a new rule is covered), where the
    rule's joint checks allow it with the case's ``hp`` (Nesterov keeps dampening 0)."""
    moved = {}
    for h in RULES[rule].hyperparams:
        if h.kind == "flag" or h.default is None:
            continue
        trial = {**moved, h.name: MOVED[h.kind](h.default)}
        try:
            RULES[rule].checked(rule, {**RULES[rule].defaults, **(hp or {}), **trial})
        except ValueError:
            continue
        moved = trial
    return moved


def test_every_kind_of_hyperparameter_can_be_moved():
    assert set(MOVED) == set(KINDS) - {"flag"}
    for rule in RULES:
        moved = overrides(rule)
        assert set(moved) == {h.name for h in RULES[rule].hyperparams
                              if h.kind != "flag" and h.default is not None}, rule
        for name, value in moved.items():
            assert value != RULES[rule].defaults[name], (rule, name)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@parametrize_cases()
def test_groups_match_one_optimizer_per_group(rule, hp, backend):
    shapes = [(4, 3), (5,), (), (0,), (2, 2, 2)]
    params = arrays(shapes, (np.float64, np.float32))
    together, first, second = copies(params), copies(params[:3]), copies(params[3:])
    opt = make_optimizer(rule, [{"params": together[:3]},
                                {"params": together[3:], **overrides(rule, hp)}], hp, backend)
    alone = [make_optimizer(rule, first, hp, "numpy"),
             make_optimizer(rule, second, dict(hp, **overrides(rule, hp)), "numpy")]
    rng = np.random.default_rng(1)
    with np.errstate(all="ignore"):
        for _ in range(6):
            g = grads_like(params, rng)
            opt.step(g)
            alone[0].step(g[:3])
            alone[1].step(g[3:])
    for a, b in zip(together, first + second):
        assert_bits_equal(a, b)
    states = alone[0].state + alone[1].state
    for st, ref in zip(opt.state, states):
        assert st.keys() == ref.keys()
        for k in st:
            assert_bits_equal(st[k], ref[k], err_msg=k)


def test_nadam_mu_product_is_per_group_and_advances_once_a_step():
    """Each group's momentum schedule is its own (as PyTorch keeps it per param)."""
    p = arrays([(3,), (2,), (4,)])
    opt = fastopt.Nadam([{"params": p[:2]}, {"params": p[2:], "momentum_decay": 0.02}],
                        backend="numpy")
    for _ in range(3):
        opt.step([np.ones(3), np.ones(2), np.ones(4)])
    solo = fastopt.Nadam(np.zeros(3), backend="numpy")
    for _ in range(3):
        solo.step(np.ones(3))
    sd = opt.state_dict()
    assert sd["groups.0.mu_product"] == solo.state_dict()["groups.0.mu_product"]
    assert sd["groups.1.mu_product"] != sd["groups.0.mu_product"]


# -- buckets: many arrays, mixed dtypes, empty and 0-d arrays, the parallel split -------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@parametrize_cases()
def test_thousands_of_tiny_arrays_match_reference(rule, hp, backend):
    shapes = [(i % 3,) if i % 5 else () for i in range(2000)]
    assert_same_as_reference(rule, hp, backend, arrays(shapes, (np.float32, np.float64)))


@pytest.mark.skipif("numba" not in HOST_BACKENDS, reason="numba is not installed")
@pytest.mark.parametrize("threads", [1, 2, 3])
@parametrize_cases()
def test_parallel_bucket_splits_across_arrays_exactly(rule, hp, threads):
    """A bucket over the parallel threshold: each thread's part starts and ends inside
    arrays (sizes chosen so), and the result is the reference's bit for bit."""
    import numba

    n = PARALLEL_THRESHOLD_BYTES // 4
    shapes = [(n // 3 + 7,), (0,), (n // 5, 1), (), (n // 2 + 1,), (3, 3)]
    def takes_the_parallel_loop(opt):
        (bucket,) = opt._groups[0].buckets
        assert bucket.kernel.loop.targetoptions.get("parallel")

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        assert_same_as_reference(rule, hp, "numba", arrays(shapes, (np.float32,)),
                                 check=takes_the_parallel_loop)
    finally:
        numba.set_num_threads(before)


@pytest.mark.skipif("numba" not in HOST_BACKENDS, reason="numba is not installed")
def test_grads_the_compiled_check_cannot_vouch_for_take_the_general_route():
    """A subclass, a read-only grad and an equal dtype object of its own are accepted, with
    the same result as plain arrays."""
    class Sub(np.ndarray):
        pass

    params = arrays([(3, 2), (4,), (5,)])
    fast, ref = copies(params), copies(params)
    opt, opt_ref = fastopt.Adam(fast, backend="numba"), fastopt.Adam(ref, backend="numpy")
    rng = np.random.default_rng(4)
    for _ in range(3):
        g = grads_like(params, rng)
        odd = [g[0].view(Sub), g[1].copy(), np.frombuffer(g[2].tobytes(), np.dtype("<f8"))]
        odd[1].flags.writeable = False
        opt.step(odd)
        opt_ref.step(g)
    for a, b in zip(fast, ref):
        assert_bits_equal(a, b)


@pytest.mark.skipif("numba" not in HOST_BACKENDS, reason="numba is not installed")
@pytest.mark.parametrize("dtypes", [(np.float32,), (np.float32, np.float64)],
                         ids=["one bucket", "two buckets"])
def test_plain_grads_take_the_compiled_route_and_the_python_route_agrees(dtypes, monkeypatch):
    from fastopt.kernels import _ndarray

    assert _ndarray.FIELDS is not None, "the ndarray header layout was not recognised here"
    params = arrays([(3, 2), (), (0,), (4,)], dtypes)
    fast, slow, ref = copies(params), copies(params), copies(params)
    opt_fast = fastopt.Adam(fast, backend="numba")
    monkeypatch.setattr(_ndarray, "FIELDS", None)          # as where the layout is unknown
    opt_slow = fastopt.Adam(slow, backend="numba")
    assert opt_slow._resolver.compiled is None
    opt_ref = fastopt.Adam(ref, backend="numpy")
    rng = np.random.default_rng(7)
    for _ in range(3):
        g = grads_like(params, rng)
        resolver = opt_fast._resolver
        ids = np.fromiter(map(id, g), np.intp, len(g))
        assert resolver.compiled(ids, resolver.table, resolver.dims, resolver.spans,
                                 resolver.pointers, resolver.layout) == -1
        for opt in (opt_fast, opt_slow, opt_ref):
            opt.step(g)
    for a, b, c in zip(fast, slow, ref):
        assert_bits_equal(a, c)
        assert_bits_equal(b, c)


# -- live hyperparameters -----------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@parametrize_cases()
def test_changed_hyperparameters_act_like_a_fresh_optimizer_from_the_state_dict(rule, hp,
                                                                                backend):
    params = arrays([(3, 4), (6,)])
    live, fresh_params = copies(params), None
    opt = make_optimizer(rule, [{"params": live[:1]}, {"params": live[1:]}], hp, backend)
    rng = np.random.default_rng(5)
    with np.errstate(all="ignore"):
        for _ in range(3):
            opt.step(grads_like(params, rng))
        # all but switching momentum on, which needs state the group did not keep
        opt.param_groups[1].update({k: v for k, v in overrides(rule, hp).items()
                                    if k != "momentum" or hp.get("momentum")})
        opt.param_groups[0]["lr"] = opt.param_groups[0]["lr"] * 0.5
        fresh_params = copies(live)
        fresh = make_optimizer(rule, [{"params": fresh_params[:1]},
                                      {"params": fresh_params[1:]}], hp, backend)
        fresh.load_state_dict(opt.state_dict())
        assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
        step_alike(opt, fresh, params, rng, 3)
    for a, b in zip(live, fresh_params):
        assert_bits_equal(a, b)


def step_alike(opt, ref, params, rng, steps, before=lambda t: None):
    """``steps`` steps of both optimizers with the same random grads like ``params``,
    ``before(t)`` ahead of each."""
    for t in range(steps):
        before(t)
        g = grads_like(params, rng)
        opt.step(g)
        ref.step(g)


def test_a_changed_lr_is_used_from_the_next_step():
    p = np.zeros(3)
    opt = fastopt.SGD(p, lr=0.1, backend="numpy")
    opt.step(np.ones(3))
    opt.param_groups[0]["lr"] = 0.0
    opt.step(np.ones(3))
    np.testing.assert_array_equal(p, -0.1)
    opt.param_groups[0]["lr"] = 1.0
    opt.step(np.ones(3))
    np.testing.assert_array_equal(p, -1.1)


def test_unchanged_groups_keep_their_kernels():
    p = np.zeros(3)
    opt = fastopt.Adam(p, backend="numpy")
    kernel = opt._groups[0].buckets[0].kernel
    opt.param_groups[0]["lr"] = 0.5
    opt.param_groups[0]["betas"] = (0.5, 0.6)
    opt.step(np.ones(3))
    assert opt._groups[0].buckets[0].kernel is kernel


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_schedules_per_group(backend):
    params = arrays([(4,), (3,)])
    fast = copies(params)
    halve = fastopt.schedules.exponential(0.1, 0.5)
    opt = fastopt.SGD([{"params": fast[:1], "lr": halve}, {"params": fast[1:]}], lr=0.2,
                      backend=backend)
    for _ in range(3):
        opt.step([np.ones(4), np.ones(3)])
    lrs_first = sum(halve(t) for t in (1, 2, 3))
    np.testing.assert_allclose(fast[0], params[0] - lrs_first, rtol=0, atol=1e-15)
    np.testing.assert_allclose(fast[1], params[1] - 0.6, rtol=0, atol=1e-15)


def test_a_flag_change_before_the_first_step_rebuilds():
    p = np.zeros(3)
    opt = fastopt.Adam(p, backend="numpy")
    opt.param_groups[0]["amsgrad"] = True
    opt.step(np.ones(3))
    assert set(opt.state[0]) == {"m", "v", "vmax"}


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_flag_change_on_the_same_state_rebuilds_the_kernel(backend):
    """Nesterov on and off: same state, another kernel; the result follows the flag."""
    params = arrays([(5,)])
    a, b = copies(params), copies(params)
    live = fastopt.SGD(a, lr=0.1, momentum=0.9, backend=backend)
    plain = fastopt.SGD(b, lr=0.1, momentum=0.9, backend="numpy")
    rng = np.random.default_rng(6)
    for step in range(6):
        if step == 3:
            live.param_groups[0]["nesterov"] = True
            sd = plain.state_dict()
            plain = fastopt.SGD(b, lr=0.1, momentum=0.9, nesterov=True, backend="numpy")
            plain.load_state_dict(dict(sd, **{"groups.0.nesterov": True}))
        g = grads_like(params, rng)
        live.step(g)
        plain.step(g)
    assert_bits_equal(a[0], b[0])


def test_a_flag_change_that_needs_state_this_group_lacks_raises_and_changes_nothing():
    p = np.zeros(3)
    opt = fastopt.Adam(p, backend="numpy")
    opt.step(np.ones(3))
    before = p.copy(), opt.state_dict()
    opt.param_groups[0]["amsgrad"] = True
    with pytest.raises(ValueError, match=r"param_groups\[0\].*amsgrad.*vmax"):
        opt.step(np.ones(3))
    np.testing.assert_array_equal(p, before[0])
    assert opt.step_count == 1
    opt.param_groups[0]["amsgrad"] = False           # put back: the optimizer goes on
    opt.step(np.ones(3))
    assert opt.step_count == 2


def test_switching_momentum_off_drops_its_state():
    opt = fastopt.SGD(np.zeros(2), lr=0.1, momentum=0.9, backend="numpy")
    opt.step(np.ones(2))
    opt.param_groups[0]["momentum"] = 0.0
    opt.step(np.ones(2))
    assert opt.state[0] == {}


@pytest.mark.parametrize("bad,match", [
    (dict(lr=-1.0), "lr must be"),
    (dict(betas=(0.9, 1.5)), r"betas\[1\]"),
    (dict(eps=float("nan")), "eps must be"),
])
def test_a_bad_change_raises_at_the_next_step_before_anything_changes(bad, match):
    params = [np.zeros(3), np.zeros(2)]
    opt = fastopt.Adam([{"params": params[:1]}, {"params": params[1:]}], backend="numpy")
    opt.param_groups[0]["lr"] = 0.5                    # a valid change in another group
    opt.param_groups[1].update(bad)
    with pytest.raises(ValueError, match=match):
        opt.step([np.ones(3), np.ones(2)])
    assert all(not p.any() for p in params) and opt.step_count == 0
    assert opt._groups[0].lr == 1e-3                   # nothing applied, not even group 0


def test_group_dicts_refuse_unknown_keys_new_params_and_removal():
    opt = fastopt.Adam(np.zeros(3), backend="numpy")
    group = opt.param_groups[0]
    with pytest.raises(KeyError, match="'momentum' is not a hyperparameter"):
        group["momentum"] = 0.9
    with pytest.raises(KeyError, match="add_param_group"):
        group["params"] = [np.zeros(2)]
    with pytest.raises(KeyError, match="cannot be removed"):
        del group["lr"]
    with pytest.raises(KeyError, match="cannot be removed"):
        group.pop("eps")
    assert group["eps"] == 1e-8 and len(group["params"]) == 1


@pytest.mark.parametrize("name", ["lr", "momentum", "betas", "weight_decay"])
def test_setting_an_attribute_is_an_error_not_ignored(name):
    opt = fastopt.Adam(np.zeros(3), backend="numpy")
    with pytest.raises(AttributeError, match=rf"param_groups\[0\]\['{name}'\]"):
        setattr(opt, name, 0.1)


# -- construction ------------------------------------------------------------------------
def test_params_from_a_generator_and_the_defaults_per_group():
    params = arrays([(2,), (3,)])
    opt = fastopt.Adam((p for p in params), lr=0.01, backend="numpy")
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 2
    groups = fastopt.Adam([{"params": (p for p in params[:1])},
                           {"params": params[1], "eps": 1e-3}], lr=0.01, backend="numpy")
    assert [g["lr"] for g in groups.param_groups] == [0.01, 0.01]
    assert [g["eps"] for g in groups.param_groups] == [1e-8, 1e-3]
    assert groups.params[1] is params[1]
    assert groups.defaults == dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                   amsgrad=False, maximize=False, decoupled_weight_decay=False)


SHARED = np.zeros(10)


@pytest.mark.parametrize("params,error,match", [
    ([{"lr": 0.1}], ValueError, r"param_groups\[0\] has no 'params'"),
    ([{"params": [np.zeros(2)], "momentum": 0.9}], ValueError, r"unknown keys \['momentum'\]"),
    ([{"params": [np.zeros(2)], "lr": -1.0}], ValueError, r"param_groups\[0\]: lr must be"),
    ([{"params": [np.zeros(2)]}, {"params": []}], ValueError, r"param_groups\[1\]: params is empty"),
    ([{"params": [np.zeros(2)]}, np.zeros(2)], TypeError, "all arrays or all param group dicts"),
    ({np.zeros(2).tobytes()}, TypeError, "ordered iterable"),
    ([{"params": [SHARED]}, {"params": [SHARED]}], ValueError,
     r"param_groups\[0\]\['params'\]\[0\] and param_groups\[1\]\['params'\]\[0\] share memory"),
    ([{"params": [SHARED[:6]]}, {"params": [SHARED[5:]]}], ValueError, "share memory"),
    ([{"params": [np.zeros(2, np.int64)]}], TypeError, r"\['params'\]\[0\] must have dtype"),
])
def test_bad_params_and_groups_are_refused(params, error, match):
    with pytest.raises(error, match=match):
        fastopt.Adam(params, backend="numpy")


def test_add_param_group_starts_its_own_steps():
    params = arrays([(3,), (2,)])
    first, second = copies(params[:1]), copies(params[1:])
    opt = fastopt.Adam(first, backend="numpy")
    opt.step([np.ones(3)])
    opt.add_param_group({"params": second, "lr": 0.01})
    opt.step([np.ones(3), np.ones(2)])
    alone = copies(params[1:])
    fresh = fastopt.Adam(alone, lr=0.01, backend="numpy")
    fresh.step([np.ones(2)])
    assert_bits_equal(second[0], alone[0])
    assert opt.state_dict()["groups.1.step"] == 1 and opt.step_count == 2


def test_add_param_group_refuses_a_param_already_here_and_changes_nothing():
    p = np.zeros(3)
    opt = fastopt.Adam(p, backend="numpy")
    with pytest.raises(ValueError, match="share memory"):
        opt.add_param_group({"params": [p[1:]]})
    with pytest.raises(ValueError, match="unknown keys"):
        opt.add_param_group({"params": [np.zeros(2)], "nesterov": True})
    assert len(opt.param_groups) == 1
    opt.step(np.ones(3))


def test_state_dict_with_other_groups_is_refused():
    params = arrays([(3,), (2,)])
    one = fastopt.Adam(copies(params), backend="numpy")
    two = fastopt.Adam([{"params": copies(params[:1])}, {"params": copies(params[1:])}],
                       backend="numpy")
    with pytest.raises(ValueError, match="2 param groups, this optimizer has 1"):
        one.load_state_dict(two.state_dict())
    swapped = fastopt.Adam([{"params": copies(params[1:])}, {"params": copies(params[:1])}],
                           backend="numpy")
    with pytest.raises(ValueError, match="shape"):
        swapped.load_state_dict(two.state_dict())


def test_state_dict_of_groups_saves_with_savez_without_pickle(tmp_path):
    opt = fastopt.Nadam([{"params": [np.zeros(3)], "momentum_decay": None},
                         {"params": [np.zeros(2)], "betas": (0.8, 0.9)}], backend="numpy")
    opt.step([np.ones(3), np.ones(2)])
    np.savez(tmp_path / "sd.npz", **opt.state_dict())
    other = fastopt.Nadam([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)]}],
                          backend="numpy")
    other.load_state_dict(dict(np.load(tmp_path / "sd.npz")))
    assert other.param_groups[0]["momentum_decay"] is None
    assert other.param_groups[1]["betas"] == (0.8, 0.9)
    assert other.step_count == 1


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))])
def test_a_copy_updates_its_own_params(backend, clone):
    params = arrays([(3,), (2,)])
    opt = fastopt.Adam([{"params": copies(params[:1])}, {"params": copies(params[1:]),
                                                         "lr": 0.1}], backend=backend)
    opt.step([np.ones(3), np.ones(2)])
    twin = clone(opt)
    before = [p.copy() for p in opt.params]
    twin.step([np.ones(3), np.ones(2)])
    for p, b in zip(opt.params, before):
        np.testing.assert_array_equal(p, b)
    assert twin.param_groups[1]["params"][0] is twin.params[1]
    opt.step([np.ones(3), np.ones(2)])
    for p, q in zip(opt.params, twin.params):
        np.testing.assert_array_equal(p, q)


# -- what a step holds, and what an error leaves -----------------------------------------
class FreshItems(list):
    """A list whose items are new arrays each time they are read."""

    def __iter__(self):
        return (x.copy() for x in list.__iter__(self))

    def __getitem__(self, i):
        return list.__getitem__(self, i).copy()


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("make", [lambda gs: (g.astype(np.float32) for g in gs), FreshItems],
                         ids=["generator", "list subclass"])
def test_grads_made_on_the_fly_live_through_the_step(backend, make):
    """Grads that exist only while the step reads them are kept alive by the step."""
    params = [np.zeros(100_000, np.float32), np.zeros(3, np.float32)]
    opt = fastopt.SGD(params, lr=1.0, backend=backend)
    for step in range(1, 4):
        opt.step(make([np.ones(100_000), np.ones(3)] if make is not FreshItems else
                      [np.ones(100_000, np.float32), np.ones(3, np.float32)]))
        assert all((p == -step).all() for p in params)


def test_a_failed_add_param_group_leaves_the_optimizer_as_it_was():
    p = np.zeros(3)
    opt = fastopt.SGD(p, lr=0.1, backend="numpy")
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr must be"):
        opt.add_param_group({"params": [np.zeros(2)], "lr": -1.0})
    opt.step(np.ones(3))                   # still one array, one grad
    assert opt.params is p and len(opt.param_groups) == 1 and opt.step_count == 1


def test_an_error_in_a_later_groups_scalars_changes_no_group():
    """The second group's schedule fails after the first group's scalars were made, before
    any kernel ran."""
    params = [np.zeros(3), np.zeros(2, np.float32)]
    opt = fastopt.Adam([{"params": params[:1]}, {"params": params[1:], "lr": lambda t: -1.0}],
                       lr=0.1, backend="numpy")
    with pytest.raises(ValueError, match="lr schedule at step 1"):
        opt.step([np.ones(3), np.ones(2, np.float32)])
    assert not params[0].any() and opt.step_count == 0
    assert opt.state_dict()["groups.0.step"] == 0


def test_step_scalars_beyond_float32_are_refused_when_the_group_is_made():
    """lr / (1 - 0.999) at t = 1 overflows float32 though each value alone does not."""
    with pytest.raises(ValueError, match="step scalar step_size"):
        fastopt.Adam([np.zeros(2, np.float32)], lr=3e38, betas=(0.999, 0.999), backend="numpy")


def test_a_shallow_copy_is_refused_and_old_pickle_protocols_work():
    opt = fastopt.Adam([np.zeros(3)], backend="numpy")
    with pytest.raises(TypeError, match="deepcopy"):
        copy.copy(opt)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(opt, protocol)).param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@parametrize_cases()
def test_a_new_lr_every_step_is_the_schedule_it_spells(rule, hp, backend):
    """lr set in param_groups before every step (a scheduler's way: the fast lane that
    checks lr alone) steps bit for bit as the same lrs given as a schedule."""
    lrs = [hp.get("lr", 0.01) * (1 + 0.1 * t) for t in range(6)]
    params = arrays([(4, 3), (5,)], (np.float64, np.float32))
    by_hand, scheduled = copies(params), copies(params)
    opt = make_optimizer(rule, by_hand, hp, backend)
    ref = make_optimizer(rule, scheduled, dict(hp, lr=lambda t: lrs[t - 1]), backend)
    with np.errstate(all="ignore"):
        step_alike(opt, ref, params, np.random.default_rng(3), 6,
                   before=lambda t: opt.param_groups[0].update(lr=lrs[t]))
    for a, b in zip(by_hand, scheduled):
        assert_bits_equal(a, b)


def test_a_change_beside_a_new_lr_takes_the_full_checks():
    p = np.zeros(3)
    opt = fastopt.Adam(p, lr=0.1, backend="numpy")
    opt.step(np.ones(3))
    before = p.copy()
    opt.param_groups[0]["lr"] = 0.2
    opt.param_groups[0]["betas"] = (0.9, 1.5)
    with pytest.raises(ValueError, match="betas"):
        opt.step(np.ones(3))
    assert np.array_equal(p, before) and opt.step_count == 1
    opt.param_groups[0]["betas"] = (0.9, 0.999)
    opt.step(np.ones(3))
    assert opt.step_count == 2
