"""Faults a new or a hostile user meets: each gives the right result or a clear error, and
after an error the params and the optimizer's state are exactly as they were."""
import copy
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_unchanged, snapshot

import fastopt
from fastopt import cli

ROOT = Path(__file__).resolve().parent.parent
HOST_BACKENDS = [b for b in ("numpy", "numba") if b in fastopt.available_backends()]
needs_numba = pytest.mark.skipif("numba" not in HOST_BACKENDS, reason="numba not installed")


def stepped(rule="Adam", backend="numpy", dtype=np.float64, **hp):
    params = [np.linspace(0, 1, 4).astype(dtype), np.linspace(1, 2, 6).reshape(2, 3).astype(dtype)]
    opt = getattr(fastopt, rule)(params, backend=backend, **hp)
    opt.step([np.ones(4, dtype), np.ones((2, 3), dtype)])
    return params, opt


# -- grads ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix itself
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_matrix_grad_for_the_second_param_works_like_an_array(backend):
    params, opt = stepped("SGD", backend, lr=1.0)
    opt.step([np.ones(4), np.matrix(np.ones((2, 3)))])
    np.testing.assert_array_equal(params[1], np.linspace(1, 2, 6).reshape(2, 3) - 2)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_masked_grad_is_refused_before_anything_changes(backend):
    params, opt = stepped(backend=backend)
    snap = snapshot(params, opt)
    masked = np.ma.masked_array(np.ones((2, 3)), mask=np.eye(2, 3))
    with pytest.raises(TypeError, match=r"grads\[1\] is a masked array.*filled"):
        opt.step([np.ones(4), masked])
    assert_unchanged(params, opt, snap)


# -- hyperparameters ------------------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("hp", [dict(lr=1e39), dict(weight_decay=1e39), dict(eps=1e39)],
                         ids=["lr", "weight_decay", "eps"])
def test_hyperparameters_beyond_float32_are_refused_for_float32_params(backend, hp):
    name = next(iter(hp))
    with pytest.raises(ValueError, match=rf"{name}=1e\+39 overflows float32"):
        fastopt.Adam(np.zeros(3, np.float32), backend=backend, **hp)
    fastopt.Adam(np.zeros(3), backend=backend, **hp)      # float64 holds them


def test_a_change_or_schedule_beyond_float32_is_refused_before_anything_changes():
    params, opt = stepped(dtype=np.float32)
    snap = snapshot(params, opt)
    opt.param_groups[0]["lr"] = 1e39
    with pytest.raises(ValueError, match="lr=1e\\+39 overflows float32"):
        opt.step([np.ones(4, np.float32), np.ones((2, 3), np.float32)])
    opt.param_groups[0]["lr"] = 1e-3
    assert_unchanged(params, opt, snap)
    scheduled = fastopt.SGD(np.zeros(2, np.float32), lr=lambda t: 1e39, backend="numpy")
    with pytest.raises(ValueError, match="lr schedule at step 1=1e\\+39 overflows float32"):
        scheduled.step(np.ones(2, np.float32))
    assert scheduled.step_count == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, 1.5])
def test_nadam_refuses_a_bad_mu_product_in_a_state_dict(bad):
    params, opt = stepped("Nadam")
    snap = snapshot(params, opt)
    sd = opt.state_dict()
    sd["groups.0.mu_product"] = bad
    with pytest.raises(ValueError, match="mu_product must be a number in \\[0, 1\\]"):
        opt.load_state_dict(sd)
    assert_unchanged(params, opt, snap)


# -- copies and threads -----------------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))],
                         ids=["deepcopy", "pickle"])
