"""The cupy backend on a real GPU: the parity table, device arrays, device errors.

Marked `gpu`: skipped where cupy or a CUDA device is missing (CI); there the CPU twin of
the kernel bodies (test_cuda_twin.py) proves the same math.
"""
import numpy as np
import pytest
from cases import parametrize_cases
from conftest import assert_bits_equal, make_optimizer

import fastopt

pytestmark = pytest.mark.gpu
STEPS = 60


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


@pytest.mark.parametrize("n", [1000, 1 << 20])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_cupy_matches_reference_bit_for_bit(rule, hp, dtype, n, cp):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n).astype(dtype)
    ref, dev = p0.copy(), cp.asarray(p0)
    opt_ref = make_optimizer(rule, ref, hp, "numpy")
    opt_gpu = make_optimizer(rule, dev, hp, "cupy")
    with np.errstate(all="ignore"):
        for step in range(STEPS):
            g = rng.standard_normal(n).astype(dtype)
            if step == STEPS - 3:
                g[:4] = [np.nan, np.inf, -np.inf, 0.0]
            opt_ref.step(g)
            opt_gpu.step(cp.asarray(g))
    out = cp.asnumpy(dev)
    assert not np.array_equal(out, p0)
    assert_bits_equal(out, ref)
    for st_ref, st_gpu in zip(opt_ref.state, opt_gpu.state):
        for k in st_ref:
            assert_bits_equal(cp.asnumpy(st_gpu[k]), st_ref[k], err_msg=k)


GPU_STORAGE = {"float16": (np.float16, {}), "float16, master": (np.float16,
                                                               dict(master_weights=True)),
               "float32, int8 state": (np.float32, dict(state_dtype="int8", min_8bit_size=0)),
               "float16, int8 state": (np.float16, dict(state_dtype="int8", min_8bit_size=200))}


@pytest.mark.parametrize("mode", list(GPU_STORAGE))
@parametrize_cases()
def test_cupy_16bit_and_8bit_match_reference_bit_for_bit(rule, hp, mode, cp):
    """kernels/_gpu_precision.py on the device: float16 params (and master copies) and
    8-bit state, over a bucket of several chunks and a short last block."""
    dtype, options = GPU_STORAGE[mode]
    rng = np.random.default_rng(0)
    shapes = [(70_001,), (300,), (1,)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, dev = [p.copy() for p in p0], [cp.asarray(p) for p in p0]
    opt_ref = make_optimizer(rule, ref, hp, "numpy", **options)
    opt_gpu = make_optimizer(rule, dev, hp, "cupy", **options)
    with np.errstate(all="ignore"):
        for _ in range(8):
            grads = [(rng.standard_normal(s) * 0.1).astype(dtype) for s in shapes]
            opt_ref.step(grads)
            opt_gpu.step([cp.asarray(g) for g in grads])
    for a, b in zip(dev, ref):
        np.testing.assert_array_equal(cp.asnumpy(a).view(np.uint8), b.view(np.uint8))
    mine, theirs = opt_gpu.state_dict(), opt_ref.state_dict()
    for key, value in theirs.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(mine[key].view(np.uint8), value.view(np.uint8),
                                          err_msg=key)


def test_cupy_names_bfloat16_as_unsupported(cp):
    with pytest.raises(NotImplementedError, match="no bfloat16"):
        fastopt.AdamW(cp.zeros(10, cp.float32), backend="cupy", state_dtype="bfloat16")


def test_auto_picks_cupy_for_device_arrays(cp):
    assert fastopt.Adam(cp.zeros(4)).backend == "cupy"
    assert "cupy" in fastopt.available_backends()


def test_state_dict_crosses_devices(cp):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(50) for _ in range(8)]
    dev, host = cp.ones(50), np.ones(50)
    gpu = fastopt.Nadam(dev, backend="cupy")
    cpu = fastopt.Nadam(host, backend="numba" if "numba" in fastopt.available_backends()
                        else "numpy")
    for g in grads[:4]:
        gpu.step(cp.asarray(g))
    cpu.load_state_dict(gpu.state_dict())
    host[:] = cp.asnumpy(dev)
    for g in grads[4:]:
        gpu.step(cp.asarray(g))
        cpu.step(g)
    np.testing.assert_array_equal(cp.asnumpy(dev), host)
    gpu.load_state_dict(cpu.state_dict())
    np.testing.assert_array_equal(cp.asnumpy(gpu.state[0]["m"]), cpu.state[0]["m"])


