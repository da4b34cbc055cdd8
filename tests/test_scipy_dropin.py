"""minimize as a drop-in for scipy.optimize.minimize(method="L-BFGS-B") on unconstrained
problems: each behaviour a SciPy user relies on, checked on its own (SciPy's own tests run
through .ci/scipy-suite)."""
import inspect
import math
import warnings

import numpy as np
import pytest

import fastopt
from fastopt import _numdiff
from fastopt._result import LbfgsInvHessProduct

scipy_optimize = pytest.importorskip("scipy.optimize")
BACKENDS = [b for b in ("numpy", "numba") if b in fastopt.available_backends()]


def rosen(x, *args):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def rosen_der(x, *args):
    return scipy_optimize.rosen_der(x)


X0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])


class Counted:
    """fun that counts its calls and keeps the x it was given."""

    def __init__(self, fun):
        self.fun, self.calls, self.seen = fun, 0, []

    def __call__(self, x, *args):
        self.calls += 1
        self.seen.append(x)
        return self.fun(x, *args)


# -- the signature and the arguments ------------------------------------------------------
def test_signature_is_scipys_plus_backend():
    ours = list(inspect.signature(fastopt.minimize).parameters)
    theirs = list(inspect.signature(scipy_optimize.minimize).parameters)
    assert ours == theirs + ["backend"]


def test_args_reach_fun_and_jac_as_a_tuple_or_alone():
    def fun(x, a, b=0.0):
        return float(a * ((x - b) @ (x - b)))

    def jac(x, a, b=0.0):
        return 2 * a * (x - b)
    r = fastopt.minimize(fun, np.zeros(3), args=(2.0, 1.5), jac=jac)
    np.testing.assert_allclose(r.x, 1.5, atol=1e-6)
    r = fastopt.minimize(fun, np.zeros(3), args=2.0, jac=jac)        # SciPy wraps a lone arg
    np.testing.assert_allclose(r.x, 0.0, atol=1e-6)


@pytest.mark.parametrize("method", [None, "L-BFGS-B", "l-bfgs-b", "L-BFGS"])
def test_every_name_of_the_method_runs_the_same_solver(method):
    r = fastopt.minimize(rosen, X0, method=method, jac=rosen_der)
    ref = fastopt.minimize(rosen, X0, jac=rosen_der)
    assert r.nfev == ref.nfev and np.array_equal(r.x, ref.x)


@pytest.mark.parametrize("method", ["Powell", "Nelder-Mead", 3, len])
def test_methods_fastopt_lacks_are_refused(method):
    with pytest.raises(ValueError, match="method must be one of"):
        fastopt.minimize(rosen, X0, method=method)


@pytest.mark.parametrize("kwargs", [dict(hess=scipy_optimize.rosen_hess),
                                    dict(hessp=scipy_optimize.rosen_hess_prod)])
def test_hessians_are_ignored_with_scipys_warning(kwargs):
    key = next(iter(kwargs))
    text = "(hess)" if key == "hess" else "(hessp)"
    with pytest.warns(RuntimeWarning, match=f"Method L-BFGS-B does not use Hessian.*{text}") \
            as caught:
        r = fastopt.minimize(rosen, X0, jac=rosen_der, method="L-BFGS-B", **kwargs)
    assert caught[0].filename == __file__                    # points at the caller
    ref = fastopt.minimize(rosen, X0, jac=rosen_der)
    assert np.array_equal(r.x, ref.x)


# -- bounds and constraints: the unbounded ones pass, the rest are refused --------------
@pytest.mark.parametrize("bounds", [None, [(None, None)] * 5, [(-np.inf, np.inf)] * 5,
                                    [(None, np.inf), (-np.inf, None)] + [(None, None)] * 3,
                                    [(-np.inf, np.inf)], np.array([[-np.inf, np.inf]] * 5)],
                         ids=["None", "None pairs", "inf pairs", "mixed", "one for all",
                              "array"])
def test_bounds_that_bound_nothing_are_accepted(bounds):
    r = fastopt.minimize(rosen, X0, jac=rosen_der, bounds=bounds)
    assert r.success


