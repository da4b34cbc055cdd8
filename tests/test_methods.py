"""minimize's CG, BFGS, Newton-CG and Newton: their kernels against the NumPy reference,
the Moré-Garbow-Hillstrom problems against SciPy's same methods, Newton's damping, and
SciPy's conventions (options, statuses, counts, callbacks) for each method."""
import math

import numpy as np
import pytest
from mgh_problems import evaluations_to_reach, problems, rosenbrock

import fastopt
from fastopt.kernels import bfgs as KB
from fastopt.kernels import cg as KC
from fastopt.kernels import lbfgs as K
from fastopt.solvers import METHODS

HOST_BACKENDS = [b for b in ("numpy", "numba") if b in fastopt.available_backends()]
# the methods SciPy has beside L-BFGS-B (which test_scipy_dropin.py compares)
SCIPY_METHODS = [m.name for m in METHODS if m.scipy and m.name != "L-BFGS-B"]
WITH_RETURN_ALL = [m.name for m in METHODS if "return_all" in m.options]
TIGHT = {"CG": dict(gtol=1e-10, maxiter=20000), "BFGS": dict(gtol=1e-10),
         "Newton-CG": dict(xtol=1e-12)}


def needed(method, so):
    """What ``method`` needs beside jac to run on Rosenbrock (Newton: hess)."""
    by_name = {m.name: m for m in METHODS}
    return dict(hess=so.rosen_hess) if by_name[method].hessian == "required" else {}


# -- every registered method ------------------------------------------------------------------
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("method", [m.name for m in METHODS])
def test_every_method_solves_rosenbrock_with_scipys_fields(method, backend, so):
    r = fastopt.minimize(so.rosen, np.array([-1.2, 1.0]), jac=so.rosen_der, method=method,
                         backend=backend, **needed(method, so))
    by_name = {m.name: m for m in METHODS}
    assert r.success and r.status == 0 and r.message in by_name[method].messages.values()
    np.testing.assert_allclose(r.x, [1.0, 1.0], rtol=1e-4)
    assert r.nit > 0 and r.nfev >= r.nit and r.backend == backend


@pytest.mark.parametrize("method", METHODS, ids=str)
def test_every_method_takes_its_options_and_tol(method, so):
    """Each option at its default is accepted as given; tol sets the method's tolerances
    (a tolerance of 0.1 ends the run sooner than the default); an unknown option is named."""
    run = dict(fun=so.rosen, x0=np.array([-1.2, 1.0]), jac=so.rosen_der, method=method.name,
               **needed(method.name, so))
    defaults = {k: o.default for k, o in method.options.items() if k != "maxiter"}
    assert fastopt.minimize(**run, options=defaults).success
    assert fastopt.minimize(**run, tol=0.1).nit < fastopt.minimize(**run).nit
    with pytest.raises(ValueError, match=f"unknown option.*for method {method.name}"):
        fastopt.minimize(**run, options=dict(not_an_option=1))


# -- the kernels ----------------------------------------------------------------------------
def kernel_cases(n, dtype, rng):
    """Arguments for each kernel of kernels.cg and kernels.bfgs, in the host order."""
    def vectors(k):
        return [rng.standard_normal(n).astype(dtype) for _ in range(k)]

    def matrix():
        return rng.standard_normal((n, n)).astype(dtype)
    return {"cg_trial": (*vectors(4),), "cg_direction": (*vectors(2), 0.7),
            "cg_start": (*vectors(4),), "fd_hessp": (*vectors(2), 1e-3, *vectors(2)),
            "cg_advance": (*vectors(4), 0.3), "dot_l1": (*vectors(2),),
            "rank_two": (matrix(), *vectors(2), 1.0), "matvec": (matrix(), *vectors(2)),
            "bfgs_sums": (*vectors(8),),
            "bfgs_vectors": (*vectors(3), 0.3, -0.2, 1.1, 0.7, -0.4, *vectors(2))}