@pytest.mark.parametrize("grads,exc,match", [
    ("host", TypeError, "a host array"),
    ("f32", TypeError, "has dtype float32"),
    ("shape", ValueError, "has shape"),
])
def test_device_input_errors_change_nothing(grads, exc, match, cp):
    p = cp.linspace(0, 1, 6)
    opt = fastopt.Adam(p, backend="cupy")
    opt.step(cp.ones(6))
    before, sd = p.copy(), opt.state_dict()
    bad = {"host": np.ones(6), "f32": cp.ones(6, dtype=cp.float32), "shape": cp.ones(5)}[grads]
    with pytest.raises(exc, match=match):
        opt.step(bad)
    cp.testing.assert_array_equal(p, before)
    np.testing.assert_array_equal(opt.state_dict()["0.m"], sd["0.m"])


def test_host_params_are_refused_by_the_cupy_backend():
    with pytest.raises(TypeError, match="a host array"):
        fastopt.SGD(np.ones(3), backend="cupy")


def test_grads_on_another_device(cp):
    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("one GPU: no second device to put grads on")
    p = cp.ones(4)
    opt = fastopt.SGD(p, lr=0.1, backend="cupy")
    with cp.cuda.Device(1):
        g = cp.ones(4)
    with pytest.raises(ValueError, match="another device"):
        opt.step(g)


def test_torch_cuda_tensor_is_updated_in_place(cp):
    torch = pytest.importorskip("torch")
    t = torch.ones(1000, device="cuda", dtype=torch.float32)
    ptr = t.data_ptr()
    opt = fastopt.Adam(t, lr=0.1)
    assert opt.backend == "cupy"
    for _ in range(3):
        opt.step(torch.full_like(t, 0.5))
    torch.cuda.synchronize()
    assert t.data_ptr() == ptr
    ref = np.ones(1000, np.float32)
    ref_opt = fastopt.Adam(ref, lr=0.1, backend="numpy")
    for _ in range(3):
        ref_opt.step(np.full(1000, 0.5, np.float32))
    np.testing.assert_array_equal(t.cpu().numpy(), ref)


# -- L-BFGS on the GPU -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [0, 1, 10])
def test_lbfgs_cuda_kernels_match_reference(k, dtype, cp):
    from test_lbfgs import assert_ops_match_reference

    from fastopt.kernels import lbfgs as K

    n = 100_003
    assert_ops_match_reference(K.CupyOps(n, dtype), k, dtype, n, xp=cp)


def test_minimize_on_the_gpu_reaches_the_known_minima(cp):
    from mgh_problems import problems

    for p in problems():
        def fun(x):
            f, g = p(cp.asnumpy(x))
            return f, cp.asarray(g)
        r = fastopt.minimize(fun, cp.asarray(p.x0), jac=True,
                             options=dict(gtol=1e-10, ftol=1e-16, maxiter=20000, maxfun=40000))
        assert r.backend == "cupy" and isinstance(r.x, cp.ndarray)
        assert r.success and abs(r.fun - p.f_min) <= p.f_tol, (p.name, r.fun, r.message)