def test_a_scipy_bounds_object_that_bounds_nothing_is_accepted():
    r = fastopt.minimize(rosen, X0, jac=rosen_der,
                         bounds=scipy_optimize.Bounds(-np.inf, np.inf))
    assert r.success


@pytest.mark.parametrize("bounds,match", [
    ([(None, None)] * 4 + [(0.0, 2.0)], r"bounds bound x\[4\] to \[0.0, 2.0\]"),
    ([(0.0, None)], r"bounds bound x\[0\] to \[0.0, inf\]"),
    ([(None, None)] * 4, r"one per coordinate of x0 \(5\) or one for all"),
    ([(None, None, None)] * 5, "bounds must be None, a Bounds, or .min, max. pairs"),
    (3.0, "bounds must be None"),
    ([("a", None)] * 5, "bounds must be None"),
], ids=["bounding", "one bounding pair for all", "too few", "triples", "number", "text"])
def test_bounds_fastopt_cannot_honour_are_refused_before_fun_runs(bounds, match):
    fun = Counted(rosen)
    with pytest.raises(ValueError, match=match):
        fastopt.minimize(fun, X0, jac=rosen_der, bounds=bounds)
    assert fun.calls == 0


def test_a_bounding_or_misshapen_scipy_bounds_object_is_refused():
    with pytest.raises(ValueError, match="does not handle bounds"):
        fastopt.minimize(rosen, X0, bounds=scipy_optimize.Bounds(0, np.inf))
    with pytest.raises(ValueError, match="one per coordinate of x0"):
        fastopt.minimize(rosen, X0, bounds=scipy_optimize.Bounds([-np.inf] * 2, np.inf))


@pytest.mark.parametrize("constraints", [(), [], None, {}, np.array([])])
def test_no_constraints_is_accepted(constraints):
    assert fastopt.minimize(rosen, X0, jac=rosen_der, constraints=constraints).success


@pytest.mark.parametrize("constraints", [
    {"type": "eq", "fun": lambda x: x[0] - 1},
    [{"type": "ineq", "fun": lambda x: x[0]}],
])
def test_constraints_are_refused_not_ignored(constraints):
    fun = Counted(rosen)
    with pytest.raises(ValueError, match="does not handle constraints"):
        fastopt.minimize(fun, X0, jac=rosen_der, constraints=constraints)
    assert fun.calls == 0


# -- jac: True, a callable, or finite differences ---------------------------------------
@pytest.mark.parametrize("method,kw", [
    ("2-point", {}), ("3-point", {}), ("2-point", dict(rel_step=1e-3)),
    ("3-point", dict(rel_step=1e-4)), ("2-point", dict(abs_step=1e-8)),
    ("2-point", dict(abs_step=1e-3))])
def test_finite_difference_steps_are_scipys_bit_for_bit(method, kw):
    from scipy.optimize._numdiff import approx_derivative
    x = np.array([3.1, -12.0, 0.0, 1e12, -3e-9, 0.5])
    f = lambda v: float(np.sum(np.tanh(v * 1e-11) * v ** 2) + np.sum(np.sin(v[:5])))  # noqa
    h = _numdiff.steps(method, x, kw.get("abs_step"), kw.get("rel_step"))
    g, calls = _numdiff.gradient(f, x, f(x), method, h)
    np.testing.assert_array_equal(g, approx_derivative(f, x, method=method, **kw))
    assert calls == (2 if method == "3-point" else 1) * x.size


def test_complex_step_is_exact_to_rounding():
    x = np.array([0.3, -1.2, 2.0])
    f = lambda v: np.sum(np.sin(v) * v ** 2)            # noqa: E731
    g, _ = _numdiff.gradient(f, x, f(x), "cs", _numdiff.steps("cs", x))
    np.testing.assert_allclose(g, np.cos(x) * x ** 2 + 2 * x * np.sin(x), rtol=1e-14)