def test_a_copy_is_an_independent_working_optimizer(backend, clone):
    p = np.zeros(5)
    opt = fastopt.Adam(p, lr=0.1, backend=backend)
    opt.step(np.ones(5))
    twin = clone(opt)
    twin.step(np.ones(5))
    assert twin.params is not p and not np.array_equal(twin.params, p)
    opt.step(np.ones(5))
    np.testing.assert_array_equal(twin.params, p)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_two_threads_stepping_one_optimizer_lose_no_step(backend):
    """The kernels release the GIL; without the optimizer's lock two steps would read the
    same t and write the same state at once."""
    n, steps = 100_000, 60
    p, ref = np.zeros(n, np.float32), np.zeros(n, np.float32)
    opt = fastopt.Adam(p, lr=0.01, backend=backend)
    sequential = fastopt.Adam(ref, lr=0.01, backend=backend)
    g = np.linspace(-1, 1, n, dtype=np.float32)
    for _ in range(2 * steps):
        sequential.step(g)

    def work():
        for _ in range(steps):
            opt.step(g)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opt.step_count == 2 * steps
    np.testing.assert_array_equal(p, ref)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_two_threads_with_two_optimizers_both_work(backend):
    ps = [np.zeros(200_000, np.float32), np.zeros(200_000, np.float32)]
    opts = [fastopt.Adam(p, lr=0.01, backend=backend) for p in ps]
    ref = np.zeros(200_000, np.float32)
    solo = fastopt.Adam(ref, lr=0.01, backend="numpy")
    g = np.linspace(-1, 1, 200_000, dtype=np.float32)
    for _ in range(20):
        solo.step(g)
    threads = [threading.Thread(target=lambda o=o: [o.step(g) for _ in range(20)]) for o in opts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in ps:
        np.testing.assert_array_equal(p, ref)


# -- environment ------------------------------------------------------------------------------
def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=300)


@needs_numba
def test_import_and_steps_work_where_numba_has_nowhere_to_cache():
    """As for a read-only install run by a user without a writable home: no cache locator."""
    out = run_python("""
import warnings
import numba.core.caching as caching
caching.CacheImpl._locator_classes = []          # nowhere to write a cache
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np, fastopt
    opt = fastopt.Adam([np.zeros(3), np.zeros(2, np.float32)], lr=0.1, backend="numba")
    opt.step([np.ones(3), np.ones(2, np.float32)])
print(opt.params[0][0], sum("nowhere to write its cache" in str(w.message) for w in caught))
""")
    assert out.returncode == 0, out.stderr
    value, warnings_count = out.stdout.split()
    assert float(value) == pytest.approx(-0.1) and warnings_count == "1"


NUMBA_UNAVAILABLE = """
import numpy as np, fastopt
print(fastopt.available_backends(), fastopt.Adam(np.zeros(2)).backend)
try:
    fastopt.Adam(np.zeros(2), backend="numba")
except fastopt.BackendUnavailableError as exc:
    print(exc)
"""


def assert_numba_unavailable(reason: str, **env) -> None:
    """In a process with ``env``: only numpy is listed, auto picks it, and asking for numba
    raises with ``reason``."""
    out = run_python(NUMBA_UNAVAILABLE, **env)
    assert out.returncode == 0, out.stderr
    assert "['numpy'] numpy" in out.stdout and reason in out.stdout, out.stdout


def test_with_numba_jit_disabled_the_numba_backend_says_so_and_auto_uses_numpy():
    assert_numba_unavailable("NUMBA_DISABLE_JIT", NUMBA_DISABLE_JIT="1")


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["info", "--help"],
                                  ["bench", "--help"]])
def test_every_help_prints(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_child_forked_after_parallel_steps_can_step():
    """GNU OpenMP kills a forked child that starts a parallel region: the child runs the
    loops serially, with the same result."""
    out = run_python("""
import os, numpy as np, fastopt
p = np.zeros(1_000_000, np.float32); g = np.linspace(-1, 1, p.size, dtype=np.float32)
opt = fastopt.Adam(p, lr=0.01, backend="numba")
opt.step(g)                                          # the parent's threads have started
pid = os.fork()
if pid == 0:
    ref = np.zeros_like(p); solo = fastopt.Adam(ref, lr=0.01, backend="numpy")
    solo.step(g); solo.step(g)
    opt.step(g)
    os._exit(0 if np.array_equal(p, ref) else 3)
print(os.waitpid(pid, 0)[1])
""")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stderr


@pytest.mark.parametrize("env,expected", [({}, "1000"), ({"GOMP_SPINCOUNT": "7"}, "7"),
                                          ({"OMP_WAIT_POLICY": "PASSIVE"}, "None")])
def test_the_openmp_spin_count_is_set_unless_the_user_chose(env, expected):
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT",
                                                               "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", "import os, fastopt; "
                          "print(os.environ.get('GOMP_SPINCOUNT'))"], cwd=ROOT,
                         capture_output=True, text=True, env=dict(clean, **env), timeout=300)
    assert out.stdout.split() == [expected], out.stderr