def assert_method_kernels_match_reference(ops, dtype, n=257, xp=np):
    """Every kernel of ``ops.call`` (compiled, CUDA or its CPU twin) against the reference:
    the arrays it writes equal (bit for bit, but the products' sums), its results close."""
    reference = K.HostOps(n, dtype, compiled=False)
    assert set(kernel_cases(1, dtype, np.random.default_rng(0))) == \
        set(KC.REFERENCE) | set(KB.REFERENCE)
    for name, args in kernel_cases(n, dtype, np.random.default_rng(1)).items():
        ours = [xp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        got, want = ops.call(name, *ours), reference.call(name, *theirs)
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(np.atleast_1d(got if got is not None else 0.0),
                                   np.atleast_1d(want if want is not None else 0.0),
                                   rtol=rtol, err_msg=name)
        for a, b in zip(ours, theirs):
            if isinstance(b, np.ndarray):
                a = a.get() if hasattr(a, "get") else a
                if name == "matvec":               # sums in another order
                    np.testing.assert_allclose(a, b, rtol=rtol * 10, atol=rtol, err_msg=name)
                else:
                    np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_kernels_match_reference(dtype):
    pytest.importorskip("numba")
    assert_method_kernels_match_reference(K.HostOps(257, dtype, compiled=True, by_size=False),
                                          dtype)


def test_reference_kernels_compute_what_they_say():
    rng = np.random.default_rng(2)
    g_t, d, g = rng.standard_normal((3, 50))
    out = np.zeros(50)
    assert np.allclose(KC.cg_trial_reference(g_t, d, g, out),
                       [g_t @ d, g_t @ g_t, g_t @ g, np.abs(g_t).max()])
    np.testing.assert_array_equal(out, g_t)
    H, s, u = rng.standard_normal((50, 50)), rng.standard_normal(50), rng.standard_normal(50)
    want = 0.5 * H + np.outer(s, u) + np.outer(u, s)
    KB.rank_two_reference(H, s, u, 0.5)
    np.testing.assert_allclose(H, want, rtol=1e-13, atol=1e-15)


def test_bfgs_rank_two_form_is_the_bfgs_update():
    """H + s u^T + u s^T (kernels.bfgs) is the textbook (I - rho s y^T) H (I - rho y s^T)
    + rho s s^T."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 6))
    H, s = A @ A.T + np.eye(6), rng.standard_normal(6)
    y = s + 0.2 * rng.standard_normal(6)
    rho, hy = 1.0 / (s @ y), H @ y
    V = np.eye(6) - rho * np.outer(y, s)
    want = V.T @ H @ V + rho * np.outer(s, s)
    u = (rho * rho * (y @ hy) + rho) / 2 * s - rho * hy
    KB.rank_two_reference(H, s, u, 1.0)
    np.testing.assert_allclose(H, want, rtol=1e-12, atol=1e-12)


# -- the Moré-Garbow-Hillstrom problems against SciPy ------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_solves_what_scipy_solves_in_as_few_evaluations(method, backend):
    """Every problem SciPy's same method solves is solved, and the median ratio of
    evaluations to SciPy's is <= 1.1 (the issue's target)."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    ratios = []
    for p in problems():
        ours = evaluations_to_reach(lambda f, x0: fastopt.minimize(
            f, x0, jac=True, method=method, options=TIGHT[method], backend=backend), p)
        theirs = evaluations_to_reach(lambda f, x0: scipy_optimize.minimize(
            f, x0, jac=True, method=method, options=TIGHT[method]), p)
        if theirs is not None:
            assert ours is not None, f"{method} did not solve {p.name}; SciPy did"
            ratios.append(ours / theirs)
    assert np.median(ratios) <= 1.1, ratios


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("variant", ["PR+", "FR", "HS"])
def test_every_cg_variant_reaches_the_minimum(variant, backend):
    p = rosenbrock(10)
    r = fastopt.minimize(p, p.x0, jac=True, method="CG", backend=backend,
                         options=dict(variant=variant, gtol=1e-8, maxiter=20000))
    assert r.success and r.fun < 1e-12, (r.message, r.fun)


def test_cg_variants_take_different_paths():
    """The variant option reaches the kernels' beta (a test that could not fail if it were
    ignored would be worthless)."""
    p = rosenbrock(10)
    nits = {v: fastopt.minimize(p, p.x0, jac=True, method="CG", backend="numpy",
                                options=dict(variant=v)).nit for v in ("PR+", "FR", "HS")}
    assert len(set(nits.values())) == 3, nits


