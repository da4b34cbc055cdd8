"""The second hostile hunt's faults: memory safety, processes, signals, values that used to
be accepted and errors that used to be obscure. Each test failed before its fix; after an
error the params and the optimizer's state are exactly as they were."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_unchanged, snapshot

import fastopt

ROOT = Path(__file__).resolve().parent.parent
HOST_BACKENDS = [b for b in ("numpy", "numba") if b in fastopt.available_backends()]
needs_numba = pytest.mark.skipif("numba" not in HOST_BACKENDS, reason="numba not installed")
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=300)


def stepped(rule="Adam", backend="numpy", dtype=np.float64, **hp):
    params = [np.linspace(0, 1, 4).astype(dtype), np.linspace(1, 2, 6).reshape(2, 3).astype(dtype)]
    opt = getattr(fastopt, rule)(params, backend=backend, **hp)
    opt.step([np.ones(4, dtype), np.ones((2, 3), dtype)])
    return params, opt


# -- fastopt.torch: every address the compiled step reads is checked in that step ------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("replacement", ["short", "float64", "long"])
def test_a_grad_replaced_through_data_is_refused_before_anything_changes(backend, replacement):
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    p = torch.nn.Parameter(torch.linspace(-1, 1, 1000))
    opt = ft.Adam([p], lr=0.1, backend=backend)
    p.grad = torch.ones(1000)
    opt.step()
    before = p.detach().clone(), {k: v.clone() for k, v in opt.state[p].items()}
    p.grad.data = {"short": torch.ones(10), "float64": torch.ones(1000, dtype=torch.float64),
                   "long": torch.ones(5000)}[replacement]
    with pytest.raises(ValueError, match=r"params'\]\[0\] has a grad of shape .*was p\.grad\.data"):
        opt.step()
    assert torch.equal(p, before[0])
    assert all(torch.equal(opt.state[p][k], v) for k, v in before[1].items())


def test_model_double_before_the_first_step_is_followed_as_torch_does():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    theirs.load_state_dict(ours.state_dict())
    opts = ft.Adam(ours.parameters(), lr=0.1), torch.optim.Adam(theirs.parameters(), lr=0.1)
    x = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3)
    for model, opt in zip((ours, theirs), opts):
        model.double()
        for _ in range(3):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    assert ours.weight.dtype == torch.float64
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=1e-12, atol=0)


def test_a_torch_dict_of_another_rule_is_refused_by_name():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    model = torch.nn.Linear(3, 2)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    sgd.step()
    opt = ft.Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"param_groups\[0\] of the state_dict lacks \['betas', "
                                         r"'eps'\]: is it another optimizer's"):
        opt.load_state_dict(sgd.state_dict())
    assert opt.param_groups[0]["lr"] == 0.01 and "betas" in opt.param_groups[0]


@pytest.mark.parametrize("bad,words", [
    (lambda st: st.update(exp_avg=torch_zeros(5)), r"state\[1\]\['exp_avg'\] \(param_groups"
                                                   r"\[0\]\['params'\]\[1\]\) has shape \(5,\)"),
    (lambda st: st.update(exp_avg_sq=-torch_ones(2)), r"state\[1\]\['exp_avg_sq'\] .* has "
                                                      r"negative entries"),
], ids=["shape", "negative"])
def test_a_bad_torch_state_is_named_by_torch_key(bad, words):
    torch = pytest.importorskip("torch")
    import copy

    import fastopt.torch as ft

    model = torch.nn.Linear(3, 2)
    adam = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    adam.step()
    sd = copy.deepcopy(adam.state_dict())
    bad(sd["state"][1])
    with pytest.raises(ValueError, match=words):
        ft.Adam(model.parameters()).load_state_dict(sd)


def torch_zeros(n):
    import torch
    return torch.zeros(n)


def torch_ones(n):
    import torch
    return torch.ones(n)


def test_assigning_into_the_torch_state_says_what_to_do_instead():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    p = torch.nn.Parameter(torch.zeros(3))
    opt = ft.Adam([p])
    p.grad = torch.ones(3)
    opt.step()
    with pytest.raises(TypeError, match=r"opt.state\[p\] is read-only.*copy_\(t\).*load_state"):
        opt.state[p]["exp_avg"] = torch.zeros(3)
    with pytest.raises(TypeError, match="opt.state is read-only"):
        del opt.state[p]
    assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}


# -- processes: a child forked after a parallel step builds and runs new kernels -------------
FORKED = """
import copy, os, pickle, sys, numpy as np, fastopt, multiprocessing as mp
N = 1 << 18                                        # 1 MiB of float32: the parallel loop
p = np.linspace(-1, 1, N, dtype=np.float32); g = np.full(N, 1e-3, np.float32)
opt = fastopt.Adam([p], lr=0.01, backend="numba")
opt.step([g])                                      # the parent's threads have started

def reference(kind):
    q = np.linspace(-1, 1, N, dtype=np.float32)
    ref = fastopt.Adam([q], lr=0.01, backend="numpy")
    ref.step([g]); ref.step([g])
    return q