# -- grads that share memory with what a step writes --------------------------------------------
def copy_semantics_case(rule, backend, share):
    """(params after two steps whose grads share memory with a param or the state, the
    same from grads copied first by the caller)."""
    def run(copy_first):
        base = np.linspace(-1, 1, 12)
        params = [base[1:6], base[7:]]                    # one array's views, apart
        opt = getattr(fastopt, rule)(params, lr=0.1, backend=backend if not copy_first
                                     else "numpy")
        opt.step([np.ones(5), np.ones(5)])
        grads = share(base, opt)
        opt.step([g.copy() for g in grads] if copy_first else grads)
        return base
    return run(False), run(True)


SHARING = {
    "grad overlapping its own param": lambda base, opt: [base[:5], base[7:]],
    "grad that is another param": lambda base, opt: [base[7:].reshape(5), base[1:6]],
    "grad that is the optimizer's state": lambda base, opt: [opt.state[0]["m"],
                                                             opt.state[1]["v"]],
}


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("share", list(SHARING))
@pytest.mark.parametrize("rule", ["SGD", "Adam", "RMSprop"])
def test_grads_sharing_memory_with_what_a_step_writes_act_as_copies(rule, backend, share):
    if rule != "Adam" and "state" in share:
        share = "grad overlapping its own param"      # SGD without momentum has no state
    got, expected = copy_semantics_case(rule, backend, SHARING[share])
    np.testing.assert_array_equal(got, expected)


# -- minimize and LBFGS -----------------------------------------------------------------------
def quadratic(x):
    return float(x @ x), 2 * x


@pytest.mark.parametrize("fun,error,match", [
    (lambda x: (float(x @ x), np.array([1.0])), ValueError, r"gradient has shape \(1,\)"),
    (lambda x: (float(x @ x), 2.0), ValueError, r"gradient has shape \(\), x has \(3,\)"),
    (lambda x: (float(x @ x), ["a", "b", "c"]), TypeError, "real numbers"),
    (lambda x: (float(x @ x), (2 * x).astype(complex)), TypeError, "real numbers"),
    (lambda x: (float(x @ x), x > 0), TypeError, "real numbers"),
    (lambda x: float(x @ x), TypeError, r"must return \(f, g\).*got float"),
    (lambda x: None, TypeError, r"must return \(f, g\).*got NoneType"),
    (lambda x: (1.0, 2 * x, 3), TypeError, "got a tuple of 3"),
    (lambda x: (np.array([x @ x, 1.0]), 2 * x), TypeError,
     r"f must be a real number.*shape \(2,\)"),
    (lambda x: (complex(x @ x), 2 * x), TypeError, "f must be a real number"),
])
def test_minimize_names_what_fun_returned_wrong(fun, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(fun, np.ones(3), jac=True, backend="numpy")


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(method="Nelder-Mead"), ValueError, "method must be one of"),
    (dict(jac=lambda x: 2 * x), TypeError, "fun returned a pair, but jac is not True"),
    (dict(callback=3), TypeError, "callback must be callable"),
])
def test_minimize_names_the_bad_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(quadratic, np.ones(3), **{"jac": True, "backend": "numpy", **kwargs})