@pytest.mark.parametrize("jac", [None, "3-point", "cs"])
def test_minimize_by_finite_differences_on_the_gpu(cp, jac):
    """fun gets CuPy arrays at every finite-difference point; the result matches the host's."""
    seen = set()

    def fun(x):
        seen.add(type(x))
        return cp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).item()
    x0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])
    r = fastopt.minimize(fun, cp.asarray(x0), jac=jac)
    host = fastopt.minimize(lambda x: fun(cp.asarray(x)), x0, jac=jac, backend="numpy")
    assert seen == {cp.ndarray} and r.backend == "cupy" and isinstance(r.x, cp.ndarray)
    assert r.success and r.nfev == host.nfev
    np.testing.assert_allclose(cp.asnumpy(r.x), host.x, rtol=1e-10)
    np.testing.assert_allclose(r.hess_inv.todense(), host.hess_inv.todense(), rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_method_cuda_kernels_match_reference(dtype, cp):
    from test_methods import assert_method_kernels_match_reference

    from fastopt.kernels import lbfgs as K

    assert_method_kernels_match_reference(K.CupyOps(257, dtype), dtype, xp=cp)


@pytest.mark.parametrize("method", ["L-BFGS-B", "CG", "BFGS", "Newton-CG"])
def test_every_method_on_the_gpu_matches_the_host(method, cp):
    """CuPy x in, CuPy x out; the first eight iterations reach the NumPy backend's point
    (test_methods.assert_same_runs), a whole run Rosenbrock's minimum."""
    from mgh_problems import problems, rosenbrock
    from test_methods import TIGHT

    def on_gpu(p):
        def fun(x):
            f, g = p(cp.asnumpy(x))
            return f, cp.asarray(g)
        return fun
    options = TIGHT.get(method, dict(gtol=1e-10, ftol=1e-16))
    for p in problems()[:6]:
        r = fastopt.minimize(on_gpu(p), cp.asarray(p.x0), jac=True, method=method,
                             options=dict(options, maxiter=8))
        host = fastopt.minimize(p, p.x0, jac=True, method=method, backend="numpy",
                                options=dict(options, maxiter=8))
        assert r.backend == "cupy" and isinstance(r.x, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(r.x), host.x, rtol=1e-6, atol=1e-7,
                                   err_msg=p.name)
    p = rosenbrock(10)
    r = fastopt.minimize(on_gpu(p), cp.asarray(p.x0), jac=True, method=method, options=options)
    assert r.fun < 1e-9, r.fun


def test_approx_fprime_and_check_grad_on_cupy_arrays(cp):
    """CuPy in, CuPy out; f sees CuPy points; SciPy's numbers (those of NumPy arrays)."""
    seen = set()

    def f(x):
        seen.add(type(x))
        return (x ** 3).sum().item()

    x = np.array([0.5, -1.0, 2.0])
    g = fastopt.approx_fprime(cp.asarray(x), f)
    assert isinstance(g, cp.ndarray) and seen == {cp.ndarray}
    np.testing.assert_allclose(cp.asnumpy(g), fastopt.approx_fprime(x, lambda v: float(
        (v ** 3).sum())), rtol=1e-12)
    err = fastopt.check_grad(f, lambda v: 3 * v ** 2, cp.asarray(x))
    assert err < 1e-5


def test_damped_newton_on_the_gpu(cp):
    from test_methods import double_well, double_well_hess

    def fun(x):
        f, g = double_well(cp.asnumpy(x))
        return f, cp.asarray(g)
    r = fastopt.minimize(fun, cp.asarray([0.1, 0.0]), jac=True, method="Newton",
                         hess=lambda x: cp.asarray(double_well_hess(cp.asnumpy(x))),
                         options=dict(gtol=1e-10))
    assert r.success and isinstance(r.x, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(r.x), [1.0, 0.0], atol=1e-7)


def test_lbfgs_optimizer_on_the_gpu(cp):
    from fastopt.problems import make_logistic

    fun = make_logistic(n_samples=500, n_features=20)
    best = fastopt.minimize(fun, np.zeros(20), jac=True, options=dict(gtol=1e-10, ftol=1e-16))
    w = cp.zeros(20)
    opt = fastopt.LBFGS(w, max_iter=100)
    assert opt.backend == "cupy"
    opt.step(lambda: (lambda f_g: (f_g[0], cp.asarray(f_g[1])))(fun(cp.asnumpy(w))))
    np.testing.assert_allclose(cp.asnumpy(w), best.x, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_cupy_bucket_of_many_arrays_in_groups_matches_reference(rule, hp, dtype, cp):
    """One launch per bucket over arrays of many sizes, in two groups with their own lr,
    and a mix of dtypes: bit for bit the reference."""
    rng = np.random.default_rng(2)
    shapes = [(3, 5), (0,), (), (4096,), (2 * 4096 + 17,), (1,), (129,)]
    p0 = [rng.standard_normal(s).astype(dtype if i % 3 else np.float32)
          for i, s in enumerate(shapes)]
    ref, dev = [p.copy() for p in p0], [cp.asarray(p) for p in p0]
    groups = lambda ps: [{"params": ps[:4]}, {"params": ps[4:], "lr": 0.003}]  # noqa: E731
    opt_ref = make_optimizer(rule, groups(ref), hp, "numpy")
    opt_gpu = make_optimizer(rule, groups(dev), hp, "cupy")
    with np.errstate(all="ignore"):
        for _ in range(5):
            grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in p0]
            opt_ref.step(grads)
            opt_gpu.step([cp.asarray(g) for g in grads])
    for a, b in zip(dev, ref):
        assert_bits_equal(cp.asnumpy(a), b)


# -- fastopt.torch on CUDA tensors --------------------------------------------------------------
@pytest.mark.parametrize("rule", ["Adam", "SGD", "RMSprop", "Nadam"])
def test_torch_adapter_on_cuda_matches_torch_optim(cp, rule):
    """CUDA params: the cupy backend through DLPack views, on torch's current stream (a
    side stream here), against torch.optim on the same device; float64."""
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft
    from fastopt.kernels import RULES

    name = RULES[rule].torch_class
    hp = dict(lr=0.01, momentum=0.9) if rule in ("SGD", "RMSprop") else dict(lr=0.01)

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                   torch.nn.Linear(16, 3)).double().cuda()
    a, b = model(), model()
    oa, ob = getattr(torch.optim, name)(a.parameters(), **hp), getattr(ft, name)(b.parameters(), **hp)
    assert ob._cohorts[0].core.backend == "cupy"
    x = torch.randn(64, 8, dtype=torch.float64, device="cuda")
    y = torch.randn(64, 3, dtype=torch.float64, device="cuda")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        for _ in range(30):
            for m, o in ((a, oa), (b, ob)):
                o.zero_grad()
                torch.nn.functional.mse_loss(m(x), y).backward()
                o.step()
    torch.cuda.synchronize()
    worst = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
    assert worst <= 1e-10
    state = ob.state_dict()["state"][0]
    assert state["exp_avg" if "Adam" in name else "momentum_buffer" if rule == "SGD"
                 else "square_avg"].device.type == "cuda"