def child(kind):
    if kind == "new":
        q = np.linspace(-1, 1, N, dtype=np.float32)
        new = fastopt.Adam([q], lr=0.01, backend="numba")
        new.step([g]); new.step([g])
        return np.array_equal(q, reference(kind))
    if kind == "group":
        opt.add_param_group({"params": [np.zeros(N, np.float32)]})
        opt.step([g, g])
        return np.array_equal(p, reference(kind))
    if kind == "flag":
        q, r = np.zeros(N, np.float32), np.zeros(N, np.float32)
        sgd = fastopt.SGD([q], lr=0.1, momentum=0.0, backend="numba")
        sgd.param_groups[0]["momentum"] = 0.5          # rebuilt before its first step
        ref = fastopt.SGD([r], lr=0.1, momentum=0.5, backend="numpy")
        for o in (sgd, sgd, ref, ref):
            o.step([g])
        return np.array_equal(q, r)
    if kind == "deepcopy":
        other = copy.deepcopy(opt); other.step([g])
        return np.array_equal(other.params[0], reference(kind))
    if kind == "unpickled":
        other = pickle.loads(pickle.dumps(opt)); other.step([g])
        return np.array_equal(other.params[0], reference(kind))
    if kind == "minimize":
        r = fastopt.minimize(lambda x: (float(x @ x), 2 * x), np.ones(N), jac=True,
                             backend="numba")
        return bool(r.success)

kinds = ["new", "group", "flag", "deepcopy", "unpickled", "minimize"]
for kind in kinds:
    pid = os.fork()
    if pid == 0:
        os._exit(0 if child(kind) else 3)
    print(kind, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
with mp.get_context("fork").Pool(2, maxtasksperchild=1) as pool:   # each task a fresh fork
    print("pool", pool.map_async(child, kinds).get(timeout=120))
"""


@needs_numba
@needs_fork
def test_a_child_forked_after_parallel_steps_builds_new_kernels():
    """GNU OpenMP kills a forked child in its first parallel region: every kernel built in
    such a child is the serial one (a new optimizer, a new group, a rebuilt flag, a copy, an
    unpickled one, minimize), also in a fork-context Pool, with the reference's result."""
    out = run_python(FORKED)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:-1] == [f"{k} 0" for k in ("new", "group", "flag", "deepcopy", "unpickled",
                                             "minimize")], out.stdout + out.stderr
    assert lines[-1] == "pool [True, True, True, True, True, True]", out.stdout + out.stderr


@pytest.mark.parametrize("layer", ["tbb-not-installed", "bogus"])
@needs_numba
def test_a_threading_layer_that_cannot_start_warns_once_and_runs_serially(layer):
    pytest.importorskip("numba")
    import importlib.util

    if layer == "tbb-not-installed":
        if importlib.util.find_spec("tbb") is not None:
            pytest.skip("tbb is installed here")
        layer = "tbb"
    out = run_python("""
import warnings, numpy as np, fastopt
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    big = [np.ones(1 << 18, np.float32) for _ in range(2)]
    for p in big:
        fastopt.Adam([p], backend="numba").step([p])
print(len(caught), caught[0].message if caught else "")
print(float(big[0][0]))
""", NUMBA_THREADING_LAYER=layer)
    assert out.returncode == 0, out.stderr
    count, message = out.stdout.splitlines()[0].split(" ", 1)
    assert count == "1" and f"NUMBA_THREADING_LAYER='{layer}'" in message, out.stdout
    assert "runs its loops on one thread" in message
    assert float(out.stdout.splitlines()[1]) == pytest.approx(1 - 1e-3, rel=1e-6)


# -- signals: a step is all or nothing as the user sees it -----------------------------------
INTERRUPTED = """
import signal, threading, numpy as np, fastopt
backend = {backend!r}
rng = np.random.default_rng(0)
bad = 0
for trial in range(25):
    params = [np.zeros(n) for n in (50_000, 3, 70_000, 1000)]
    opt = fastopt.SGD([{{"params": params[:2]}}, {{"params": params[2:], "lr": 1.0}}], lr=1.0,
                      backend=backend)
    grads = [np.ones_like(p) for p in params]
    main = threading.main_thread().ident
    timer = threading.Timer(rng.uniform(0.0005, 0.02),
                            lambda: signal.pthread_kill(main, signal.SIGINT))
    try:
        timer.start()                   # (on a busy machine it may fire before start returns)
        while True:
            opt.step(grads)
    except KeyboardInterrupt:
        pass
    timer.join()
    n = opt.step_count
    bad += not all(np.array_equal(p, np.full_like(p, -n)) for p in params)
print(bad)
"""


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_ctrl_c_during_a_training_loop_leaves_whole_steps(backend):
    """KeyboardInterrupt at a random moment of a loop of steps (two groups, four arrays):
    every param was stepped exactly step_count times."""
    out = run_python(INTERRUPTED.format(backend=backend))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stdout + out.stderr


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_signal_handler_that_raises_runs_once_after_the_step(backend):
    """A signal that arrives while the kernels run (here: sent by the first of them) has its
    handler run once the step is whole; the handlers are the user's again afterwards."""
    import signal
    import threading

    params, opt = stepped("SGD", backend=backend, lr=1.0)
    seen = []

    def handler(signum, frame):
        seen.append(opt.step_count)
        raise RuntimeError("stop")

    run = opt._run

    def run_after_a_signal(grads, scalars):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        run(grads, scalars)
    opt._run = run_after_a_signal
    old = signal.signal(signal.SIGUSR1, handler)
    try:
        with pytest.raises(RuntimeError, match="stop"):
            opt.step([np.ones(4), np.ones((2, 3))])
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert seen == [2] and opt.step_count == 2          # once, after the whole step
    np.testing.assert_array_equal(params[0], np.linspace(0, 1, 4) - 2)
    np.testing.assert_array_equal(params[1], np.linspace(1, 2, 6).reshape(2, 3) - 2)


