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


def test_with_numba_jit_disabled_the_numba_backend_says_so_and_auto_uses_numpy():
    out = run_python("""
import numpy as np, fastopt
print(fastopt.available_backends(), fastopt.Adam(np.zeros(2)).backend)
try:
    fastopt.Adam(np.zeros(2), backend="numba")
except fastopt.BackendUnavailableError as exc:
    print(exc)
""", NUMBA_DISABLE_JIT="1")
    assert out.returncode == 0, out.stderr
    assert "['numpy'] numpy" in out.stdout and "NUMBA_DISABLE_JIT" in out.stdout


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
    (lambda x: (float(x @ x), 2.0), TypeError, "gradient must be an array"),
    (lambda x: (float(x @ x), (2 * x).astype(complex)), TypeError, "real numbers"),
    (lambda x: (float(x @ x), x > 0), TypeError, "real numbers"),
    (lambda x: float(x @ x), TypeError, r"must return \(f, g\).*got float"),
    (lambda x: None, TypeError, r"must return \(f, g\).*got NoneType"),
    (lambda x: (1.0, 2 * x, 3), TypeError, "got a tuple of 3"),
    (lambda x: (np.array([x @ x]), 2 * x), TypeError, r"f must be a real number.*shape \(1,\)"),
    (lambda x: (complex(x @ x), 2 * x), TypeError, "f must be a real number"),
])
def test_minimize_names_what_fun_returned_wrong(fun, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(fun, np.ones(3), backend="numpy")


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(method=None), ValueError, "method must be 'L-BFGS'"),
    (dict(jac=lambda x: 2 * x), TypeError, "fun returned a tuple, but jac is a function"),
    (dict(callback=3), TypeError, "callback must be callable"),
])
def test_minimize_names_the_bad_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastopt.minimize(quadratic, np.ones(3), backend="numpy", **kwargs)


def test_minimize_gives_fun_and_callback_copies_of_x():
    seen = []

    def fun(x):
        seen.append(x)
        f, g = float(x @ x), 2 * x
        x[...] = 1e6                       # a hostile fun changes its x
        return f, g

    def callback(x):
        x[...] = -1e6                      # so does the callback

    res = fastopt.minimize(fun, np.full(3, 2.0), callback=callback, backend="numpy")
    assert res.success and np.abs(res.x).max() < 1e-5
    assert len({id(x) for x in seen}) == len(seen)     # a new array each time


def test_minimize_disp_prints_a_summary(capsys):
    fastopt.minimize(quadratic, np.ones(3), options=dict(disp=True), backend="numpy")
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