@pytest.mark.parametrize("jac", [None, False, "2-point", "3-point", "cs"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_differences_solve_and_count_every_call_in_nfev(jac, backend):
    fun = Counted(lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    r = fastopt.minimize(fun, X0, jac=jac, backend=backend)
    ref = scipy_optimize.minimize(scipy_optimize.rosen, X0, jac=jac, method="L-BFGS-B")
    assert r.success and fun.calls == r.nfev
    assert r.njev < r.nfev                                   # one gradient per point
    np.testing.assert_allclose(r.x, ref.x, atol=2e-4)


def test_eps_and_finite_diff_rel_step_set_the_steps():
    """A quadratic's forward difference is 2x + h: the step shows."""
    ev = fastopt._minimize.Evaluations(lambda x: float(x @ x), None, (), (2,),
                                       np.full(2, 1e-2), None, gpu=False)
    g = np.zeros(2)
    f = ev(np.array([4.0, -8.0]), g)
    assert f == 80.0 and ev.nfev == 3 and ev.njev == 1
    np.testing.assert_allclose(g, [8.0 + 1e-2, -16.0 + 1e-2], rtol=1e-12)
    ev = fastopt._minimize.Evaluations(lambda x: float(x @ x), "2-point", (), (2,),
                                       np.full(2, 1e-8), np.full(2, 1e-2), gpu=False)
    ev(np.array([4.0, -8.0]), g)
    np.testing.assert_allclose(g, [8.0 + 4e-2, -16.0 - 8e-2], rtol=1e-12)


def test_float32_x_takes_float32_steps():
    h = _numdiff.steps("2-point", np.ones(3, np.float32))
    np.testing.assert_allclose(h, np.finfo(np.float32).eps ** 0.5)


def test_workers_evaluate_the_finite_differences():
    mapped = []

    def workers(f, points):
        points = list(points)
        mapped.append(len(points))
        return map(f, points)
    r = fastopt.minimize(scipy_optimize.rosen, X0, options=dict(workers=workers))
    ref = fastopt.minimize(scipy_optimize.rosen, X0)
    assert mapped and set(mapped) == {X0.size}
    assert np.array_equal(r.x, ref.x) and r.nfev == ref.nfev


def test_workers_as_a_number_of_processes():
    r = fastopt.minimize(scipy_optimize.rosen, X0[:3], options=dict(workers=2))
    ref = fastopt.minimize(scipy_optimize.rosen, X0[:3])
    assert np.array_equal(r.x, ref.x) and r.nfev == ref.nfev


def test_a_fun_returning_f_and_g_without_jac_true_is_named():
    with pytest.raises(TypeError, match="fun returned a pair, but jac is not True"):
        fastopt.minimize(lambda x: (float(x @ x), 2 * x), np.ones(2))


# -- what fun returns, and what it is given ------------------------------------------------
@pytest.mark.parametrize("wrap", [np.float32, lambda f: np.array([f]), lambda f: np.array([[f]])],
                         ids=["float32", "shape (1,)", "shape (1, 1)"])
def test_f_of_one_element_is_taken_as_scipy_takes_it(wrap):
    r = fastopt.minimize(lambda x: wrap(float(x @ x)), np.ones(2), jac=lambda x: 2 * x)
    assert r.success and isinstance(r.fun, float)


def test_a_scalar_x0_gives_fun_and_the_result_shape_1():
    fun = Counted(lambda x: float((x[0] - 2.0) ** 2))
    r = fastopt.minimize(fun, 5.0, jac=lambda x: 2 * (x - 2.0))
    assert r.x.shape == (1,) and r.jac.shape == (1,)
    assert all(x.shape == (1,) for x in fun.seen)
    np.testing.assert_allclose(r.x, [2.0], atol=1e-6)


def test_fun_and_jac_changing_their_x_in_place_do_not_mislead_the_solver():
    def fun(x):
        x -= np.arange(x.size)
        x *= x
        return float(np.sum(x))

    def jac(x):
        x *= 2
        x -= 2 * np.arange(x.size)
        return x
    r = fastopt.minimize(fun, np.full(4, 7.0), jac=jac)
    assert r.success
    np.testing.assert_allclose(r.x, np.arange(4), atol=1e-5)


def test_the_xs_given_to_fun_and_callback_never_change_afterwards():
    fun = Counted(rosen)
    kept = []
    r = fastopt.minimize(fun, X0, jac=rosen_der, callback=lambda xk: kept.append((xk, xk.copy())))
    assert r.success and len(kept) == r.nit
    assert all(np.array_equal(a, b) for a, b in kept)
    assert len({id(x) for x in fun.seen}) == len(fun.seen)     # a fresh array each call


# -- the callback ---------------------------------------------------------------------------
def test_callback_with_intermediate_result_gets_x_and_fun():
    got = []

    def callback(intermediate_result):
        got.append(intermediate_result)
    r = fastopt.minimize(rosen, X0, jac=rosen_der, callback=callback)
    assert len(got) == r.nit
    assert all(isinstance(res, fastopt.OptimizeResult) and res.fun == rosen(res.x)
               for res in got)
    assert np.array_equal(got[-1].x, r.x)


def test_a_callable_object_with_intermediate_result_is_recognised():
    class Callback:
        def __init__(self):
            self.results = []

        def __call__(self, intermediate_result):
            self.results.append(intermediate_result.fun)
    cb = Callback()
    fastopt.minimize(rosen, X0, jac=rosen_der, callback=cb)
    assert cb.results and all(isinstance(f, float) for f in cb.results)


@pytest.mark.parametrize("form", ["xk", "intermediate_result"])
def test_stop_iteration_stops_as_maxiter_would_with_scipys_message(form):
    stop_at = 4
    calls = []

    def callback_xk(xk):
        calls.append(1)
        if len(calls) == stop_at:
            raise StopIteration

    def callback_result(intermediate_result):
        callback_xk(intermediate_result.x)

    fun = Counted(rosen)
    r = fastopt.minimize(fun, X0, jac=rosen_der,
                         callback=callback_xk if form == "xk" else callback_result)
    ref = fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(maxiter=stop_at))
    assert r.message == "`callback` raised `StopIteration`."
    assert r.status == 99 and not r.success and r.nit == ref.nit == stop_at
    assert np.array_equal(r.x, ref.x) and r.fun == ref.fun and fun.calls == ref.nfev


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("maxiter,expected", [(2.5, 3), (3.0, 3), (100.1, None), (np.inf, None)])
def test_maxiter_may_be_any_number(maxiter, expected):
    r = fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(maxiter=maxiter))
    if expected is None:
        assert r.success
    else:
        assert r.nit == expected and r.status == 1
        assert r.message == "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"


def test_iprint_is_accepted_with_a_warning_that_it_does_nothing():
    with pytest.warns(DeprecationWarning, match="iprint has no effect") as caught:
        assert fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(iprint=-1)).success
    assert caught[0].filename == __file__