# -- values that used to be accepted -----------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_eps_that_rounds_to_zero_in_the_params_dtype_is_refused(backend):
    with pytest.raises(ValueError, match=r"eps=1e-46 rounds to 0 in float32"):
        fastopt.Adam(np.zeros(3, np.float32), eps=1e-46, backend=backend)
    fastopt.Adam(np.zeros(3, np.float32), eps=0.0, backend=backend)     # zero is a choice
    fastopt.Adam(np.zeros(3), eps=1e-46, backend=backend)               # float64 holds it
    params, opt = stepped(dtype=np.float32)
    snap = snapshot(params, opt)
    opt.param_groups[0]["eps"] = 1e-50
    with pytest.raises(ValueError, match=r"eps=1e-50 rounds to 0 in float32"):
        opt.step([np.ones(4, np.float32), np.ones((2, 3), np.float32)])
    opt.param_groups[0]["eps"] = 1e-8
    assert_unchanged(params, opt, snap)


@pytest.mark.parametrize("rule,key", [("Adam", "0.v"), ("Adagrad", "1.sum"),
                                      ("RMSprop", "0.sq"), ("Adadelta", "1.acc"),
                                      ("Adamax", "0.u"), ("Nadam", "1.v")])
def test_a_state_dict_with_a_negative_second_moment_is_refused(rule, key):
    params, opt = stepped(rule)
    snap = snapshot(params, opt)
    sd = opt.state_dict()
    sd[key] = -np.abs(sd[key]) - 1
    with pytest.raises(ValueError, match=rf"{key} has negative entries"):
        opt.load_state_dict(sd)
    assert_unchanged(params, opt, snap)


@pytest.mark.parametrize("product,step", [(0.9, 0), (0.0, 0)])
def test_nadam_refuses_a_mu_product_that_does_not_fit_the_step_count(product, step):
    params, opt = stepped("Nadam")
    snap = snapshot(params, opt)
    sd = opt.state_dict()
    sd.update({"step": step, "groups.0.step": step, "groups.0.mu_product": product})
    with pytest.raises(ValueError, match=rf"mu_product={product!r} does not fit step {step}"):
        opt.load_state_dict(sd)
    assert_unchanged(params, opt, snap)


@pytest.mark.parametrize("momentum_decay", [4e-3, 0.0, 10.0])
def test_nadam_mu_products_of_real_runs_load(momentum_decay):
    params, opt = stepped("Nadam", momentum_decay=momentum_decay, betas=(0.5, 0.9))
    for _ in range(300):
        opt.step([np.ones(4), np.ones((2, 3))])
    again = fastopt.Nadam([p.copy() for p in params], momentum_decay=momentum_decay,
                          betas=(0.5, 0.9))
    again.load_state_dict(opt.state_dict())
    assert again.state_dict()["groups.0.mu_product"] == opt.state_dict()["groups.0.mu_product"]


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_param_group_holding_the_optimizers_own_state_is_refused(backend):
    params, opt = stepped(backend=backend)
    snap = snapshot(params, opt)
    with pytest.raises(ValueError, match=r"the optimizer's state 'm' of param_groups\[0\] and "
                                         r"param_groups\[1\]\['params'\]\[0\] share memory"):
        opt.add_param_group({"params": [opt.state[1]["m"]]})
    assert len(opt.param_groups) == 1
    assert_unchanged(params, opt, snap)


@pytest.mark.parametrize("betas", [{0.9, 0.999}, frozenset({0.9, 0.999}), {0.9: 0, 0.999: 1}])
def test_betas_in_an_unordered_container_are_refused(betas):
    with pytest.raises(ValueError, match="betas must be a pair"):
        fastopt.Adam(np.zeros(3), betas=betas)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_lbfgs_refuses_a_non_finite_gradient_at_the_start(bad):
    x = np.array([1.0, 2.0])
    opt = fastopt.LBFGS(x)
    with pytest.raises(FloatingPointError, match="not finite.*nothing was changed"):
        opt.step(lambda: (float(x @ x), np.array([bad, 1.0])))
    np.testing.assert_array_equal(x, [1.0, 2.0])
    assert opt.n_iter == 0