@pytest.mark.skipif(len(HOST_BACKENDS) < 2, reason="one host backend")
@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_backends_take_the_same_path(method):
    p = rosenbrock(10)
    a, b = (fastopt.minimize(p, p.x0, jac=True, method=method, backend=be,
                             options=TIGHT[method]) for be in HOST_BACKENDS)
    assert a.success and b.success and abs(a.nit - b.nit) <= 2
    np.testing.assert_allclose(a.x, b.x, atol=1e-4)


# -- Newton ------------------------------------------------------------------------------------
def double_well(x):
    """f = x0^4/4 - x0^2/2 + x1^2: minima at (+-1, 0), a saddle at 0, where the Hessian
    diag(3 x0^2 - 1, 2) is indefinite for |x0| < 1/sqrt(3)."""
    return x[0] ** 4 / 4 - x[0] ** 2 / 2 + x[1] ** 2, np.array([x[0] ** 3 - x[0], 2 * x[1]])


def double_well_hess(x):
    return np.diag([3 * x[0] ** 2 - 1, 2.0])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_damped_newton_converges_from_an_indefinite_start(backend):
    x0 = np.array([0.1, 0.0])
    g = double_well(x0)[1]
    pure = -np.linalg.solve(double_well_hess(x0), g)
    assert g @ pure > 0                      # the undamped Newton step goes uphill here
    r = fastopt.minimize(double_well, x0, jac=True, hess=double_well_hess, method="Newton",
                         backend=backend, options=dict(gtol=1e-10))
    assert r.success, r.message
    np.testing.assert_allclose(r.x, [1.0, 0.0], atol=1e-7)
    assert r.fun == pytest.approx(-0.25) and r.nhev == r.nit


def test_newton_converges_quadratically_on_rosenbrock():
    so = pytest.importorskip("scipy.optimize")
    r = fastopt.minimize(so.rosen, np.array([-1.2, 1.0, -1.2, 1.0]), jac=so.rosen_der,
                         hess=so.rosen_hess, method="Newton", options=dict(gtol=1e-12))
    assert r.success and r.fun < 1e-20 and r.nit < 40, (r.fun, r.nit)


def test_newton_needs_a_dense_hessian():
    with pytest.raises(ValueError, match="method Newton needs hess"):
        fastopt.minimize(double_well, np.ones(2), jac=True, method="Newton")
    with pytest.raises(ValueError, match=r"hess\(x\) must be an \(2, 2\) matrix"):
        fastopt.minimize(double_well, np.ones(2), jac=True, method="Newton",
                         hess=lambda x: np.ones(3))


# -- SciPy's conventions --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def so():
    return pytest.importorskip("scipy.optimize")


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_results_carry_scipys_fields_and_counts(method, so):
    x0 = np.array([-1.2, 1.0, 0.5])
    r = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method=method)
    ref = so.minimize(so.rosen, x0, jac=so.rosen_der, method=method)
    assert set(ref) <= set(r), set(ref) - set(r)
    assert r.success and r.status == 0
    # SciPy's own run may end on rounding (Newton-CG: "precision loss" on AMD EPYC here)
    assert r.message == (ref.message if ref.success else "Optimization terminated successfully.")
    np.testing.assert_allclose(r.x, ref.x, atol=1e-3)
    assert r.njev == r.nfev if method != "Newton-CG" else r.njev > r.nfev


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_maxiter_stops_with_scipys_status_and_message(method, so):
    x0 = np.array([-1.2, 1.0])
    r = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method=method,
                         options=dict(maxiter=3))
    ref = so.minimize(so.rosen, x0, jac=so.rosen_der, method=method, options=dict(maxiter=3))
    assert (r.status, r.message, r.nit) == (ref.status, ref.message, 3)


@pytest.mark.parametrize("method", WITH_RETURN_ALL)
def test_callback_sees_each_iterate_stops_and_return_all(method, so):
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result.fun)
        if len(seen) == 4:
            raise StopIteration
    r = fastopt.minimize(so.rosen, np.array([-1.2, 1.0]), jac=so.rosen_der, method=method,
                         callback=callback, options=dict(return_all=True), **needed(method, so))
    assert r.status == 99 and not r.success and r.nit == 4 and len(seen) == 4
    assert seen[-1] == r.fun and len(r.allvecs) == 5
    np.testing.assert_array_equal(r.allvecs[-1], r.x)


