"""state_dict round trips: reload and continue == never stopped, bit for bit."""
import json
from pathlib import Path

import numpy as np
import pytest
from cases import MATRICES_ONLY, SIGNATURES_0_1_0, parametrize_cases
from conftest import make_optimizer

import fastopt


def grads_for(params, rng):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def fresh_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((4, 5)), rng.standard_normal(7).astype(np.float32)]


@parametrize_cases()
def test_resume_is_bit_identical(rule, hp, tmp_path):
    rng = np.random.default_rng(1)
    grads = [grads_for(fresh_params(), rng) for _ in range(12)]

    straight = fresh_params()
    opt = make_optimizer(rule, straight, hp)
    for g in grads:
        opt.step(g)

    first = fresh_params()
    opt1 = make_optimizer(rule, first, hp)
    for g in grads[:5]:
        opt1.step(g)
    np.savez(tmp_path / "ckpt.npz", **opt1.state_dict())
    saved_params = [p.copy() for p in first]
    del opt1

    resumed = saved_params
    opt2 = make_optimizer(rule, resumed, hp)
    opt2.load_state_dict(dict(np.load(tmp_path / "ckpt.npz")))
    assert opt2.step_count == 5
    for g in grads[5:]:
        opt2.step(g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_state_dict_contents():
    p = np.zeros(3)
    opt = fastopt.Nadam(p, backend="numpy")
    opt.step(np.ones(3))
    sd = opt.state_dict()
    assert sd["rule"] == "Nadam" and sd["step"] == 1 and sd["n_params"] == 1
    assert 0 < sd["groups.0.mu_product"] < 1
    hyper = {f"groups.0.{k}" for k in ("lr", "betas", "eps", "weight_decay", "momentum_decay",
                                       "decoupled_weight_decay", "maximize")}
    assert set(sd) == {"rule", "step", "n_params", "n_groups", "groups.0.params",
                       "groups.0.step", "groups.0.mu_product", *hyper, "0.m", "0.v"}
    sd["0.m"][:] = 123.0                       # a copy: the optimizer is not affected
    assert not np.any(opt.state[0]["m"] == 123.0)


def _stepped(rule="Adam", **hp):
    p = np.linspace(-1, 1, 6).reshape(2, 3)
    opt = getattr(fastopt, rule)(p, backend="numpy", **hp)
    opt.step(np.full((2, 3), 0.5))
    return p, opt


@pytest.mark.parametrize("mutate,match", [
    (lambda sd: sd.update(rule="SGD"), "for rule 'SGD'"),
    (lambda sd: sd.update(n_params=2), "holds 2 params"),
    (lambda sd: sd.update(step=-1), "step must be"),
    (lambda sd: sd.pop("0.v"), "missing \\['0.v'\\]"),
    (lambda sd: sd.update({"0.vmax": np.zeros((2, 3))}), "unexpected \\['0.vmax'\\]"),
    (lambda sd: sd.update({"0.m": np.zeros(6)}), "shape \\(6,\\)"),
    (lambda sd: sd.update({"0.m": np.zeros((2, 3), np.float32)}), "dtype float32"),
    (lambda sd: sd.update({"0.m": [[0.0] * 3] * 2}), "must be a numpy.ndarray"),
])
def test_mismatched_state_dict_is_refused_and_changes_nothing(mutate, match):
    p, opt = _stepped()
    sd = opt.state_dict()
    sd["0.v"] = sd["0.v"] * 0 + 7.0        # a valid change, applied only if all checks pass
    sd["step"] = 3
    mutate(sd)
    before = opt.state_dict()
    with pytest.raises((ValueError, TypeError), match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["step"] == before["step"] == 1
    np.testing.assert_array_equal(after["0.v"], before["0.v"])


def test_loading_restores_the_groups_hyperparameters_and_their_state():
    """As in PyTorch, the saved hyperparameters replace the optimizer's: an amsgrad dict
    turns amsgrad on (with its vmax), and both then continue alike."""
    p_ams, ams = _stepped(amsgrad=True, lr=0.05)
    p_plain, plain = _stepped()
    plain.load_state_dict(ams.state_dict())
    assert plain.param_groups[0]["amsgrad"] is True and plain.param_groups[0]["lr"] == 0.05
    p_plain[...] = p_ams
    for g in (np.full((2, 3), -1.0), np.full((2, 3), 0.25)):
        ams.step(g)
        plain.step(g)
    np.testing.assert_array_equal(p_plain, p_ams)
    np.testing.assert_array_equal(plain.state[0]["vmax"], ams.state[0]["vmax"])


def test_amsgrad_state_of_the_0_1_0_layout_does_not_load_into_plain_adam():
    _, ams = _stepped(amsgrad=True)
    _, plain = _stepped()
    old = {k: v for k, v in ams.state_dict().items() if not k.startswith(("groups.", "n_groups"))}
    with pytest.raises(ValueError, match="unexpected \\['0.vmax'\\]"):
        plain.load_state_dict(old)


RELEASE_0_1_0 = sorted((Path(__file__).parent / "data").glob("state_dict-0.1.0-*.npz"))


@pytest.mark.parametrize("path", RELEASE_0_1_0, ids=lambda p: p.stem.rsplit("-", 1)[-1])
def test_state_dict_saved_by_release_0_1_0_loads_and_resumes_exactly(path):
    """Files written by 0.1.0: np.savez of state_dict() after 4 steps with grads from
    default_rng(0), plus the params and hyperparameters under "test." keys. The same 4
    steps now give the same params and state to the last bits (the second moments now
    scale g before squaring it, as torch does, so that float32 grads above 1.8e19 do not
    overflow), and the loaded optimizer continues exactly like the one that took them."""

    def assert_same(a, b, err_msg=""):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b, err_msg=err_msg)
        else:
            ulps = 4 * np.finfo(b.dtype).eps          # of the array's largest element
            np.testing.assert_allclose(a, b, rtol=ulps, atol=ulps * np.abs(b).max(),
                                       err_msg=err_msg)
    saved = dict(np.load(path))
    sd = {k: v for k, v in saved.items() if not k.startswith("test.")}
    rule, hp = str(saved["rule"]), json.loads(str(saved["test.hyperparams"]))
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5).astype(np.float32)]
    straight = getattr(fastopt, rule)(params, backend="numpy", **hp)
    for _ in range(4):
        straight.step(grads_for(params, rng))
    for i, p in enumerate(params):
        assert_same(p, saved[f"test.param.{i}"])
    now = straight.state_dict()
    assert now["step"] == sd["step"] and {k for k in now if k[0].isdigit()} == \
        {k for k in sd if k[0].isdigit()}
    for k, v in sd.items():
        assert_same(now[k] if k in now else now[f"groups.0.{k}"], v, err_msg=k)
    resumed_params = [saved["test.param.0"].copy(), saved["test.param.1"].copy()]
    resumed = getattr(fastopt, rule)(resumed_params, backend="numpy", **hp)
    resumed.load_state_dict(sd)
    exact_params = [p.copy() for p in params]
    exact = getattr(fastopt, rule)(exact_params, backend="numpy", **hp)
    exact.load_state_dict(now)
    assert resumed.step_count == exact.step_count == 4
    for _ in range(3):
        grads = grads_for(params, rng)
        for opt in (straight, resumed, exact):
            opt.step(grads)
    for p, q, r in zip(params, resumed_params, exact_params):
        assert_same(q, p)
        np.testing.assert_array_equal(r, p)