# -- errors that used to be obscure ---------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_grads_given_as_a_dict_are_refused_by_what_they_are(backend):
    params, opt = stepped(backend=backend)
    snap = snapshot(params, opt)
    with pytest.raises(TypeError, match=r"got a dict \(its keys would be taken for grads"):
        opt.step({0: np.ones(4), 1: np.ones((2, 3))})
    assert_unchanged(params, opt, snap)


def test_lbfgs_says_when_one_array_is_returned_for_a_list_of_params():
    x = np.array([3.0])
    opt = fastopt.LBFGS([x])
    with pytest.raises(TypeError, match=r"one array for grads, but params was given as a list "
                                        r"of 1; return a list"):
        opt.step(lambda: (float(x @ x), 2 * x))
    np.testing.assert_array_equal(x, [3.0])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_state_and_state_dict_after_a_dtype_change_in_place_name_the_param(backend):
    params, opt = stepped(backend=backend)
    params[1].dtype = np.float32                   # (2, 3) float64 seen as (2, 6) float32
    for call in (lambda: opt.state, opt.state_dict):
        with pytest.raises(ValueError, match=r"params\[1\] was changed in place to shape "
                                             r"\(2, 6\) and dtype float32"):
            call()


# -- threads: fast alone, fair when shared, nothing spinning while the user's code runs ----------
class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def chooser_with(clock, seconds):
    """A WarmChooser whose loops record which ran and take ``seconds[which]`` of the clock."""
    from fastopt.kernels import _threads

    ran = []

    def loop(which):
        def run(table, grads, state, scalars, parts, *rest):
            ran.append((which, parts))
            clock.now += seconds[which]
            return -1
        run.targetoptions = {}
        return run
    return _threads.WarmChooser(loop("serial"), loop("parallel"), clock=clock), ran


def test_a_mid_size_loop_runs_serially_after_the_users_code_and_by_speed_back_to_back(
        monkeypatch):
    from fastopt.kernels import _threads

    clock = FakeClock()
    monkeypatch.setattr(_threads, "_last_end", [-1.0])
    chooser, ran = chooser_with(clock, {"serial": 60e-6, "parallel": 40e-6})
    for _ in range(3):                       # 0.5 ms of the user's code before each step
        clock.now += 5e-4
        chooser(None, None, None, None, 2)
    assert ran == [("serial", 1)] * 3 and chooser.seconds == {False: None, True: None}
    ran.clear()
    for _ in range(70):                      # back to back: each timed once, then the faster
        clock.now += 5e-6
        chooser(None, None, None, None, 2)
    assert ran[:2] == [("parallel", 2), ("serial", 1)]
    assert [w for w, _ in ran[2:]].count("serial") == 2          # the slower, every 32 calls
    chooser.seconds[True] = 1e-3                                # another process: slow threads
    ran.clear()
    for _ in range(5):
        clock.now += 5e-6
        chooser(None, None, None, None, 2)
    assert [w for w, _ in ran] == ["serial"] * 5


def test_a_child_forked_after_openmp_never_takes_the_parallel_loop(monkeypatch):
    from fastopt.kernels import _threads

    clock = FakeClock()
    monkeypatch.setattr(_threads, "_last_end", [-1.0])
    monkeypatch.setattr(_threads, "forked_from_omp", True)
    chooser, ran = chooser_with(clock, {"serial": 60e-6, "parallel": 40e-6})
    for _ in range(40):
        clock.now += 5e-6
        chooser(None, None, None, None, 2)
    assert {w for w, _ in ran} == {"serial"}


@needs_numba
@pytest.mark.parametrize("which", ["serial", "parallel"])
@pytest.mark.parametrize("rule", ["Adam", "SGD", "Nadam"])
def test_both_loops_of_a_mid_size_bucket_equal_the_reference(rule, which, monkeypatch):
    """Whichever loop the chooser takes, the bits are the reference's."""
    from fastopt.kernels import _threads

    rng = np.random.default_rng(5)
    shapes = [(300, 200), (17,), (50_000,)]                # 1.1e5 elements: the mid band
    p0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ref, fast = [p.copy() for p in p0], [p.copy() for p in p0]
    opt_ref = getattr(fastopt, rule)(ref, backend="numpy")
    opt_fast = getattr(fastopt, rule)(fast, backend="numba")
    chooser = opt_fast._buckets_in_order[0].kernel.loop
    assert isinstance(chooser, _threads.WarmChooser)
    monkeypatch.setattr(_threads, "BACK_TO_BACK", np.inf)   # every call back to back
    chooser._parallel_pays = lambda: which == "parallel"
    for k in range(3):
        grads = [np.cos(p + k).astype(np.float32) for p in p0]
        opt_ref.step(grads)
        opt_fast.step(grads)
    assert chooser.seconds[which == "parallel"] is not None
    assert chooser.seconds[which != "parallel"] is None
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(a, b)