# -- the result -------------------------------------------------------------------------------
FIELDS = ["x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "message", "hess_inv"]


def test_result_fields_are_keys_attributes_and_in_dir():
    r = fastopt.minimize(rosen, X0, jac=rosen_der)
    for field in FIELDS:
        assert field in r and field in dir(r)
        assert getattr(r, field) is r[field]
    with pytest.raises(AttributeError, match="nope"):
        r.nope
    assert repr(fastopt.OptimizeResult()) == "OptimizeResult()"


def test_result_prints_as_scipys():
    r = fastopt.minimize(rosen, np.linspace(-1, 1, 20), jac=rosen_der)
    fields = {k: v for k, v in r.items() if k != "backend"}
    assert repr(r).splitlines()[0] == "  message: CONVERGENCE: RELATIVE REDUCTION OF F <= " \
                                      "FACTR*EPSMCH"
    assert repr(fastopt.OptimizeResult(fields)) == repr(scipy_optimize.OptimizeResult(fields))
    odd = dict(x=np.array([np.inf, np.nan, -np.inf]), note="two\nlines", nit=3)
    assert repr(fastopt.OptimizeResult(odd)) == repr(scipy_optimize.OptimizeResult(odd))


@pytest.mark.parametrize("case,message,status", [
    ("gtol", "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL", 0),
    ("ftol", "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH", 0),
    ("maxiter", "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT", 1),
    ("maxfun", "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT", 1),
    ("abnormal", "ABNORMAL: ", 2),
])
def test_messages_and_statuses_are_scipy_117s(case, message, status):
    options = {"gtol": dict(ftol=0.0), "ftol": dict(ftol=1e-2), "maxiter": dict(maxiter=2),
               "maxfun": dict(maxfun=4), "abnormal": dict(maxiter=20)}[case]
    jac = rosen_der
    if case == "abnormal":                           # a gradient pointing uphill
        jac = lambda x: -rosen_der(x)                # noqa: E731
    r = fastopt.minimize(rosen, X0, jac=jac, options=options)
    assert (r.message, r.status, r.success) == (message, status, status == 0)
    if case == "abnormal":
        assert r.fun == rosen(X0) and np.array_equal(r.x, X0)    # never worse than x0


# -- hess_inv ---------------------------------------------------------------------------------
def quadratic_problem(n=6, seed=3):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    A = A @ A.T + n * np.eye(n)
    return (lambda x: float(0.5 * x @ A @ x)), (lambda x: A @ x), A


def test_hess_inv_satisfies_the_newest_secant_pair():
    fun, jac, A = quadratic_problem()
    r = fastopt.minimize(fun, np.ones(6), jac=jac, options=dict(gtol=1e-12))
    H = r.hess_inv
    assert H.shape == (6, 6) and H.n_corrs == min(r.nit, 10)
    s, y = H.sk[-1], H.yk[-1]
    np.testing.assert_allclose(H.matvec(y), s, rtol=1e-8)      # H y = s for the newest pair
    np.testing.assert_allclose(y, A @ s, rtol=1e-8)             # the pairs are the problem's
    dense = H.todense()
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    v = np.arange(6.0)
    np.testing.assert_allclose(H.matvec(v.reshape(6, 1)).ravel(), H.matvec(v))
    np.testing.assert_allclose(dense @ v, H.matvec(v))


def test_hess_inv_is_scipys_operator_and_works_in_scipys_solvers():
    from scipy.sparse.linalg import LinearOperator, cg
    fun, jac, _ = quadratic_problem()
    H = fastopt.minimize(fun, np.ones(6), jac=jac).hess_inv
    assert isinstance(H, scipy_optimize.LbfgsInvHessProduct) and isinstance(H, LinearOperator)
    theirs = scipy_optimize.LbfgsInvHessProduct(H.sk, H.yk)
    v = np.linspace(-1, 1, 6)
    np.testing.assert_array_equal(H.todense(), theirs.todense())
    np.testing.assert_array_equal(H.rho, theirs.rho)
    for form in (v, v.reshape(6, 1), np.eye(6)):
        np.testing.assert_array_equal(H(form), theirs(form))
        np.testing.assert_array_equal(H @ form, theirs @ form)
    np.testing.assert_array_equal((2.0 * H + H @ H).matvec(v), (2.0 * theirs + theirs @ theirs)
                                  .matvec(v))
    x, info = cg(H, v, rtol=1e-12)
    assert info == 0 and np.allclose(H.matvec(x), v)
    np.testing.assert_array_equal(H.rmatvec(v), H.matvec(v))      # symmetric: H^T = H
    np.testing.assert_array_equal(H.T.matvec(v), H.matvec(v))
    assert repr(H) == repr(theirs) == "<6x6 LbfgsInvHessProduct with dtype=float64>"


@pytest.mark.parametrize("maker", ["scipy", "twin"])
def test_hess_inv_copies_nothing_until_used_and_survives_a_wrapped_ring(maker):
    fun, jac, _ = quadratic_problem(n=30)
    r = fastopt.minimize(fun, np.ones(30), jac=jac, options=dict(maxcor=3, gtol=1e-12))
    S, Y, rows = r.hess_inv._source
    assert r.nit > 4 and len(rows) == 3 and S.shape[0] == 4      # the ring wrapped
    H = r.hess_inv if maker == "scipy" else LbfgsInvHessProduct.of_history(S, Y, rows)
    theirs = scipy_optimize.LbfgsInvHessProduct(S[rows], Y[rows])  # copies, in order
    np.testing.assert_array_equal(H.todense(), theirs.todense())
    assert H._source is None                                  # read once, then dropped


def test_hess_inv_twin_without_scipy_computes_what_scipys_does():
    rng = np.random.default_rng(5)
    sk = rng.standard_normal((3, 6))
    yk = sk + 0.2 * rng.standard_normal((3, 6))
    ours, theirs = LbfgsInvHessProduct(sk, yk), scipy_optimize.LbfgsInvHessProduct(sk, yk)
    v = np.linspace(-1, 1, 6)
    for form in (v, v.reshape(6, 1), np.eye(6)):
        np.testing.assert_allclose(ours(form), theirs(form), rtol=1e-13)
        np.testing.assert_allclose(ours @ form, theirs @ form, rtol=1e-13)
    np.testing.assert_allclose(ours.todense(), theirs.todense(), rtol=1e-13)
    np.testing.assert_allclose(ours.rmatvec(v), theirs.matvec(v), rtol=1e-13)   # symmetric
    assert ours.T is ours and repr(ours) == repr(theirs)
    with pytest.raises(ValueError, match="expected shape"):
        ours.matvec(np.ones(5))
    with pytest.raises(ValueError, match="matching shape"):
        LbfgsInvHessProduct(sk, yk[:2])


def test_hess_inv_approaches_the_true_inverse_hessian_on_a_quadratic():
    fun, jac, A = quadratic_problem(n=4)
    r = fastopt.minimize(fun, np.ones(4), jac=jac, options=dict(gtol=1e-14, maxcor=20))
    ref = scipy_optimize.minimize(fun, np.ones(4), jac=jac, method="L-BFGS-B",
                                  options=dict(gtol=1e-14, maxcor=20))
    truth = np.linalg.inv(A)
    ours = np.linalg.norm(r.hess_inv.todense() - truth) / np.linalg.norm(truth)
    theirs = np.linalg.norm(ref.hess_inv.todense() - truth) / np.linalg.norm(truth)
    assert ours <= max(2 * theirs, 0.1), (ours, theirs)


def test_no_duplicate_evaluations_in_a_row():
    fun = Counted(rosen)
    fastopt.minimize(fun, X0)
    assert not any(np.array_equal(a, b) for a, b in zip(fun.seen, fun.seen[1:]))


def test_nan_everywhere_ends_abnormally_not_in_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fastopt.minimize(lambda x: math.nan, np.ones(1), jac=lambda x: np.ones(1))
    assert not r.success and r.status == 2 and r.message.startswith("ABNORMAL: ")


# -- found when tried side by side with SciPy ----------------------------------------------
@pytest.mark.parametrize("jac", [None, "2-point", "3-point"])
def test_float32_x0_with_finite_differences_converges(jac):
    r = fastopt.minimize(lambda x: np.sum((x - 1.0) ** 2), np.float32([2.0, 3.0]), jac=jac)
    assert r.success and r.x.dtype == np.float32 and r.fun < 1e-6, r


def test_maxfun_is_checked_between_iterations_as_l_bfgs_b_does():
    """A line search is never cut short: the run stops after the first iteration that
    ends with nfev > maxfun, so nfev may pass maxfun, and one iteration fewer stays within."""
    r = fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(maxfun=10))
    assert r.status == 1 and r.message == "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"
    assert r.nfev > 10
    shorter = fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(maxiter=r.nit - 1))
    assert shorter.nfev <= 10
    same = fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(maxiter=r.nit))
    assert np.array_equal(same.x, r.x)