def test_every_rule_of_release_0_1_0_has_a_saved_state_dict():
    assert {p.stem.rsplit("-", 1)[-1] for p in RELEASE_0_1_0} == set(SIGNATURES_0_1_0)


def test_a_state_dict_from_before_maximize_loads_with_the_groups_own_values():
    p = np.ones(4)
    opt = fastopt.Nadam([p], lr=0.01, backend="numpy")
    opt.step([np.ones(4)])
    sd = opt.state_dict()
    for key in ("groups.0.maximize", "groups.0.decoupled_weight_decay"):
        del sd[key]                      # as saved before these keywords existed
    fresh = fastopt.Nadam([np.ones(4)], lr=0.01, maximize=True, backend="numpy")
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["maximize"] is True
    assert fresh.state_dict()["groups.0.step"] == 1


# -- every value a number, a string or an array: np.load without pickle ---------------------
def _three_groups(rule, params, third_lr, built_in=True):
    """An optimizer of ``rule`` with a group per lr: a built-in composed schedule, another
    (floats without ``built_in``), and ``third_lr``."""
    from fastopt import schedules as s
    warm = s.warmup(s.cosine(0.01, t_max=20, floor=1e-4), steps=3, start_factor=0.1)
    cycle = s.sequence((s.one_cycle(0.02, 6), s.step_decay(0.005, 0.5, 2)), milestones=(6,))
    return make_optimizer(rule, [{"params": [params[0]], "lr": warm if built_in else 0.5},
                                 {"params": [params[1]], "lr": cycle if built_in else 0.5},
                                 {"params": [params[2]], "lr": third_lr}], {})