@pytest.mark.parametrize("jac", [None, "2-point", "3-point", True])
@pytest.mark.parametrize("method", ["CG", "BFGS"])
def test_every_jac_form(method, jac, so):
    fun = (lambda x: (so.rosen(x), so.rosen_der(x))) if jac is True else so.rosen
    r = fastopt.minimize(fun, np.array([-1.2, 1.0]), jac=jac, method=method)
    ref = so.minimize(fun, np.array([-1.2, 1.0]), jac=jac, method=method)
    assert r.success or r.status == ref.status
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-3)
    if jac in (None, "2-point"):                # each gradient costs n + 1 calls of fun
        assert r.nfev == r.njev * 3


def test_newton_cg_takes_hessp_hess_or_differences(so):
    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    runs = {kind: fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method="Newton-CG", **kw)
            for kind, kw in [("hessp", dict(hessp=so.rosen_hess_prod)),
                             ("hess", dict(hess=so.rosen_hess)), ("fd", {})]}
    for kind, r in runs.items():
        assert r.success and r.fun < 1e-6, (kind, r.fun)
    assert runs["hess"].nhev == runs["hess"].nit              # one Hessian per iteration
    assert runs["hessp"].nhev > runs["hessp"].nit              # one per inner step
    assert runs["fd"].nhev == 0 and runs["fd"].njev > runs["hessp"].njev
    np.testing.assert_allclose(runs["hessp"].x, runs["hess"].x, rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_newton_cg_differences_scale_the_step_to_the_direction(dtype):
    """The finite-difference product's step is eps (1 + |x|) along p / |p|: with SciPy's
    fixed eps along an unnormalised p, float32 products were noise, the inner CG ran its
    20 n steps every iteration and overflowed (n = 1000 did not finish in 5 minutes)."""
    p = rosenbrock(1000)
    r = fastopt.minimize(lambda x: tuple(a.astype(x.dtype) if np.ndim(a) else a
                                         for a in p(x.astype(np.float64))),
                         p.x0.astype(dtype), jac=True, method="Newton-CG", backend="numpy")
    assert r.success and r.fun < 1e-5 and r.njev < 1000, (r.fun, r.njev)


def test_newton_cg_needs_a_gradient():
    with pytest.raises(ValueError, match="Jacobian is required for Newton-CG"):
        fastopt.minimize(lambda x: float(x @ x), np.ones(3), method="Newton-CG")


@pytest.mark.parametrize("method", ["CG", "BFGS"])
def test_hessians_are_ignored_with_scipys_warning(method, so):
    with pytest.warns(RuntimeWarning, match=f"Method {method} does not use Hessian"):
        fastopt.minimize(so.rosen, np.ones(2), jac=so.rosen_der, method=method,
                         hess=so.rosen_hess)


def test_bfgs_hess_inv_approaches_the_inverse_hessian(so):
    x0 = np.array([-1.2, 1.0])
    r = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method="BFGS",
                         options=dict(gtol=1e-10))
    np.testing.assert_allclose(r.hess_inv, np.linalg.inv(so.rosen_hess(r.x)), rtol=0.1)
    np.testing.assert_allclose(r.hess_inv, r.hess_inv.T)


def test_bfgs_hess_inv0(so):
    x0 = np.array([-1.2, 1.0])
    H0 = np.linalg.inv(so.rosen_hess(x0) + 10 * np.eye(2))
    H0 = (H0 + H0.T) / 2                         # exactly symmetric, as SciPy requires
    r = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method="BFGS",
                         options=dict(hess_inv0=H0))
    plain = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method="BFGS")
    assert r.success and r.nfev != plain.nfev
    with pytest.raises(ValueError, match="'hess_inv0' matrix isn't positive definite"):
        fastopt.minimize(so.rosen, x0, method="BFGS", options=dict(hess_inv0=-np.eye(2)))
    with pytest.raises(ValueError, match=r"hess_inv0 must be an \(2, 2\)"):
        fastopt.minimize(so.rosen, x0, method="BFGS", options=dict(hess_inv0=np.eye(3)))