def test_minimize_gives_fun_and_callback_copies_of_x():
    seen = []

    def fun(x):
        seen.append(x)
        f, g = float(x @ x), 2 * x
        x[...] = 1e6                       # a hostile fun changes its x
        return f, g

    def callback(x):
        x[...] = -1e6                      # so does the callback

    res = fastopt.minimize(fun, np.full(3, 2.0), jac=True, callback=callback, backend="numpy")
    assert res.success and np.abs(res.x).max() < 1e-5
    assert len({id(x) for x in seen}) == len(seen)     # a new array each time


def test_minimize_disp_prints_a_summary(capsys):
    fastopt.minimize(quadratic, np.ones(3), jac=True, options=dict(disp=True), backend="numpy")
    assert "CONVERGENCE" in capsys.readouterr().out


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_lbfgs_puts_the_params_back_when_the_closure_raises(backend):
    p = np.array([3.0, -2.0])
    opt = fastopt.LBFGS(p, backend=backend)
    calls = []

    def closure():
        calls.append(p.copy())
        if len(calls) == 3:                # fails at a trial point of the line search
            raise KeyboardInterrupt
        return float(p @ p), 2 * p

    with pytest.raises(KeyboardInterrupt):
        opt.step(closure)
    assert any(np.array_equal(p, c) for c in calls[:2])   # an evaluated, accepted point
    assert not np.array_equal(p, calls[2])


@pytest.mark.parametrize("grad,match", [
    (lambda p: (2 * p).astype(int), "must be floating point"),
    (lambda p: p > 0, "must be floating point"),
    (lambda p: (2 * p).astype(complex), "must be floating point"),
])
def test_lbfgs_refuses_grads_that_are_not_floating_point(grad, match):
    p = np.array([3.0, -2.0])
    opt = fastopt.LBFGS(p, backend="numpy")
    with pytest.raises(TypeError, match=match):
        opt.step(lambda: (float(p @ p), grad(p)))
    np.testing.assert_array_equal(p, [3.0, -2.0])


def test_lbfgs_says_what_a_closure_must_return():
    p = np.array([3.0, -2.0])
    opt = fastopt.LBFGS(p, backend="numpy")
    with pytest.raises(TypeError, match=r"closure must return \(f, g\).*got float"):
        opt.step(lambda: float(p @ p))          # torch's convention: the loss alone


@pytest.mark.parametrize("kwargs,match", [(dict(lr=0.0), "lr must be a finite number > 0"),
                                          (dict(history_size=0), "history_size")])
def test_lbfgs_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastopt.LBFGS(np.zeros(2), backend="numpy", **kwargs)


def test_numpy_scalars_are_accepted_where_python_ones_are():
    fastopt.LBFGS(np.zeros(2), history_size=np.int64(3), max_iter=np.int32(2), backend="numpy")
    opt = fastopt.Adam(np.zeros(2), amsgrad=np.True_, backend="numpy")
    assert opt.param_groups[0]["amsgrad"] is True


@pytest.mark.parametrize("bad", [None, [("rule", "Adam")], "state"])
def test_load_state_dict_names_what_it_got(bad):
    opt = fastopt.Adam(np.zeros(2), backend="numpy")
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        opt.load_state_dict(bad)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_param_made_read_only_after_construction_is_refused_before_anything_changes(backend):
    params, opt = stepped(backend=backend)
    snap = snapshot(params, opt)
    params[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\] was made read-only"):
        opt.step([np.ones(4), np.ones((2, 3))])
    params[1].flags.writeable = True
    assert_unchanged(params, opt, snap)


def test_replacing_an_entry_of_the_given_list_changes_nothing_for_the_optimizer():
    """Documented: the optimizer updates the arrays it was given (opt.params)."""
    params, opt = stepped("SGD", lr=1.0)
    first = params[0]
    params[0] = np.zeros(4)
    opt.step([np.ones(4), np.ones((2, 3))])
    assert opt.params[0] is first and not params[0].any()


# -- found by a second hunt -----------------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_masked_params_are_refused(backend):
    p = np.ma.masked_array(np.ones(3), mask=[0, 1, 0])
    with pytest.raises(TypeError, match=r"params\[0\] is a masked array"):
        fastopt.SGD([p], lr=1.0, backend=backend)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix itself