def _lambda_lr(t):
    return 0.01 / (1 + t)


@pytest.mark.parametrize("rule", sorted(fastopt.kernels.RULES))
def test_every_rule_with_schedules_round_trips_through_npz_without_pickle(rule, tmp_path):
    """Groups with built-in schedules and a function of the user's: np.savez, then np.load
    with its default allow_pickle=False, into an optimizer made with the same function:
    the run goes on as if never stopped, bit for bit."""
    rng = np.random.default_rng(2)
    shapes = [(3, 4), (5, 2), (2, 2)] if rule in MATRICES_ONLY else [(3, 4), (5,), (2,)]
    start = [rng.standard_normal(s) for s in shapes]
    grads = [grads_for(start, rng) for _ in range(10)]
    straight = [p.copy() for p in start]
    opt = _three_groups(rule, straight, _lambda_lr)
    for g in grads:
        opt.step(g)
    first = [p.copy() for p in start]
    opt1 = _three_groups(rule, first, _lambda_lr)
    for g in grads[:4]:
        opt1.step(g)
    np.savez(tmp_path / "ckpt.npz", **opt1.state_dict())
    resumed = [p.copy() for p in first]
    opt2 = _three_groups(rule, resumed, _lambda_lr, built_in=False)    # given again
    with np.load(tmp_path / "ckpt.npz") as saved:
        opt2.load_state_dict(dict(saved))
    assert opt2.param_groups[0]["lr"] == opt1.param_groups[0]["lr"]
    assert opt2.param_groups[1]["lr"] == opt1.param_groups[1]["lr"]
    for g in grads[4:]:
        opt2.step(g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_a_function_lr_is_asked_for_again_when_loading():
    params = [np.zeros((3, 4)), np.zeros(5), np.zeros(2)]
    opt = _three_groups("Adam", params, _lambda_lr)
    opt.step([np.ones_like(p) for p in params])
    sd = opt.state_dict()
    assert sd["groups.2.lr"] == "callable" and sd["groups.2.lr.name"] == "_lambda_lr"
    assert sd["groups.0.lr"] == "warmup" and sd["groups.0.lr.then"] == "cosine"
    other = _three_groups("Adam", [p.copy() for p in params], 0.01)
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"groups\.2\.lr was a function of your own "
                                         r"\(_lambda_lr\).*build the optimizer with it"):
        other.load_state_dict(sd)
    after = other.state_dict()
    assert set(after) == set(before) and all(np.array_equal(after[k], before[k]) for k in after)


@pytest.mark.parametrize("key,value,match", [
    ("groups.0.lr", "cosinus", r"groups\.0\.lr: unknown schedule kind 'cosinus'"),
    ("groups.0.lr.then.t_max", -1, r"groups\.0\.lr: cosine: t_max must be"),
    ("groups.1.lr.milestones", np.array([2, 1]), r"groups\.1\.lr: sequence: milestones"),
])
def test_a_bad_schedule_in_a_state_dict_is_named(key, value, match):
    params = [np.zeros((3, 4)), np.zeros(5), np.zeros(2)]
    opt = _three_groups("SGD", params, 0.1)
    sd = opt.state_dict()
    sd[key] = value
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