@pytest.mark.parametrize("method, options, match", [
    ("CG", dict(ftol=1e-3), r"unknown option\(s\) \['ftol'\] for method CG"),
    ("BFGS", dict(maxcor=3), r"unknown option\(s\) \['maxcor'\] for method BFGS"),
    ("Newton-CG", dict(gtol=1e-3), r"unknown option\(s\) \['gtol'\] for method Newton-CG"),
    ("CG", dict(variant="PR"), r"variant must be one of \['PR\+', 'FR', 'HS'\]"),
    ("CG", dict(c1=0.5, c2=0.1), "'c1' and 'c2' do not satisfy"),
    ("BFGS", dict(c2=1.0), r"c2 must be a number in \(0, 1\), got 1.0 \('c1' and 'c2'"),
    ("BFGS", dict(norm=0), "norm must be a nonzero number"),
    ("Newton-CG", dict(xtol=-1), "xtol must be a finite number >= 0"),
    ("Newton", dict(damping=0.0), "damping must be a finite number > 0"),
    ("CG", dict(maxiter="many"), "maxiter must be a number, got 'many'"),
])
def test_bad_options_are_errors_before_fun_runs(method, options, match):
    def fun(x):
        raise AssertionError("fun ran")
    with pytest.raises(ValueError, match=match):
        fastopt.minimize(fun, np.ones(2), jac=True, method=method, options=options,
                         hess=double_well_hess)


def test_tol_sets_each_methods_tolerance(so):
    x0 = np.array([-1.2, 1.0])
    for method in ("CG", "BFGS", "Newton-CG"):
        loose = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method=method, tol=1e-2)
        tight = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method=method, tol=1e-9)
        assert loose.nit < tight.nit, method


def test_norm_option_is_the_stopping_norm(so):
    x0 = np.array([-1.2, 1.0, 0.3, 0.8])
    r = fastopt.minimize(so.rosen, x0, jac=so.rosen_der, method="BFGS",
                         options=dict(norm=1, gtol=1e-4))
    assert r.success and np.abs(r.jac).sum() <= 1e-4
    assert math.isclose(np.abs(r.jac).sum(), np.linalg.norm(r.jac, 1))


@pytest.mark.parametrize("method", ["CG", "BFGS", "Newton-CG"])
def test_float32_problems_stay_float32(method):
    x0 = np.array([-1.2, 1.0, -1.2, 1.0], np.float32)
    seen = set()

    def fun(x):
        seen.add(x.dtype)
        f, g = rosenbrock(4)(x.astype(np.float64))
        return f, g.astype(np.float32)
    r = fastopt.minimize(fun, x0, jac=True, method=method, options=dict(maxiter=200))
    assert seen == {np.dtype(np.float32)} and r.x.dtype == np.float32 and r.fun < 1e-6


# -- the numba backend's kernels, by size ------------------------------------------------------
def test_numba_backend_picks_its_kernels_by_size():
    """NumPy's kernels where numba's do not pay (kernels.lbfgs.numba_pays, measured): small
    problems, vectors that sit in cache; the (n, n) passes from 1e4 elements."""
    pytest.importorskip("numba")
    expect = {(100, np.float64, "cg"): (False, True), (50, np.float32, "cg"): (False, False),
              (50_000, np.float64, "l-bfgs-b"): (False, True),
              (50_000, np.float32, "l-bfgs-b"): (True, True),
              (50_000, np.float32, "cg"): (False, True),
              (50_000, np.float32, "newton-cg"): (False, True),
              (1_000_000, np.float64, "newton-cg"): (True, True)}
    for (n, dtype, method), (vector, matrix) in expect.items():
        ops = K.HostOps(n, dtype, compiled=True, method=method)
        assert ops.compiled == {False: vector, True: matrix}, (n, dtype, method)
    assert not any(K.HostOps(10**6, np.float64, compiled=False).compiled.values())


