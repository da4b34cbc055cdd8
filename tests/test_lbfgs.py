"""L-BFGS: the two-loop kernels, minimize() on the Moré-Garbow-Hillstrom problems, the
LBFGS optimizer, and the stops."""
import math

import numpy as np
import pytest
from mgh_problems import evaluations_to_reach, problems, rosenbrock

import fastopt
from fastopt.kernels import lbfgs as K
from fastopt.solvers.lbfgs import History
from fastopt.solvers.linesearch import strong_wolfe

HOST_BACKENDS = [b for b in ("numpy", "numba") if b in fastopt.available_backends()]
TIGHT = dict(gtol=1e-10, ftol=1e-16, maxiter=20000, maxfun=40000)


def random_history(n, m, k, rng, dtype=np.float64):
    """k valid pairs in an (m, n) ring, stored out of order (as after wrapping)."""
    S = rng.standard_normal((m, n)).astype(dtype)
    Y = (S + 0.3 * rng.standard_normal((m, n))).astype(dtype)     # s.y > 0
    rho = 1.0 / np.einsum("ij,ij->i", S.astype(np.float64), Y.astype(np.float64))
    order = np.roll(np.arange(m), -2)[:k].astype(np.int64)
    gamma = float(S[order[-1]] @ Y[order[-1]] / (Y[order[-1]] @ Y[order[-1]])) if k else 1.0
    return S, Y, rho, order, gamma


def dense_direction(g, S, Y, order, gamma):
    """-H g with H built explicitly: H0 = gamma I, then the BFGS update for each pair."""
    n = g.size
    H = gamma * np.eye(n)
    for i in order:
        s, y = S[i].astype(np.float64), Y[i].astype(np.float64)
        r = 1.0 / (s @ y)
        V = np.eye(n) - r * np.outer(y, s)
        H = V.T @ H @ V + r * np.outer(s, s)
    return -H @ g


@pytest.mark.parametrize("k", [0, 1, 3, 6])
def test_two_loop_equals_dense_bfgs_from_history(k, rng):
    n, m = 12, 6
    S, Y, rho, order, gamma = random_history(n, m, k, rng)
    g = rng.standard_normal(n)
    d = np.empty(n)
    K.two_loop_reference(g, S, Y, rho, order, gamma, d)
    np.testing.assert_allclose(d, dense_direction(g, S, Y, order, gamma), rtol=1e-10, atol=1e-12)


def assert_ops_match_reference(ops, k, dtype, n, m=10, xp=np):
    """An L-BFGS ops object (compiled, CUDA or its CPU twin) against the reference: the
    two-loop direction, the history update and the trial step, on a random history."""
    rng = np.random.default_rng(k)
    S, Y, rho, order, gamma = random_history(n, m, k, rng, dtype)
    g, x, x_new, g_new = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    host = (lambda a: a.get()) if xp is not np else (lambda a: a)

    ref = np.empty(n, dtype)
    K.two_loop_reference(g, S, Y, rho, order, gamma, ref)
    d = xp.zeros(n, dtype)
    ops.two_loop(xp.asarray(g), xp.asarray(S), xp.asarray(Y), rho, order, gamma, d)
    tol = 1e-11 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(host(d), ref, rtol=tol, atol=tol * np.abs(ref).max())

    s1, y1 = np.empty(n, dtype), np.empty(n, dtype)
    expected = K.update_pair_reference(x_new, x, g_new, g, s1, y1)
    s2, y2 = xp.zeros(n, dtype), xp.zeros(n, dtype)
    got = ops.update_pair(*(xp.asarray(a) for a in (x_new, x, g_new, g)), s2, y2)
    np.testing.assert_array_equal(host(s2), s1)
    np.testing.assert_array_equal(host(y2), y1)
    np.testing.assert_allclose(got, expected, rtol=1e-9)

    out1, out2 = np.empty(n, dtype), xp.zeros(n, dtype)
    K.step_reference(out1, x, dtype(0.37), g)
    ops.step(out2, xp.asarray(x), 0.37, xp.asarray(g))
    np.testing.assert_array_equal(host(out2), out1)