def test_maxiter_wins_over_convergence_on_the_last_allowed_iteration():
    q = lambda x: (float(np.sum((x - 1) ** 2)), 2 * (x - 1))      # noqa: E731
    free = fastopt.minimize(q, np.zeros(3), jac=True)
    assert free.success and free.nit >= 1
    r = fastopt.minimize(q, np.zeros(3), jac=True, options=dict(maxiter=free.nit))
    assert (r.status, r.success) == (1, False) and "ITERATIONS" in r.message


def test_a_failed_line_search_is_never_reported_as_convergence():
    r = fastopt.minimize(lambda x: (float(np.abs(x).sum()), np.sign(x)), [1.3, -0.7, 2.2],
                         jac=True)
    assert r.success == (r.fun < 1e-6), (r.fun, r.message)


@pytest.mark.parametrize("shape", [(3, 1), (1, 3)])
def test_a_gradient_of_x_size_in_a_column_or_row_is_taken_for_1d_x(shape):
    r = fastopt.minimize(lambda x: float(np.sum((x - 1) ** 2)), np.zeros(3),
                         jac=lambda x: (2 * (x - 1)).reshape(shape))
    assert r.success and np.allclose(r.x, 1.0)


def test_a_gradient_of_another_shape_is_refused_for_nd_x():
    with pytest.raises(ValueError, match=r"gradient has shape \(3, 2\), x has \(2, 3\)"):
        fastopt.minimize(lambda x: float(np.sum(x ** 2)), np.zeros((2, 3)),
                         jac=lambda x: 2 * x.T)