# -- the second hunt, repeated: what it found ---------------------------------------------------
class Stop(Exception):
    pass


def signal_in(obj, name, signum=None):
    """Wrap ``obj.name`` so that it sends ``signum`` (SIGUSR1) to the main thread first:
    a signal arriving in the middle of the call that runs it."""
    import signal
    import threading

    original = getattr(obj, name)

    def wrapped(*args, **kwargs):
        signal.pthread_kill(threading.main_thread().ident, signum or signal.SIGUSR1)
        return original(*args, **kwargs)
    return wrapped


@pytest.fixture
def raising_usr1():
    """SIGUSR1's handler raises Stop, recording the step count it saw."""
    import signal

    seen = []

    def handler(signum, frame):
        seen.append(signum)
        raise Stop
    old = signal.signal(signal.SIGUSR1, handler)
    yield seen
    signal.signal(signal.SIGUSR1, old)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_signal_during_load_state_dict_comes_after_the_whole_load(backend, raising_usr1,
                                                                     monkeypatch):
    from fastopt import _state_dict

    params, opt = stepped(backend=backend)
    donor_params, donor = stepped(backend=backend)
    donor.step([np.ones(4), np.ones((2, 3))])
    sd = donor.state_dict()
    monkeypatch.setattr(_state_dict, "_restore", signal_in(_state_dict, "_restore"))
    with pytest.raises(Stop):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["step"] == 2 and all(np.array_equal(after[k], v) for k, v in sd.items()
                                      if isinstance(v, np.ndarray))


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_signal_during_add_param_group_comes_after_the_whole_group(backend, raising_usr1):
    params, opt = stepped("SGD", backend=backend, lr=1.0)
    q = np.zeros(2)
    opt._rebuild_resolver = signal_in(opt, "_rebuild_resolver")
    with pytest.raises(Stop):
        opt.add_param_group({"params": [q]})
    del opt._rebuild_resolver
    opt.step([np.ones(4), np.ones((2, 3)), np.ones(2)])
    np.testing.assert_array_equal(q, [-1.0, -1.0])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_signal_while_a_step_applies_a_flag_keeps_the_change(backend, raising_usr1):
    params, opt = stepped("SGD", backend=backend, lr=1.0, momentum=0.5)
    opt.param_groups[0]["nesterov"] = True
    opt._buckets = signal_in(opt, "_buckets")           # the flag's new kernel is being built
    with pytest.raises(Stop):
        opt.step([np.ones(4), np.ones((2, 3))])
    del opt._buckets
    assert opt.step_count == 2 and opt.state_dict()["groups.0.nesterov"] is True


def test_a_handler_may_call_the_optimizer_and_every_arrived_signal_runs(monkeypatch):
    import signal

    params, opt = stepped("SGD", lr=1.0)
    checkpoint = opt.state_dict()
    ran = []

    def reload(signum, frame):
        ran.append(signum)
        opt.load_state_dict(checkpoint)                 # not "called from inside a step"
        raise Stop

    def second(signum, frame):
        ran.append(signum)
    old = signal.signal(signal.SIGUSR1, reload), signal.signal(signal.SIGUSR2, second)
    try:
        run = opt._run

        def run_after_two_signals(grads, scalars):
            signal.raise_signal(signal.SIGUSR1)
            signal.raise_signal(signal.SIGUSR2)
            run(grads, scalars)
        opt._run = run_after_two_signals
        with pytest.raises(Stop):
            opt.step([np.ones(4), np.ones((2, 3))])
    finally:
        signal.signal(signal.SIGUSR1, old[0])
        signal.signal(signal.SIGUSR2, old[1])
    assert ran == [signal.SIGUSR1, signal.SIGUSR2]
    assert opt.step_count == 1                          # the reload came after the step


FORKED_FROM_A_THREAD = """
import os, threading
status = []

def fork_and_wait():
    pid = os.fork()
    if pid == 0:                    # this thread is the child's main thread
        exec(CODE, {})
        os._exit(0)
    status.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

CODE = %r
thread = threading.Thread(target=fork_and_wait)
thread.start()
thread.join()
print(status[0])
"""


@needs_fork
def test_a_child_forked_from_another_thread_holds_signals_in_its_steps():
    code = INTERRUPTED.format(backend="numpy").replace("print(bad)", "os._exit(bad)")
    out = run_python(FORKED_FROM_A_THREAD % ("import os\n" + code))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stdout + out.stderr


def test_an_errstate_that_raises_cannot_stop_a_numpy_step_half_way():
    params = [np.zeros(3), np.zeros(3)]
    opt = fastopt.Adam(params, lr=0.1, backend="numpy")
    with np.errstate(all="raise"):
        opt.step([np.ones(3), np.full(3, 1e200)])
    assert opt.step_count == 1 and np.allclose(params[0], -0.1)