@pytest.mark.skipif("numba" not in fastopt.available_backends(), reason="numba not installed")
@pytest.mark.parametrize("n", [50, 300_000], ids=["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [0, 1, 5, 8])
def test_fused_numba_kernels_match_reference(k, dtype, n):
    ops = K.HostOps(n, dtype, compiled=True, by_size=False)
    assert_ops_match_reference(ops, k, dtype, n, m=8)


def test_history_skips_pairs_without_curvature():
    ops = K.HostOps(3, np.float64, compiled=False)
    h = History(ops, 3, 2)
    x, g = np.zeros(3), np.zeros(3)
    h.push(np.ones(3), x, -np.ones(3), g, 1.0)      # s.y < 0: skipped
    assert h.order == []
    for step in range(1, 4):                        # ring of 2 keeps the newest two
        h.push(np.full(3, step), x, np.full(3, 2.0 * step), g, 1.0)
    assert len(h.order) == 2 and h.gamma == pytest.approx(0.5)
    np.testing.assert_array_equal(h.S[h.order[-1]], np.full(3, 3.0))


def test_a_rejected_pair_leaves_a_full_history_intact(rng):
    ops = K.HostOps(4, np.float64, compiled=False)
    h = History(ops, 4, 3)
    x, g = np.zeros(4), np.zeros(4)
    for _ in range(5):                               # the ring wraps
        s = rng.standard_normal(4)
        h.push(s, x, s + 0.1 * rng.standard_normal(4), g, 1.0)
    stored = np.concatenate([h.S[h.order], h.Y[h.order], h.rho[h.order, None]], axis=1)
    before = np.empty(4)
    h.direction(np.ones(4), before)
    h.push(np.ones(4), x, -np.ones(4), g, 1.0)        # s.y < 0: rejected
    np.testing.assert_array_equal(
        np.concatenate([h.S[h.order], h.Y[h.order], h.rho[h.order, None]], axis=1), stored)
    after = np.empty(4)
    h.direction(np.ones(4), after)
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e13, 1e16])
def test_the_curvature_test_and_the_line_search_hold_at_every_scale(scale):
    """f = scale*|x|^2: SciPy converges at every scale; the pair test compares s.y with
    -g.s (not y.y), and the zoom's tolerance is relative to the steps (tiny at 1e13)."""
    r = fastopt.minimize(lambda x: (float(scale * (x @ x)), 2 * scale * x), np.full(3, 0.1),
                         jac=True, backend="numpy")
    assert r.success and np.abs(r.x).max() < 1e-6, (r.message, r.x)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("problem", problems(), ids=lambda p: p.name)
def test_reaches_the_known_minimum(problem, backend):
    r = fastopt.minimize(problem, problem.x0, jac=True, options=TIGHT, backend=backend)
    assert r.success, r.message
    assert abs(r.fun - problem.f_min) <= problem.f_tol, (r.fun, problem.f_min)
    assert r.backend == backend
    np.testing.assert_allclose(r.jac, problem(r.x)[1])


@pytest.mark.skipif(len(HOST_BACKENDS) < 2, reason="one host backend")
def test_backends_take_the_same_path():
    p = rosenbrock(10)
    a, b = (fastopt.minimize(p, p.x0, jac=True, backend=be) for be in HOST_BACKENDS)
    # The dot products sum in another order on each backend (NumPy's pairwise sums,
    # numba's loop), so the last iterations may differ by rounding: the same path means
    # the same iteration count give or take two, and the same minimiser to the tolerance.
    assert a.success and b.success
    assert abs(a.nit - b.nit) <= 2
    np.testing.assert_allclose(a.x, b.x, atol=1e-4)


def test_no_more_evaluations_than_scipy_in_the_median():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    ours, theirs = [], []
    for p in problems():
        ours.append(evaluations_to_reach(
            lambda f, x0: fastopt.minimize(f, x0, jac=True, options=TIGHT), p))
        theirs.append(evaluations_to_reach(
            lambda f, x0: scipy_optimize.minimize(f, x0, jac=True, method="L-BFGS-B",
                                                  options=TIGHT), p))
    assert None not in ours and None not in theirs, (ours, theirs)
    ratios = np.array(ours) / np.array(theirs)       # per problem: < 1 means fewer than SciPy
    assert np.median(ratios) <= 1.0, (ours, theirs)