@pytest.mark.parametrize("rule", ["Adam", "Adagrad"])
def test_matrix_params_with_weight_decay_agree_on_every_backend(rule):
    results = []
    for backend in HOST_BACKENDS:
        a, m = np.ones(2), np.matrix(np.ones((2, 2)))
        opt = getattr(fastopt, rule)([a, m], lr=0.1, weight_decay=0.1, backend=backend)
        opt.step([np.ones(2), np.ones((2, 2))])
        results.append((a.copy(), np.asarray(m).copy()))
    for a, m in results[1:]:
        np.testing.assert_array_equal(a, results[0][0])
        np.testing.assert_array_equal(m, results[0][1])


@needs_numba
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_grad_without_a_base_that_views_the_state_acts_as_a_copy(backend):
    """An array wrapped from a raw pointer has no base yet owns nothing."""
    import numba

    from fastopt.kernels._ndarray import void_pointer

    @numba.njit
    def wrap(address, n):
        return numba.carray(void_pointer(address), n, np.float64)

    def run(copy_first):
        p = np.linspace(-1, 1, 4)
        opt = fastopt.Adagrad([p], lr=0.1, backend=backend if not copy_first else "numpy")
        opt.step([np.ones(4)])
        g = wrap(opt.state[0]["sum"].ctypes.data, 4)
        assert g.base is None and not g.flags.owndata
        opt.step([g.copy() if copy_first else g])
        return p

    np.testing.assert_array_equal(run(False), run(True))


def test_a_change_made_during_a_step_is_kept_for_the_next():
    params = [np.zeros(2), np.zeros(2)]
    opt = fastopt.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1,
                      backend="numpy")

    def schedule(t):
        opt.param_groups[1]["lr"] = 0.5        # changes the other group, mid-step
        return 0.1

    opt.param_groups[0]["lr"] = schedule
    opt.step([np.ones(2), np.ones(2)])
    opt.step([np.ones(2), np.ones(2)])
    np.testing.assert_allclose(params[1], -0.1 - 0.5)


def test_param_groups_as_a_list_cannot_change():
    opt = fastopt.Adam([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)]}], backend="numpy")
    for change in (lambda g: g.append({}), lambda g: g.reverse(), lambda g: g.pop(),
                   lambda g: g.__setitem__(0, {"params": [np.zeros(2)], "lr": 100.0})):
        with pytest.raises(TypeError, match="add_param_group"):
            change(opt.param_groups)
    with pytest.raises(AttributeError, match="param_groups"):
        opt.param_groups = []
    with pytest.raises(TypeError):
        opt.defaults["lr"] = 5.0               # read-only
    assert len(opt.param_groups) == 2 and opt.defaults["lr"] == 1e-3


def test_a_group_update_with_an_unknown_key_changes_nothing():
    opt = fastopt.Adam(np.zeros(2), backend="numpy")
    with pytest.raises(KeyError, match="'foo'"):
        opt.param_groups[0].update({"lr": 0.2, "foo": 1})
    assert opt.param_groups[0]["lr"] == 1e-3


def test_group_values_are_kept_as_validated():
    opt = fastopt.Adam([{"params": [np.zeros(2)], "betas": (b for b in (0.8, 0.9))}],
                       backend="numpy")
    assert opt.param_groups[0]["betas"] == (0.8, 0.9)
    opt.param_groups[0]["lr"] = 0.01
    opt.step([np.ones(2)])
    assert opt.state_dict()["groups.0.lr"] == 0.01


@pytest.mark.parametrize("kwargs", [dict(lr=3e38, betas=(0.999, 0.999)),
                                    dict(lr=1e20, weight_decay=1e20)], ids=["Adam", "AdamW"])
def test_step_scalars_beyond_float32_are_refused(kwargs):
    rule = "AdamW" if "weight_decay" in kwargs else "Adam"
    with pytest.raises(ValueError, match="step scalar"):
        getattr(fastopt, rule)(np.zeros(2, np.float32), backend="numpy", **kwargs)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_param_retyped_in_place_is_refused(backend):
    p = np.zeros(3)
    opt = fastopt.SGD([p], lr=1.0, backend=backend)
    p.dtype = np.int64
    with pytest.raises(ValueError, match="changed in place"):
        opt.step([np.ones(3)])
    assert not p.any()