def test_disp_none_is_taken_as_scipy_documents_it():
    assert fastopt.minimize(rosen, X0, jac=rosen_der, options=dict(disp=None)).success


@pytest.mark.parametrize("jac", ["callable", True, None])
def test_stop_iteration_raised_by_fun_comes_out_unchanged(jac):
    stop = StopIteration("from fun")
    calls = [0]

    def fun(x):
        calls[0] += 1
        if calls[0] == 3:
            raise stop
        f = float(np.sum((x - 1) ** 2))
        return (f, 2 * (x - 1)) if jac is True else f
    with pytest.raises(StopIteration) as caught:
        fastopt.minimize(fun, np.zeros(3),
                         jac=(lambda x: 2 * (x - 1)) if jac == "callable" else jac)
    assert caught.value is stop


def test_stop_iteration_raised_by_a_closure_comes_out_of_lbfgs_unchanged():
    w = np.zeros(3)
    opt = fastopt.LBFGS(w, backend="numpy")
    calls = [0]

    def closure():
        calls[0] += 1
        if calls[0] == 3:
            raise StopIteration("from the closure")
        return float(np.sum((w - 1) ** 2)), 2 * (w - 1)
    with pytest.raises(StopIteration, match="from the closure"):
        opt.step(closure)


@pytest.mark.parametrize("options,match", [
    (dict(eps=[1e-3] * 2), r"option eps has shape \(2,\); it must be one number or one per"),
    (dict(finite_diff_rel_step=np.ones(4)), "option finite_diff_rel_step has shape"),
    (dict(maxcor=0), "option maxcor must be an integer >= 1"),
    (dict(maxcor=5, history_size=2), "maxcor and history_size name the same setting"),
])
def test_bad_options_are_named_before_fun_runs(options, match):
    fun = Counted(lambda x: float(x @ x))
    with pytest.raises(ValueError, match=match):
        fastopt.minimize(fun, np.ones(3), options=options)
    assert fun.calls == 0


def test_steps_per_coordinate_follow_an_nd_x0():
    f = lambda x: float(np.sum(x ** 2))                          # noqa: E731
    x0 = np.arange(1.0, 7.0).reshape(2, 3)
    r = fastopt.minimize(f, x0, options=dict(eps=np.full((2, 3), 1e-7)))
    assert r.success and r.x.shape == (2, 3) and np.abs(r.x).max() < 1e-4


def test_a_fun_returning_a_list_of_one_is_f():
    r = fastopt.minimize(lambda x: [float(x @ x)], np.ones(2), jac=lambda x: 2 * x)
    assert r.success


def test_an_array_as_jac_is_named():
    with pytest.raises(ValueError, match="jac must be True"):
        fastopt.minimize(lambda x: float(x @ x), np.ones(3), jac=np.zeros(3))


def test_fun_of_the_result_is_a_numpy_float_and_an_empty_x0_is_refused():
    r = fastopt.minimize(rosen, X0, jac=rosen_der)
    assert isinstance(r.fun, np.float64) and r.fun.item() == r.fun
    with pytest.raises(ValueError, match="x0 is empty"):
        fastopt.minimize(rosen, [])
