"""max_grad_norm: the global norm over a step's grads (kernels/_reduce.py's order, the same
bits on every backend) and the update reading each grad times the clip coefficient."""
import copy
import math
import pickle

import numpy as np
import pytest
from cases import parametrize_cases
from conftest import assert_bits_equal, make_optimizer

import fastopt
from fastopt.kernels import _reduce as R

SIZES = [0, 1, 127, 128, 129, 4095, 4096, 4097, 3 * 4096 + 300]


def definition(grads, start=0.0):
    """The order written out one number at a time (kernels/_reduce.py's docstring)."""
    total = start
    for g in grads:
        x = [float(v) for v in np.asarray(g, np.float64).ravel()]
        for first in range(0, len(x), R.CHUNK):
            lanes = [0.0] * R.LANES
            for e, v in enumerate(x[first:first + R.CHUNK]):
                lanes[e % R.LANES] += v * v
            width = R.LANES
            while width > 1:
                width //= 2
                for j in range(width):
                    lanes[j] += lanes[j + width]
            total += lanes[0]
    return total


def grads_of(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3)).astype(dtype)
            for n in sizes]


def test_reference_is_the_written_order_and_the_norm():
    grads = grads_of(SIZES[:-1], np.float32)
    total = R.sum_of_squares(grads, 0.5)
    assert total == definition(grads, 0.5)
    exact = 0.5 + sum(math.fsum(float(v) ** 2 for v in g.astype(np.float64)) for g in grads)
    assert total == pytest.approx(exact, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, "bfloat16"])
@pytest.mark.parametrize("threads", [1, 2])
def test_numba_sum_is_the_reference_to_the_bit(dtype, threads):
    numba = pytest.importorskip("numba")
    from fastopt.kernels._precision import bfloat16, storage_kind

    dtype = bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
    grads = grads_of(SIZES + [300_000], dtype)     # 1.2 MB of float32: the parallel loop
    kind = storage_kind(dtype)
    stored = [g.view(np.uint16) for g in grads] if kind else grads
    summed = R.BucketSum(stored, stored[0].dtype, kind)
    pointers = np.array([g.ctypes.data for g in grads], np.intp)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        assert summed(pointers, 2.0) == R.sum_of_squares(grads, 2.0)
    finally:
        numba.set_num_threads(before)


def test_non_finite_grads_make_the_norm_non_finite():
    g = np.ones(5000, np.float32)
    g[17] = np.inf
    assert R.sum_of_squares([g]) == np.inf
    g[18] = np.nan
    assert np.isnan(R.sum_of_squares([g]))
    assert R.clip_coefficient(1.0, np.inf) == 0.0
    assert np.isnan(R.clip_coefficient(1.0, np.nan))
    assert R.clip_coefficient(1.0, 0.5) == 1.0
    assert R.clip_coefficient(1.0, 3.0) == 1.0 / (3.0 + 1e-6)


def prescaled_run(rule, hp, dtype, backend, max_norm, steps=4, seed=3):
    """(params clipped inside the step, params stepped by a plain NumPy optimizer on grads
    scaled beforehand by the coefficient of the norm in double precision, the norms)."""
    rng = np.random.default_rng(seed)
    sizes = [(3, 5), (0,), (4097,), (129,)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in sizes]
    clipped, plain = [p.copy() for p in p0], [p.copy() for p in p0]
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5 * hp.get("lr", 1e-2)}]
    opt = make_optimizer(rule, groups(clipped), hp, backend, max_grad_norm=max_norm)
    ref = make_optimizer(rule, groups(plain), hp)
    norms = []
    for step in range(steps):
        grads = [(rng.standard_normal(s) * 3).astype(dtype) for s in sizes]
        given = [g.copy() for g in grads]
        norm = math.sqrt(R.sum_of_squares(grads))
        coef = np.asarray(R.clip_coefficient(max_norm, norm), dtype)
        opt.step(grads)
        ref.step([g * coef for g in grads])
        for g, before in zip(grads, given):
            assert_bits_equal(g, before)        # the grads are read, never written
        assert opt.grad_norm == norm
        norms.append(norm)
    return clipped, plain, norms


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@parametrize_cases()
def test_clipped_step_is_the_step_on_scaled_grads(rule, hp, backend):
    if backend == "numba":
        pytest.importorskip("numba")
    clipped, plain, norms = prescaled_run(rule, hp, np.float32, backend, max_norm=1.0)
    assert min(norms) > 1.0                     # the clip took effect at every step
    for a, b in zip(clipped, plain):
        assert_bits_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_norm_under_the_bound_changes_nothing(backend, dtype):
    if backend == "numba":
        pytest.importorskip("numba")
    clipped, plain, norms = prescaled_run("AdamW", {"lr": 1e-2}, dtype, backend, 1e6)
    assert max(norms) < 1e6
    for a, b in zip(clipped, plain):
        assert_bits_equal(a, b)