def test_torch_lbfgs_on_cuda(cp):
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    w = torch.zeros(50, dtype=torch.float64, device="cuda", requires_grad=True)
    h = torch.linspace(1, 10, 50, dtype=torch.float64, device="cuda")
    opt = ft.LBFGS([w], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (h * (w - 1) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    assert (w - 1).abs().max().item() < 1e-6


# -- the whole-param rules on matrices --------------------------------------------------------
MATRICES = [(6, 5), (3, 40, 7), (700, 300), (0, 3), (129,)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cupy_adafactor_matches_reference_bit_for_bit(dtype, cp):
    """Its six launches a bucket (rows, columns, slabs, rows, params, elements)."""
    rng = np.random.default_rng(4)
    p0 = [rng.standard_normal(s).astype(dtype) for s in MATRICES]
    ref, dev = [p.copy() for p in p0], [cp.asarray(p) for p in p0]
    opt_ref = fastopt.Adafactor(ref, backend="numpy", weight_decay=0.1)
    opt_gpu = fastopt.Adafactor(dev, backend="cupy", weight_decay=0.1)
    for _ in range(6):
        grads = [rng.standard_normal(s).astype(dtype) for s in MATRICES]
        opt_ref.step(grads)
        opt_gpu.step([cp.asarray(g) for g in grads])
    for a, b, st_a, st_b in zip(dev, ref, opt_gpu.state, opt_ref.state):
        assert_bits_equal(cp.asnumpy(a), b)
        for k in st_b:
            assert_bits_equal(cp.asnumpy(st_a[k]), st_b[k], err_msg=k)


def test_cupy_muon_matches_reference_within_blas_rounding(cp):
    """cuBLAS's products round otherwise than the host BLAS: float64, within 1e-10."""
    rng = np.random.default_rng(5)
    shapes = [(6, 5), (40, 300), (257, 64)]
    p0 = [rng.standard_normal(s) for s in shapes]
    ref, dev = [p.copy() for p in p0], [cp.asarray(p) for p in p0]
    opt_ref = fastopt.Muon(ref, backend="numpy", lr=0.02)
    opt_gpu = fastopt.Muon(dev, backend="cupy", lr=0.02)
    for _ in range(5):
        grads = [rng.standard_normal(s) for s in shapes]
        opt_ref.step(grads)
        opt_gpu.step([cp.asarray(g) for g in grads])
    for a, b, s in zip(dev, ref, p0):
        assert not np.array_equal(b, s)
        np.testing.assert_allclose(cp.asnumpy(a), b, rtol=1e-10, atol=1e-12)
