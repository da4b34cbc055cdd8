"""The GPU kernel bodies, compiled for the CPU, against the NumPy reference (bit for bit)."""
import numpy as np
import pytest
from cases import CASES, STORED_NARROW, parametrize_cases
from conftest import assert_bits_equal, assert_same_from_signed_zeros, make_optimizer
from cuda_twin import Twin, compiler, on_twin

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler")

STEPS = 60


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    variants = []
    for rule, hp in CASES:
        opt = make_optimizer(rule, np.zeros(1), hp)
        variants.append((opt.rule, opt._groups[0].hp))
    return Twin(variants, tmp_path_factory.mktemp("twin"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_cuda_body_matches_reference(rule, hp, dtype, twin):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(257).astype(dtype)
    ref, gpu_math = p0.copy(), p0.copy()
    opt_ref = make_optimizer(rule, ref, hp)
    opt_twin = on_twin(make_optimizer(rule, gpu_math, hp), twin)
    with np.errstate(all="ignore"):
        for step in range(STEPS):
            g = rng.standard_normal(257).astype(dtype)
            if step == STEPS - 3:                       # non-finite values propagate alike
                g[:4] = [np.nan, np.inf, -np.inf, 0.0]
            opt_ref.step(g)
            opt_twin.step(g)
    assert not np.array_equal(gpu_math, p0)
    assert_bits_equal(gpu_math, ref)
    for st_ref, st_twin in zip(opt_ref.state, opt_twin.state):
        for k in st_ref:
            assert_bits_equal(st_twin[k], st_ref[k], err_msg=k)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_cuda_body_keeps_the_sign_of_zero_like_reference(rule, hp, dtype, twin):
    assert_same_from_signed_zeros(
        rule, hp, dtype, lambda p: on_twin(make_optimizer(rule, p, hp), twin))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@parametrize_cases()
def test_cuda_bucket_kernel_over_many_arrays_matches_reference(rule, hp, dtype, twin):
    """One launch over arrays of many sizes (empty, 0-d, one chunk, several chunks and a
    part), in two groups (the second with its own lr): the tables and the chunking."""
    from fastopt.kernels._gpu import CHUNK

    rng = np.random.default_rng(1)
    shapes = [(3, 5), (0,), (), (CHUNK,), (2 * CHUNK + 17,), (1,), (7, 0, 2), (129,)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, gpu_math = [p.copy() for p in p0], [p.copy() for p in p0]

    def groups(ps):
        return [{"params": ps[:5]}, {"params": ps[5:], "lr": 0.003}]

    opt_ref = make_optimizer(rule, groups(ref), hp)
    opt_twin = on_twin(make_optimizer(rule, groups(gpu_math), hp), twin)
    with np.errstate(all="ignore"):
        for _ in range(4):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            opt_ref.step(grads)
            opt_twin.step(grads)
    for a, b in zip(gpu_math, ref):
        assert_bits_equal(a, b)
    assert not np.array_equal(gpu_math[4], p0[4])
    for st_ref, st_twin in zip(opt_ref.state, opt_twin.state):
        for k in st_ref:
            assert_bits_equal(st_twin[k], st_ref[k], err_msg=k)


def test_a_typo_in_a_body_fails_to_build(tmp_path):
    """The twin really compiles the body: a broken body is a build error, not a pass."""
    import dataclasses
    import subprocess

    opt = make_optimizer("Adam", np.zeros(1), {})
    broken = dataclasses.replace(opt.rule, cuda_body=opt.rule.cuda_body.replace("mi /", "mj /"))
    with pytest.raises(subprocess.CalledProcessError):
        Twin([(broken, opt._groups[0].hp)], tmp_path)


# -- the L-BFGS CUDA kernels ---------------------------------------------------------------
@pytest.fixture(scope="module")
def lbfgs_twin(tmp_path_factory):
    from cuda_twin import LbfgsTwin

    return LbfgsTwin(tmp_path_factory.mktemp("lbfgs_twin"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [0, 1, 4, 7])
def test_lbfgs_cuda_kernels_match_reference(k, dtype, lbfgs_twin):
    from test_lbfgs import assert_ops_match_reference

    assert_ops_match_reference(lbfgs_twin, k, dtype, n=333, m=7)


# -- the CG, Newton-CG and BFGS CUDA kernels -------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_method_cuda_kernels_match_reference(dtype, lbfgs_twin):
    from test_methods import assert_method_kernels_match_reference

    assert_method_kernels_match_reference(lbfgs_twin, dtype)


@pytest.mark.parametrize("method", ["L-BFGS-B", "CG", "BFGS", "Newton-CG"])
def test_every_method_runs_on_the_cuda_kernels(method, lbfgs_twin, monkeypatch):
    """Each solver with the CUDA kernels (on the CPU) in place of the host ones (the dot
    products stay the host's: cupy's are cuBLAS's), against the NumPy reference
    (test_methods.assert_same_runs)."""
    from test_methods import assert_same_runs

    from fastopt.kernels import lbfgs as K

    class TwinOps(K.HostOps):
        def __init__(self, n, dtype, compiled):
            super().__init__(n, dtype, compiled=False)
            self.call, self.step = lbfgs_twin.call, lbfgs_twin.step
            self.two_loop, self.update_pair = lbfgs_twin.two_loop, lbfgs_twin.update_pair

    host_ops = K.HostOps

    def ops(n, dtype, compiled, method, by_size=True):   # "numba" runs the twin
        return TwinOps(n, dtype, compiled) if compiled else host_ops(n, dtype, compiled)

    pytest.importorskip("numba")
    monkeypatch.setattr(K, "HostOps", ops)
    assert_same_runs(method, "numba")


# -- 16-bit params and 8-bit or bfloat16 state (kernels/_gpu_precision.py) -----------------
STORAGE_MODES = {
    "bfloat16, stochastic": ("bfloat16", dict(stochastic_rounding=True, seed=3)),
    "float16, master": (np.float16, dict(master_weights=True)),
    "bfloat16, bfloat16 state": ("bfloat16", dict(state_dtype="bfloat16")),
    "float32, int8 state": (np.float32, dict(state_dtype="int8", min_8bit_size=0)),
    "bfloat16, int8 state, stochastic": ("bfloat16", dict(state_dtype="int8", min_8bit_size=0,
                                                          stochastic_rounding=True, seed=5)),
}
# each mode on every other rule's first case (a kernel is compiled on its own, ~1 s)
FIRST = list({rule: (rule, hp) for rule, hp in reversed(CASES)
              if rule in STORED_NARROW}.values())
STORAGE_CASES = [(mode, rule, hp) for m, mode in enumerate(STORAGE_MODES)
                 for r, (rule, hp) in enumerate(FIRST) if (r + m) % 2 == 0]


@pytest.mark.parametrize("mode,rule,hp", STORAGE_CASES,
                         ids=[f"{m}-{r}" for m, r, _ in STORAGE_CASES])
def test_cuda_storage_kernels_match_reference(mode, rule, hp, twin):
    """The GPU kernels for params and state stored narrower than float32 (one thread a
    block of 256 for 8-bit state), on arrays that end mid-block, over several chunks, with
    a NaN and infinities in one step's grads: the reference's bits, params and state."""
    from fastopt.kernels._gpu import CHUNK

    dtype, options = STORAGE_MODES[mode]
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    rng = np.random.default_rng(2)
    shapes = [(300,), (CHUNK + 700,), (1,), (0,), (7, 3)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, gpu_math = [p.copy() for p in p0], [p.copy() for p in p0]
    opt_ref = make_optimizer(rule, ref, hp, **options)
    opt_twin = on_twin(make_optimizer(rule, gpu_math, hp, **options), twin)
    with np.errstate(all="ignore"):
        for step in range(5):
            grads = [(rng.standard_normal(s) * 0.1).astype(dtype) for s in shapes]
            if step == 3:
                grads[0][:4] = [np.nan, np.inf, -np.inf, 0.0]
            opt_ref.step(grads)
            opt_twin.step(grads)
    assert not np.array_equal(gpu_math[1].view(np.uint8), p0[1].view(np.uint8))
    for a, b in zip(gpu_math, ref):                 # (a NaN's sign may differ: IEEE leaves
        assert_bits_equal(a.astype(np.float32), b.astype(np.float32))   # it open)
    mine, theirs = opt_twin.state_dict(), opt_ref.state_dict()
    for key, value in theirs.items():
        if isinstance(value, np.ndarray) and value.dtype == np.uint8:     # 8-bit codes
            np.testing.assert_array_equal(mine[key], value, err_msg=key)
        elif isinstance(value, np.ndarray):
            assert_bits_equal(mine[key].astype(np.float32), value.astype(np.float32),
                              err_msg=key)


# -- the sum of squares of max_grad_norm (kernels/_reduce.py) -------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_cuda_sum_of_squares_is_the_reference_to_the_bit(dtype, twin):
    from cuda_twin import TwinBackend
    from test_clipping import SIZES, grads_of

    from fastopt.kernels._reduce import sum_of_squares

    grads = grads_of(SIZES, dtype)
    summed = TwinBackend(twin).bucket_sumsq(grads)
    addresses = np.array([g.ctypes.data for g in grads], np.uint64)
    assert summed(addresses, 0.25) == sum_of_squares(grads, 0.25)


@pytest.mark.parametrize("rule,hp", [("AdamW", {"lr": 1e-2}), ("SGD", {"lr": 0.1,
                                                                      "momentum": 0.9})])
def test_cuda_clipped_step_matches_reference(rule, hp, twin):
    rng = np.random.default_rng(2)
    p0 = [rng.standard_normal(n).astype(np.float32) for n in (5000, 7, 0)]
    ref, gpu_math = [p.copy() for p in p0], [p.copy() for p in p0]
    opt_ref = make_optimizer(rule, ref, hp, max_grad_norm=0.3)
    opt_twin = on_twin(make_optimizer(rule, gpu_math, hp, max_grad_norm=0.3), twin)
    for _ in range(5):
        grads = [rng.standard_normal(p.size).astype(np.float32) for p in p0]
        opt_ref.step(grads)
        opt_twin.step(grads)
        assert opt_twin.grad_norm == opt_ref.grad_norm > 0.3
    for a, b in zip(gpu_math, ref):
        assert_bits_equal(a, b)