def test_or_assigning_into_a_param_group_is_a_change_like_any_other():
    params, opt = stepped()
    opt.param_groups[0] |= {"eps": 1e-3}
    opt.step([np.ones(4), np.ones((2, 3))])
    assert opt.state_dict()["groups.0.eps"] == 1e-3
    with pytest.raises(TypeError, match="cannot be changed as a list"):
        opt.param_groups[0] = dict(opt.param_groups[0])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_copies_taken_while_another_thread_steps_are_whole(backend):
    import copy
    import threading

    p = np.zeros(200_000)
    opt = fastopt.Adagrad(p, lr=0.1, backend=backend)   # grads of 1: sum == step_count
    done = threading.Event()

    def stepping():
        while not done.is_set():
            opt.step(np.ones(200_000))
    thread = threading.Thread(target=stepping)
    thread.start()
    try:
        copies = [copy.deepcopy(opt) for _ in range(10)]
        pickles = [__import__("pickle").loads(__import__("pickle").dumps(opt)) for _ in range(5)]
    finally:
        done.set()
        thread.join()
    for c in copies + pickles:
        assert (c.state[0]["sum"] == c.step_count).all()


def test_a_core_optimizer_over_torch_tensors_copies_to_one_set_of_tensors():
    torch = pytest.importorskip("torch")
    import copy

    t = torch.zeros(3)
    c = copy.deepcopy(fastopt.SGD([t], lr=1.0))
    c.step([np.ones(3, np.float32)])
    assert c.param_groups[0]["params"][0].tolist() == [-1.0] * 3 and t.tolist() == [0.0] * 3


def test_lbfgs_takes_turns_refuses_a_nested_step_and_a_shallow_copy():
    import copy

    x = np.array([3.0, -1.0])
    opt = fastopt.LBFGS(x)

    def closure():
        opt.step(lambda: (float(x @ x), 2 * x))
        return float(x @ x), 2 * x
    with pytest.raises(RuntimeError, match="LBFGS.step was called from inside its own step"):
        opt.step(closure)
    np.testing.assert_array_equal(x, [3.0, -1.0])
    with pytest.raises(TypeError, match="shallow copy"):
        copy.copy(opt)
    assert copy.deepcopy(opt).step(lambda: (1.0, np.zeros(2))) == 1.0


@pytest.mark.parametrize("change,words", [
    (lambda x: setattr(x.flags, "writeable", False), "params was made read-only"),
    (lambda x: setattr(x, "dtype", np.float32), "params was changed in place")])
def test_lbfgs_names_a_param_changed_in_place(change, words):
    x = np.array([3.0, -1.0])
    opt = fastopt.LBFGS(x)
    change(x)
    with pytest.raises(ValueError, match=words):
        opt.step(lambda: (1.0, np.zeros(x.shape, x.dtype)))


def test_obscure_errors_of_the_second_hunt_name_what_is_wrong():
    p = np.zeros(3)
    with pytest.raises(ValueError, match=r"unknown keys \[0, 'foo'\]"):
        fastopt.Adam([{"params": [p], 0: 1, "foo": 2}])
    with pytest.raises(ValueError, match="line_search must be one of"):
        fastopt.LBFGS(p, line_search=["armijo"])
    with pytest.raises(ValueError, match="minimize: tol must be"):
        fastopt.minimize(lambda x: (float(x @ x), 2 * x), np.ones(2), jac=True, tol=-1)
    params, opt = stepped()
    sd = opt.state_dict()
    sd["groups.0.Lr"] = 1.0
    with pytest.raises(ValueError, match=r"keys this optimizer does not know: \['groups.0.Lr'\]"):
        opt.load_state_dict(sd)


def test_newton_with_damping_that_reaches_infinity_ends():
    r = fastopt.minimize(lambda x: float(x @ x), np.array([1.0, 2.0]), jac=lambda x: 2 * x,
                         hess=lambda x: np.array([[0.0, 1e308], [1e308, 0.0]]),
                         method="Newton", options=dict(maxiter=20))
    assert r.status in (0, 1, 2) and np.isfinite(r.fun)


def test_the_torch_state_of_a_param_without_one_is_empty_as_torchs():
    torch = pytest.importorskip("torch")
    import copy

    import fastopt.torch as ft

    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    opt = ft.Adam([p, q])
    p.grad = torch.ones(2)
    opt.step()
    assert len(opt.state[q]) == 0 and len(opt.state[p]) == 3 and len(opt.state) == 1
    with pytest.raises(TypeError, match="shallow copy"):
        copy.copy(opt)
    sd = copy.deepcopy(opt.state_dict())
    del sd["state"][0]["step"]
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] has \['exp_avg', 'exp_avg_sq'\] "
                                         r"but no 'step'"):
        ft.Adam([p, q]).load_state_dict(sd)


def test_sharded_optimizer_names_a_comm_that_is_not_one():
    pytest.importorskip("mpi4py")
    from fastopt.distributed import ShardedOptimizer

    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        ShardedOptimizer(fastopt.SGD, [np.zeros(3)], comm="world", lr=0.1)