def assert_same_runs(method, backend):
    """The solver on the kernels now in place against the NumPy reference: the first eight
    iterations on each of six MGH problems reach the same point (later iterations may part:
    the sums' rounding differs, and on Wood Newton-CG's finite differences amplify it into
    another path), and a whole run reaches Rosenbrock's minimum."""
    options = TIGHT.get(method, dict(gtol=1e-10, ftol=1e-16))
    for p in problems()[:6]:
        got, want = (fastopt.minimize(p, p.x0, jac=True, method=method, backend=be,
                                      options=dict(options, maxiter=8))
                     for be in (backend, "numpy"))
        np.testing.assert_allclose(got.x, want.x, rtol=1e-6, atol=1e-7, err_msg=p.name)
    p = rosenbrock(10)
    r = fastopt.minimize(p, p.x0, jac=True, method=method, backend=backend, options=options)
    assert r.fun < 1e-9, r.fun


@pytest.mark.parametrize("method", [m.name for m in METHODS if m.scipy])
def test_every_solver_on_the_numba_kernels(method, monkeypatch):
    """The numba kernels inside each whole solver (at these sizes by_size picks NumPy's)."""
    pytest.importorskip("numba")
    monkeypatch.setattr(K, "numba_pays", lambda *args: True)
    assert_same_runs(method, "numba")


# -- the arrays fun gets ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["L-BFGS-B", "CG", "BFGS"])
def test_fun_may_keep_or_change_the_x_it_gets(method):
    """fun's x is a copy: fastopt reuses its memory only when nothing holds it, so a
    kept x (or a view of it) keeps its values, and a changed x changes nothing."""
    p = rosenbrock(6)
    kept, views, values = [], [], []

    def fun(x):
        kept.append(x)
        views.append(x[::2])
        values.append(x.copy())
        f, g = p(x)
        x[:] = 1e9                                   # the caller's copy, not the solver's
        return f, g
    r = fastopt.minimize(fun, p.x0, jac=True, method=method, backend="numpy")
    plain = fastopt.minimize(p, p.x0, jac=True, method=method, backend="numpy")
    assert r.nit == plain.nit and r.fun == plain.fun
    assert len({id(x) for x in kept}) == len(kept)   # a new array each call while kept
    for x, v in zip(kept, values):
        assert (x == 1e9).all() and not (v == 1e9).any()


# -- more of SciPy's conventions (found by running SciPy's own tests: .ci/scipy-suite) -----
def himmelblau(p):
    x, y = p
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2, np.array(
        [4 * x ** 3 + 4 * x * y - 42 * x + 2 * y ** 2 - 14,
         2 * x ** 2 + 4 * x * y + 4 * y ** 3 - 26 * y - 22])


def test_newton_cg_leaves_a_concave_start():
    """From (-0.27, -0.9) the Hessian is negative definite and the first direction's slope
    steepens: the search must extrapolate far, not creep (it crept by 1% a trial and
    ended with precision loss at x0)."""
    hess = lambda p: np.array([[12 * p[0] ** 2 + 4 * p[1] - 42, 4 * p[0] + 4 * p[1]],  # noqa
                               [4 * p[0] + 4 * p[1], 4 * p[0] + 12 * p[1] ** 2 - 26]])
    r = fastopt.minimize(himmelblau, np.array([-0.27, -0.9]), jac=True, hess=hess,
                         method="Newton-CG", tol=1e-6)
    assert r.success, r.message
    np.testing.assert_allclose(r.x, [3.0, 2.0], rtol=1e-4)


@pytest.mark.parametrize("hess", ["2-point", "3-point", "cs"])
def test_newton_cg_takes_scipys_finite_difference_names(hess, so):
    r = fastopt.minimize(so.rosen, np.array([-1.2, 1.0]), jac=so.rosen_der, hess=hess,
                         method="Newton-CG", tol=1e-8)
    assert r.success and r.nhev == 0
    np.testing.assert_allclose(r.x, [1.0, 1.0], rtol=1e-4)