def test_sixteen_bit_params_clip_alike_on_numba_and_numpy():
    pytest.importorskip("numba")
    from fastopt.kernels._precision import bfloat16

    rng = np.random.default_rng(5)
    p0 = [rng.standard_normal(n).astype(bfloat16()) for n in (5000, 33)]
    a, b = [p.copy() for p in p0], [p.copy() for p in p0]
    fast = fastopt.AdamW(a, lr=1e-2, backend="numba", max_grad_norm=0.5, master_weights=True)
    ref = fastopt.AdamW(b, lr=1e-2, backend="numpy", max_grad_norm=0.5, master_weights=True)
    for _ in range(3):
        grads = [rng.standard_normal(p.size).astype(bfloat16()) for p in p0]
        fast.step(grads)
        ref.step(grads)
        assert fast.grad_norm == ref.grad_norm
    for x, y in zip(a, b):
        assert_bits_equal(x.view(np.uint16), y.view(np.uint16))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_infinite_grad_gives_what_torch_gives(backend):
    """torch's clip_grad_norm_ then scales by 0: finite grads become 0, the inf NaN."""
    if backend == "numba":
        pytest.importorskip("numba")
    p, ref = np.ones(300, np.float32), np.ones(300, np.float32)
    g = np.full(300, 0.5, np.float32)
    g[7] = np.inf
    opt = fastopt.SGD(p, lr=0.1, backend=backend, max_grad_norm=1.0)
    with np.errstate(all="ignore"):
        opt.step(g)
        fastopt.SGD(ref, lr=0.1, backend="numpy").step(g * np.float32(0.0))
    assert opt.grad_norm == np.inf
    assert np.isnan(p[7]) and np.array_equal(np.delete(p, 7), np.ones(299, np.float32))
    assert_bits_equal(p, ref)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_max_grad_norm_is_checked_by_name(value):
    with pytest.raises(ValueError, match="max_grad_norm must be"):
        fastopt.Adam(np.zeros(3), max_grad_norm=value)


def test_a_bad_grad_on_a_clipped_step_changes_nothing():
    p = np.ones((4, 3))
    opt = fastopt.Adam([p, np.ones(2)], lr=0.1, max_grad_norm=1.0)
    opt.step([np.ones((4, 3)), np.ones(2)])
    before, sd = p.copy(), opt.state_dict()
    with pytest.raises(ValueError, match=r"grads\[1\] has shape"):
        opt.step([np.ones((4, 3)), np.ones(3)])
    assert_bits_equal(p, before)
    after = opt.state_dict()
    assert after["step"] == sd["step"] == 1
    for k in sd:
        assert_bits_equal(after[k], sd[k]) if isinstance(sd[k], np.ndarray) else None


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_keep_clipping(how):
    p = np.ones(10)
    opt = fastopt.SGD(p, lr=0.1, max_grad_norm=0.5)
    other = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    assert other.max_grad_norm == 0.5
    other.step(np.full(10, 2.0))
    assert other.grad_norm == pytest.approx(math.sqrt(40.0))
    assert np.allclose(other.params, 1 - 0.1 * 2.0 * 0.5 / (math.sqrt(40.0) + 1e-6))


def test_torch_fast_path_clips():
    """fastopt.torch steps the numba backend by the grads' addresses: clipped there too."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("numba")
    from fastopt.torch import AdamW

    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(n)) for n in (300, 5000)]
    b = [torch.nn.Parameter(x.detach().clone()) for x in a]
    ours = AdamW(a, lr=1e-2, max_grad_norm=0.1)
    theirs = torch.optim.AdamW(b, lr=1e-2)
    for _ in range(3):
        grads = [torch.randn(x.shape) for x in a]
        for x, y, g in zip(a, b, grads):
            x.grad, y.grad = g.clone(), g.clone()
        norm = torch.nn.utils.clip_grad_norm_(b, 0.1)
        ours.step()
        theirs.step()
        assert ours.grad_norm == pytest.approx(float(norm), rel=1e-6)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