def test_load_state_dict_reads_views_of_its_own_state_as_copies():
    opt = fastopt.Adam([np.zeros(2), np.zeros(2)], backend="numpy")
    opt.step([np.ones(2), 2 * np.ones(2)])
    sd = opt.state_dict()
    m0, m1 = opt.state[0]["m"].copy(), opt.state[1]["m"].copy()
    sd["0.m"], sd["1.m"] = opt.state[1]["m"], opt.state[0]["m"]   # swap, as views
    opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[0]["m"], m1)
    np.testing.assert_array_equal(opt.state[1]["m"], m0)


def test_a_step_inside_a_step_is_an_error():
    p = np.zeros(2)
    holder = {}
    opt = fastopt.Adam(p, lr=lambda t: holder["opt"].step(np.ones(2)) or 0.1, backend="numpy")
    holder["opt"] = opt
    with pytest.raises(RuntimeError, match="inside its own step"):
        opt.step(np.ones(2))
    assert not p.any() and opt.step_count == 0


@pytest.mark.parametrize("change,match", [(dict(n_params="2"), "n_params must be an integer"),
                                          ({"groups.0.params": np.array([0.5])},
                                           "integer array of param indices"),
                                          ({"groups.0.params": None}, "integer array"),
                                          ({0: 1}, "keys are strings")])
def test_load_state_dict_refuses_malformed_entries(change, match):
    params, opt = stepped()
    snap = snapshot(params, opt)
    sd = opt.state_dict()
    sd.update(change)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    assert_unchanged(params, opt, snap)


@pytest.mark.parametrize("hp", [dict(lr=10 ** 400), dict(eps=10 ** 400)], ids=["lr", "eps"])
def test_huge_integer_hyperparameters_are_named(hp):
    with pytest.raises(ValueError, match=f"{next(iter(hp))} must be"):
        fastopt.Adam(np.zeros(2), backend="numpy", **hp)


def test_schedule_counts_are_integers_not_bools():
    with pytest.raises(ValueError, match="tau"):
        fastopt.schedules.linear(1.0, tau=True)
    assert fastopt.schedules.linear(1.0, tau=np.int64(5))(5) == pytest.approx(
        fastopt.schedules.linear(1.0, tau=5)(5))


@pytest.mark.parametrize("x0,error,match", [(np.array([1 + 1j]), TypeError, "x0 must hold real"),
                                            ("12", TypeError, "x0 must hold real"),
                                            ([1.0, None], TypeError, "x0 must hold real"),
                                            ([[1.0], [2.0, 3.0]], ValueError, "x0 must be")])
def test_minimize_names_a_bad_x0(x0, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(quadratic, x0, jac=True, backend="numpy")


def test_minimize_names_bad_options_and_reports_maxfun():
    with pytest.raises(TypeError, match="options must be a dict"):
        fastopt.minimize(quadratic, np.ones(2), jac=True, options="maxiter", backend="numpy")
    rosen = lambda x: (float(100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2),  # noqa: E731
                       np.array([-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]),
                                 200 * (x[1] - x[0] ** 2)]))
    r = fastopt.minimize(rosen, np.zeros(2), jac=True, options=dict(maxfun=5), backend="numpy")
    assert r.status == 1 and "EVALUATIONS" in r.message


def test_lbfgs_settings_are_checked_when_changed():
    opt = fastopt.LBFGS(np.zeros(2), backend="numpy")
    for name, value in (("lr", -5.0), ("lr", float("nan")), ("max_iter", -3),
                        ("tolerance_grad", float("nan"))):
        with pytest.raises(ValueError, match=name):
            setattr(opt, name, value)
    with pytest.raises(AttributeError, match="no setting 'history'"):
        opt.history = 3
    with pytest.raises(TypeError, match="closure must be a function"):
        opt.step(5)