def test_result_has_scipys_fields():
    p = rosenbrock(4)
    r = fastopt.minimize(p, p.x0, jac=True)
    for field in ("x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "message"):
        assert field in r and getattr(r, field) is r[field]
    assert r.x.shape == p.x0.shape and r.status == 0 and "CONVERGENCE" in r.message
    assert "success" in repr(r)


def test_jac_as_a_callable_and_tol():
    p = rosenbrock(4)
    loose = fastopt.minimize(lambda x: p(x)[0], p.x0, jac=lambda x: p(x)[1], tol=1e-3)
    tight = fastopt.minimize(lambda x: p(x)[0], p.x0, jac=lambda x: p(x)[1], tol=1e-12)
    assert loose.success and tight.success and tight.fun < loose.fun and tight.fun < 1e-15


@pytest.mark.parametrize("options,status,word", [
    (dict(maxiter=3), 1, "ITERATIONS"),
    (dict(maxfun=5), 1, "EVALUATIONS"),
])
def test_limits_stop_with_status_1(options, status, word):
    p = rosenbrock(4)
    r = fastopt.minimize(p, p.x0, jac=True, options=options)
    assert r.status == status and not r.success and word in r.message
    assert r.nit <= options.get("maxiter", 99) and r.nfev <= options.get("maxfun", 99) + 20


def test_callback_sees_every_iterate_and_can_stop():
    p = rosenbrock(4)
    seen = []

    def callback(x):
        seen.append(x.copy())
        if len(seen) == 4:
            raise StopIteration
    r = fastopt.minimize(p, p.x0, jac=True, callback=callback)
    assert len(seen) == 4 and r.nit == 4 and r.status == 99
    np.testing.assert_array_equal(seen[-1], r.x)


def test_non_finite_start_is_reported():
    r = fastopt.minimize(lambda x: (math.inf, np.zeros_like(x)), np.ones(3), jac=True)
    assert r.status == 2 and "NOT FINITE" in r.message and r.nfev == 1


@pytest.mark.parametrize("line_search", ["strong_wolfe", "armijo"])
def test_non_finite_values_in_the_search_backtrack(line_search):
    """f is +inf (and g NaN) outside |x| < 2: the first steps overshoot into it."""
    def fun(x):
        if np.any(np.abs(x) >= 2):
            return math.inf, np.full_like(x, np.nan)
        return float(np.sum((x - 1.5) ** 2) * 100), 200 * (x - 1.5)
    r = fastopt.minimize(fun, np.zeros(3), jac=True, options=dict(line_search=line_search))
    assert r.success, r.message
    np.testing.assert_allclose(r.x, 1.5, atol=1e-5)


def test_a_non_descent_direction_resets_the_memory(monkeypatch):
    sabotaged = []
    direction = History.direction

    def ascent_once(self, g, d):
        direction(self, g, d)
        if len(self.order) >= 2 and not sabotaged:
            sabotaged.append(list(self.order))
            d *= -1.0                                 # an ascent direction
    monkeypatch.setattr(History, "direction", ascent_once)
    p = rosenbrock(4)
    r = fastopt.minimize(p, p.x0, jac=True, options=TIGHT)
    assert sabotaged and r.success and r.fun < 1e-12


def test_armijo_line_search_converges():
    p = rosenbrock(10)
    r = fastopt.minimize(p, p.x0, jac=True, options=dict(line_search="armijo", **TIGHT))
    assert r.success and r.fun < 1e-10


def test_strong_wolfe_returns_a_strong_wolfe_step():
    f = lambda t: ((t - 3.0) ** 2 + 0.1 * t ** 4, 2 * (t - 3.0) + 0.4 * t ** 3)   # noqa: E731
    f0, g0 = f(0.0)
    t, ft, gt, evals, ok = strong_wolfe(f, f0, g0, 1.0)
    assert ok and ft <= f0 + 1e-4 * t * g0 and abs(gt) <= 0.9 * abs(g0)


@pytest.mark.parametrize("options,match", [
    (dict(maxiter=float("nan")), "maxiter must be"),
    (dict(maxfun=float("nan")), "maxfun must be"),
    (dict(maxls=0), "maxls must be"),
    (dict(eps=float("inf")), "eps must be"),
    (dict(workers=0), "workers must be"),
    (dict(gtol=-1.0), "gtol must be"),
    (dict(line_search="exact"), "line_search must be one of"),
    (dict(bogus=1), "unknown option"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        fastopt.minimize(rosenbrock(2), np.zeros(2), jac=True, options=options)


def test_bad_method_and_missing_gradient():
    with pytest.raises(ValueError, match="method must be"):
        fastopt.minimize(rosenbrock(2), np.zeros(2), jac=True, method="Nelder-Mead")
    with pytest.raises(ValueError, match="jac must be True.*got 'two-point'"):
        fastopt.minimize(lambda x: 0.0, np.zeros(2), jac="two-point")


def test_scipy_options_names_are_accepted():
    p = rosenbrock(10)
    a = fastopt.minimize(p, p.x0, jac=True, options=dict(maxcor=5, disp=False))
    b = fastopt.minimize(p, p.x0, jac=True, options=dict(history_size=5))
    assert a.nit == b.nit and a.nfev == b.nfev


# -- the LBFGS optimizer -----------------------------------------------------------------
def logistic_problem():
    from fastopt.problems import make_logistic
    return make_logistic(n_samples=500, n_features=20)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_lbfgs_optimizer_reaches_minimizes_optimum(backend):
    fun = logistic_problem()
    best = fastopt.minimize(fun, np.zeros(20), jac=True, options=TIGHT)
    w = np.zeros(20)
    opt = fastopt.LBFGS(w, max_iter=100, backend=backend)
    first = opt.step(lambda: fun(w))
    assert first == pytest.approx(math.log(2))
    assert opt.backend == backend
    assert fun(w)[0] == pytest.approx(best.fun, rel=1e-9)
    np.testing.assert_allclose(w, best.x, rtol=1e-4, atol=1e-6)


def test_lbfgs_optimizer_with_several_params_continues_across_steps():
    fun = logistic_problem()
    w, b = np.zeros((4, 5)), np.zeros(1)             # the 20 weights split in two arrays

    def closure():
        f, g = fun(w.ravel())
        return f + 0.5 * float(b @ b), [g.reshape(4, 5), b.copy()]
    opt = fastopt.LBFGS([w, b], max_iter=5)
    losses = [opt.step(closure) for _ in range(6)]
    assert all(a >= c for a, c in zip(losses, losses[1:])) and losses[-1] < losses[0]
    assert opt.n_iter >= 6


def test_lbfgs_optimizer_stops_at_tolerance_grad():
    w = np.zeros(3)
    opt = fastopt.LBFGS(w, tolerance_grad=1e-3)
    loss = opt.step(lambda: (float(w @ w), 2 * w))       # already optimal
    assert loss == 0.0 and opt.n_iter == 0


def _two_arrays_run(steps, start=None, backend="numpy"):
    """An LBFGS over two arrays on the logistic problem, ``steps`` steps of 3 iterations
    (from ``start``, a state_dict, where given); (w, b, opt)."""
    fun = logistic_problem()
    w, b = np.zeros((4, 5)), np.zeros(1)

    def closure():
        f, g = fun(w.ravel())
        return f + 0.5 * float(b @ b) + float(b[0]), [g.reshape(4, 5), b + 1.0]
    opt = fastopt.LBFGS([w, b], history_size=4, max_iter=3, backend=backend)
    if start is not None:
        w[...], b[...] = start["w"], start["b"]
        opt.load_state_dict(start["opt"])
    for _ in range(steps):
        opt.step(closure)
    return w, b, opt


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_lbfgs_optimizer_resumes_from_an_npz_checkpoint_bit_for_bit(backend, tmp_path):
    """state_dict through np.savez and np.load (no pickle): the resumed run's params and
    history equal the uninterrupted run's, to the last bit."""
    w, b, straight = _two_arrays_run(5, backend=backend)
    w1, b1, first = _two_arrays_run(2, backend=backend)
    assert 0 < len(first.state_dict()["history.rho"]) <= 4
    np.savez(tmp_path / "ckpt.npz", **first.state_dict())
    with np.load(tmp_path / "ckpt.npz") as saved:
        w2, b2, resumed = _two_arrays_run(3, dict(w=w1, b=b1, opt=dict(saved)), backend)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(b2, b)
    a, c = straight.state_dict(), resumed.state_dict()
    assert a.keys() == c.keys() and all(np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("change,match", [
    (dict(rule="Adam"), "not an LBFGS state_dict"),
    (dict(n=19), "is for 19 elements, these params hold 21"),
    (dict(lr=-1.0), "lr must be"),
    (dict(line_search="wolfe"), "line_search 'wolfe' is not one of"),
    (dict(n_iter=-2), "n_iter must be an integer >= 0"),
    ({"history.gamma": 0.0}, "history.gamma must be"),
    ({"history.rho": np.array([1.0, -1.0])}, "history.rho must be finite and > 0"),
    ({"history.s": np.zeros((2, 21), np.float32)}, "must be \\(2, 21\\) arrays of float64"),
])
def test_lbfgs_optimizer_refuses_a_bad_state_dict_and_changes_nothing(change, match):
    w, b, opt = _two_arrays_run(2)
    sd = opt.state_dict()
    bad = {**sd, "history.rho": sd["history.rho"][:2], "history.s": sd["history.s"][:2],
           "history.y": sd["history.y"][:2], **change}
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert all(np.array_equal(after[k], sd[k]) for k in sd)


def test_lbfgs_optimizer_refuses_more_pairs_than_it_keeps():
    _, _, opt = _two_arrays_run(3)
    small = fastopt.LBFGS([np.zeros((4, 5)), np.zeros(1)], history_size=1)
    with pytest.raises(ValueError, match=r"holds \d pairs, this optimizer keeps 1"):
        small.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("kwargs,match", [
    (dict(history_size=0), "history_size must be"),
    (dict(max_iter=0), "max_iter must be"),
    (dict(lr=-1.0), "lr must be"),
    (dict(line_search="none"), "line_search must be one of"),
])
def test_lbfgs_optimizer_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastopt.LBFGS(np.zeros(3), **kwargs)


def test_lbfgs_optimizer_refuses_mixed_dtypes():
    with pytest.raises(TypeError, match="share one dtype"):
        fastopt.LBFGS([np.zeros(3), np.zeros(2, np.float32)])