def test_sharded_optimizer_takes_memmap_grads_and_refuses_list_state(tmp_path):
    pytest.importorskip("mpi4py")
    from fastopt.distributed import ShardedOptimizer

    p, ref = np.zeros(4), np.zeros(4)
    opt, single = ShardedOptimizer(fastopt.Adam, [p], lr=0.1), fastopt.Adam([ref], lr=0.1)
    g = np.memmap(tmp_path / "g", dtype=np.float64, mode="w+", shape=(4,))
    g[:] = 1.0
    opt.step([g])
    single.step([np.ones(4)])
    np.testing.assert_array_equal(p, ref)
    sd = opt.state_dict()
    sd["0.m"] = sd["0.m"].tolist()
    with pytest.raises(TypeError, match="'0.m' must be a numpy.ndarray, got list"):
        opt.load_state_dict(sd)


FORK_DURING_A_STEP = """
import os, threading, time, numpy as np, fastopt
inside = threading.Event()

def slow_lr(t):
    inside.set()
    time.sleep(0.5)                      # the other thread is inside the step meanwhile
    return 0.1

opt = fastopt.SGD([np.zeros(3)], lr=slow_lr, backend="numpy")
quiet = fastopt.SGD([np.zeros(3)], lr=0.1, backend="numpy")
thread = threading.Thread(target=opt.step, args=([np.ones(3)],))
thread.start()
inside.wait()
pid = os.fork()
if pid == 0:
    try:
        opt.step([np.ones(3)])
        code = 3
    except RuntimeError as exc:
        code = 0 if "when the process forked" in str(exc) else 4
    quiet.step([np.ones(3)])
    os._exit(code if quiet.step_count == 1 else 5)
thread.join()
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@needs_fork
def test_a_child_forked_while_another_thread_steps_refuses_that_optimizer_and_does_not_hang():
    out = run_python(FORK_DURING_A_STEP)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stdout + out.stderr


@needs_numba
def test_two_threads_step_two_optimizers_under_the_workqueue_layer():
    out = run_python("""
import threading, numpy as np, fastopt, numba
opts = [fastopt.Adam([np.zeros(300_000, np.float32)], backend="numba") for _ in range(2)]
g = [np.ones(300_000, np.float32)]
threads = [threading.Thread(target=lambda o=o: [o.step(g) for _ in range(50)]) for o in opts]
[t.start() for t in threads]; [t.join() for t in threads]
print(numba.threading_layer(), [o.step_count for o in opts])
""", NUMBA_THREADING_LAYER="workqueue")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["workqueue", "[50,", "50]"], out.stdout


def test_a_tensor_lr_of_several_elements_is_named():
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\] must be a number or a "
                                         r"one-element tensor, got a tensor of shape \(2,\)"):
        ft.Adam([p], lr=torch.tensor([0.1, 0.2]))
    opt = ft.Adam([p])
    p.grad = torch.ones(3)
    opt.param_groups[0]["lr"] = torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match=r"\['lr'\] must be a number"):
        opt.step()
    assert not p.detach().any() and len(opt.state[p]) == 0


# -- the third hunt ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("rule,torch_name", [("Adam", "Adam"), ("AdamW", "AdamW"),
                                             ("RMSprop", "RMSprop"), ("Nadam", "NAdam"),
                                             ("Adadelta", "Adadelta")])
def test_a_float32_grad_spike_does_not_stop_the_param_for_good(rule, torch_name, backend):
    """A grad of 3e19 in float32: (1-b2)*g is taken before the second g, as torch's
    addcmul does, so the second moment stays finite (g*g overflowed, v became inf and the
    param never moved again) and the next steps match torch's."""
    torch = pytest.importorskip("torch")
    p = np.ones(3, np.float32)
    opt = getattr(fastopt, rule)(p, lr=0.1, backend=backend)
    q = torch.ones(3, requires_grad=True)
    ref = getattr(torch.optim, torch_name)([q], lr=0.1)
    for g in (3e19, 1.0, 1.0, 1.0):
        opt.step(np.full(3, g, np.float32))
        q.grad = torch.full((3,), g)
        ref.step()
    assert all(np.isfinite(a).all() for a in opt.state[0].values())
    np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_centered_rmsprop_survives_a_grad_whose_square_overflows(backend):
    """float64, g = 1e308: sq is inf and sq - ga^2 was inf - inf = NaN, making the params
    NaN for good; torch's fused multiply-add gives inf there (a zero step): as torch."""
    torch = pytest.importorskip("torch")
    p = np.ones(3)
    opt = fastopt.RMSprop(p, lr=0.01, centered=True, backend=backend)
    q = torch.ones(3, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.RMSprop([q], lr=0.01, centered=True)
    for g in (0.5, 1e308, 0.5):
        opt.step(np.full(3, g))
        q.grad = torch.full((3,), g, dtype=torch.float64)
        ref.step()
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p, q.detach().numpy())


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_params_pickled_with_their_optimizer_stay_its_params(backend):
    """pickle.dumps([p, opt]) (a checkpoint, a pair sent to a worker): the loaded
    optimizer steps the loaded p, as copy.deepcopy([p, opt]) does and torch's pair does;
    the optimizer pickled alone steps its own copy."""
    import pickle

    p = np.ones(3)
    opt = fastopt.SGD([p], lr=1.0, momentum=0.9, backend=backend)
    opt.step([np.ones(3)])
    p2, opt2 = pickle.loads(pickle.dumps([p, opt]))
    opt2.step([np.ones(3)])
    assert opt2.params[0] is p2 and (p2 == -1.9).all() and (p == 0).all()
    alone = pickle.loads(pickle.dumps(opt))
    alone.step([np.ones(3)])
    assert (alone.params[0] == -1.9).all() and (p == 0).all()