def test_adding_a_group_inside_a_step_is_an_error():
    p = np.zeros(2)
    holder = {}

    def schedule(t):
        holder["opt"].add_param_group({"params": [np.zeros(3)]})
        return 0.1

    opt = holder["opt"] = fastopt.Adam(p, lr=schedule, backend="numpy")
    with pytest.raises(RuntimeError, match="add_param_group was called from inside a step"):
        opt.step(np.ones(2))
    assert len(opt.param_groups) == 1 and not p.any()


def test_a_numba_that_fails_to_import_is_not_listed(tmp_path):
    broken = tmp_path / "numba"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('built for another NumPy')\n")
    assert_numba_unavailable("numba fails to import", PYTHONPATH=str(tmp_path))


# -- found by a review of the checks themselves ----------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_copy_taken_during_a_step_can_step(backend):
    p = np.zeros(3)
    copies = []

    def schedule(t):
        if not copies:
            copies.append(copy.deepcopy(opt))
        return 0.1

    opt = fastopt.Adam(p, lr=schedule, backend=backend)
    opt.step(np.ones(3))
    copies[0].step(np.ones(3))
    assert copies[0].step_count == 1


def test_a_schedule_cannot_reach_step_scalars_beyond_float32():
    p = np.zeros(4, np.float32)
    opt = fastopt.Adam(p, lr=lambda t: 1e38, backend="numpy")   # lr / (1 - 0.9) overflows
    with pytest.raises(ValueError, match="lr schedule at step 1.*step scalar"):
        opt.step(np.ones(4, np.float32))
    assert not p.any()


def test_a_change_made_while_a_change_is_validated_is_kept():
    opt = fastopt.SGD(np.zeros(2), lr=0.1, backend="numpy")

    class Sneaky(float):
        def __lt__(self, other):       # called while the lr is validated
            opt.param_groups[0]["lr"] = 0.5
            return float(self) < other

    opt.param_groups[0]["lr"] = Sneaky(0.01)
    opt.step(np.ones(2))
    assert opt.param_groups[0]["lr"] == 0.5
    opt.step(np.ones(2))
    assert opt._groups[0].lr == 0.5


class ZeroDim:
    """A 0-d tensor of another library: it converts with float()."""

    shape = ()

    def __init__(self, value):
        self.value = value

    def __float__(self):
        return float(self.value)


def test_minimize_takes_losses_that_convert_and_gradients_as_lists():
    r = fastopt.minimize(lambda x: (ZeroDim(x @ x), list(2 * x)), np.ones(3), jac=True,
                         backend="numpy")
    assert r.success and np.abs(r.x).max() < 1e-6
    r = fastopt.minimize(lambda x: x[0] ** 2, np.ones(1), jac=lambda x: [2 * x[0]],
                         backend="numpy")
    assert r.success


@needs_numba
def test_numba_refuses_a_param_reshaped_in_place_like_numpy():
    for backend in HOST_BACKENDS:
        p = np.ones((4, 6), np.float32)
        opt = fastopt.SGD([p], lr=0.1, backend=backend)
        p.shape = (6, 4)
        with pytest.raises(ValueError, match="changed in place"):
            opt.step([np.ones((4, 6), np.float32)])


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix itself
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_matrix_param_made_read_only_is_refused(backend):
    m = np.matrix(np.ones((2, 2)))
    opt = fastopt.SGD([m], lr=0.1, backend=backend)
    m.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.step([np.ones((2, 2))])
    np.testing.assert_array_equal(m, 1.0)


def test_load_state_dict_inside_a_step_is_an_error():
    p = np.zeros(2)
    holder = {}

    def schedule(t):
        holder["opt"].load_state_dict(holder["sd"])
        return 0.1

    opt = holder["opt"] = fastopt.Adam(p, lr=schedule, backend="numpy")
    holder["sd"] = opt.state_dict()
    with pytest.raises(RuntimeError, match="load_state_dict was called from inside a step"):
        opt.step(np.ones(2))