def test_newton_cg_takes_a_hessian_update_strategy(so):
    strategy = so.BFGS()
    r = fastopt.minimize(so.rosen, np.array([-1.2, 1.0]), jac=so.rosen_der, hess=strategy,
                         method="Newton-CG", tol=1e-8)
    assert r.success and strategy.n == 2        # initialised and updated by the run
    np.testing.assert_allclose(r.x, [1.0, 1.0], rtol=1e-3)


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_disp_warns_an_unsuccessful_run_as_scipy_does(method, so, capsys):
    with pytest.warns(so.OptimizeWarning, match="Maximum number"):
        fastopt.minimize(so.rosen, np.zeros(2), jac=so.rosen_der, method=method,
                         options=dict(disp=True, maxiter=10))
    assert "Maximum number" in capsys.readouterr().out


@pytest.mark.parametrize("method", SCIPY_METHODS)
def test_a_negative_maxiter_stops_at_once(method, so):
    r = fastopt.minimize(so.rosen, np.zeros(2), jac=so.rosen_der, method=method,
                         options=dict(maxiter=-1))
    assert r.status == 1 and r.nit == 0


def test_a_vector_f_is_scipys_value_error():
    with pytest.raises(ValueError, match="must return a scalar value"):
        fastopt.minimize(lambda x: x, np.array([1.0, 1.0]), method="BFGS")


# -- found by a hostile review -----------------------------------------------------------------
def test_the_search_reaches_far_with_a_slightly_wrong_gradient():
    """f = (t - 1)^2 / 2 with a slope 10% low: the secant step reaches t = 1 where the
    cubic's minimiser crept by 1.1x a trial and used up the 20 evaluations."""
    from fastopt.solvers.linesearch import strong_wolfe

    t, f, g, evals, ok = strong_wolfe(lambda t: (0.5 * (t - 1) ** 2, 0.9 * (t - 1)), 0.5, -0.9,
                                      0.01, c2=0.1)
    assert ok and evals <= 8 and abs(t - 1) < 0.1, (t, evals)


@pytest.mark.parametrize("jac", [None, "scaled"])
def test_cg_with_inexact_gradients(jac, so):
    grad = (lambda x: 0.9 * so.rosen_der(x)) if jac == "scaled" else None
    r = fastopt.minimize(so.rosen, np.array([-1.2, 1.0, 0.3]), method="CG", jac=grad)
    assert r.success and r.fun < 1e-8, (r.message, r.fun, r.nfev)


def test_newton_on_a_singular_hessian_damps_instead_of_failing():
    """2 (x0 + x1 - 1)^2 has the Hessian 2 [[1, 1], [1, 1]]: Cholesky passes on a pivot of
    rounding size and the solve is singular; damping takes over."""
    r = fastopt.minimize(lambda v: (v[0] + v[1] - 1) ** 2, np.array([3.0, 4.0]), method="Newton",
                         jac=lambda v: 2 * (v[0] + v[1] - 1) * np.ones(2),
                         hess=lambda v: 2 * np.ones((2, 2)))
    assert r.success and r.fun < 1e-10


def test_newton_refuses_a_non_finite_hessian_before_evaluating_at_nan():
    seen = []

    def fun(v):
        seen.append(v.copy())
        return float(v @ v)
    with pytest.raises(FloatingPointError, match=r"hess\(x\) is not finite"):
        fastopt.minimize(fun, np.array([3.0, 4.0]), method="Newton", jac=lambda v: 2 * v,
                         hess=lambda v: np.full((2, 2), np.nan))
    assert all(np.isfinite(x).all() for x in seen)


def test_return_all_none_is_false_as_in_scipy(so):
    r = fastopt.minimize(so.rosen, np.zeros(2), jac=so.rosen_der, method="BFGS",
                         options=dict(return_all=None))
    assert r.success and "allvecs" not in r


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_trial_point_and_funs_copy_in_one_pass(dtype):
    """step_copy (the solver's trial point and fun's copy of it, one pass): numba's equal
    to the reference, bit for bit."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(4)
    x, d = (rng.standard_normal(1001).astype(dtype) for _ in range(2))
    outs = []
    for ops in (K.HostOps(1001, dtype, compiled=False),
                K.HostOps(1001, dtype, compiled=True, by_size=False)):
        out, copy = np.empty_like(x), np.empty_like(x)
        ops.step_copy(out, copy, x, 0.37, d)
        outs.append((out, copy))
    (a, b), (c, e) = outs
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(c, e)
    np.testing.assert_array_equal(a, x + dtype(0.37) * d)