FORK_DURING_AN_LBFGS_STEP = """
import os, threading, time, numpy as np, fastopt
inside = threading.Event()
x = np.zeros(3)
opt = fastopt.LBFGS([x], max_iter=1)

def slow_closure():
    inside.set()
    time.sleep(0.5)                      # the other thread is inside the step meanwhile
    return float(((x - 1) ** 2).sum()), [2 * (x - 1)]

thread = threading.Thread(target=opt.step, args=(slow_closure,))
thread.start()
inside.wait()
pid = os.fork()
if pid == 0:
    try:
        opt.step(lambda: (float(((x - 1) ** 2).sum()), [2 * (x - 1)]))
        code = 3
    except RuntimeError as exc:
        code = 0 if "when the process forked" in str(exc) else 4
    os._exit(code)
thread.join()
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""

FORK_FROM_INSIDE_THE_STEP = """
import os, numpy as np, fastopt
pids = []

def forking_lr(t):
    if t == 1:
        pids.append(os.fork())           # the child finishes this step itself
    return 0.1

p = np.zeros(3)
opt = fastopt.SGD([p], lr=forking_lr, backend="numpy")
opt.step([np.ones(3)])
if pids[0] == 0:
    opt.step([np.ones(3)])
    os._exit(0 if opt.step_count == 2 and np.allclose(p, -0.2) else 3)
print(os.waitstatus_to_exitcode(os.waitpid(pids[0], 0)[1]))
"""


@needs_fork
@pytest.mark.parametrize("script", [FORK_DURING_AN_LBFGS_STEP, FORK_FROM_INSIDE_THE_STEP],
                         ids=["LBFGS in another thread", "from inside the step"])
def test_forks_during_a_call(script):
    """LBFGS, forked while another thread is inside its step, refuses the child's next
    step (it waited forever on the dead thread's lock); a child forked by the stepping
    thread itself (from a schedule) finishes that step and goes on stepping."""
    out = run_python(script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stdout + out.stderr


def test_a_schedule_taking_a_state_dict_does_not_apply_a_change_made_during_the_step():
    """A change made during a step applies from the next step, also when the schedule
    calls state_dict() (which applies pending changes between steps)."""
    p, q = np.zeros(2), np.zeros(2)

    def lr(t):
        opt.param_groups[1]["lr"] = 0.5
        opt.state_dict()
        return 0.1
    opt = fastopt.SGD([{"params": [p], "lr": lr}, {"params": [q], "lr": 0.2}],
                      backend="numpy")
    opt.step([np.ones(2), np.ones(2)])
    assert (p == -0.1).all() and (q == -0.2).all()
    opt.step([np.ones(2), np.ones(2)])
    assert (q == -0.7).all()


def test_obscure_errors_of_the_third_hunt_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"lr=1e\+308, betas=\(0.9, 0.999\).* make the step "
                                         r"scalar step_size = inf at step 1"):
        fastopt.Adam(np.ones(3), lr=1e308)
    with pytest.raises(ValueError, match=r"grad\(x0\) has shape \(3,\); func's finite-"
                                         r"difference gradient at x0 has \(2,\)"):
        fastopt.check_grad(lambda x: float(x @ x), lambda x: np.ones(3), np.zeros(2))
    opt = fastopt.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="grads must be a list or tuple of 1 arrays like "
                                        "params, got str"):
        opt.step("ab")


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_a_flag_switched_off_and_on_again_says_why_it_is_refused(backend):
    """amsgrad off mid-run drops its state; on again is refused with what is missing and
    the step it is missing at (the message said "not kept since step 1"), nothing moved."""
    p = np.ones(3)
    opt = fastopt.Adam(p, lr=0.1, amsgrad=True, backend=backend)
    opt.step(np.ones(3))
    opt.param_groups[0]["amsgrad"] = False
    opt.step(np.ones(3))
    before = snapshot([p], opt)
    opt.param_groups[0]["amsgrad"] = True
    with pytest.raises(ValueError, match=r"switches \['amsgrad'\] on, which needs state "
                                         r"\['vmax'\] that this group does not hold at step 2"):
        opt.step(np.ones(3))
    opt.param_groups[0]["amsgrad"] = False
    assert_unchanged([p], opt, before)
