"""Adafactor, the whole-param rule: its state of m + n numbers per matrix, every backend on
params of every shape against the NumPy reference bit for bit, and torch.optim.Adafactor
through fastopt.torch (float32, state dicts, the layouts it refuses)."""
import numpy as np
import pytest
from cuda_twin import Twin, compiler, on_twin

import fastopt

SHAPES = [(6, 5), (3, 4, 7), (2, 1, 3, 3), (9,), (), (0,), (2, 0, 3), (1, 1), (130, 3)]
BIG = [(700, 600), (3, 200, 300),       # params whose numba loops run on the threads,
       (100_000,), (9000, 8)]           # a vector and rows in several TOTAL_CHUNKs


def grads_for(rng, shapes, dtype, step):
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if step == 3:                        # non-finite values go where the reference's go
        gs[0].flat[:3] = [np.nan, np.inf, -np.inf]
    return gs


def test_state_is_m_plus_n_numbers_per_matrix():
    params = [np.zeros((300, 200), np.float32), np.zeros((4, 30, 20), np.float32),
              np.zeros(50, np.float32)]
    opt = fastopt.Adafactor(params)
    st = opt.state
    assert {k: v.shape for k, v in st[0].items()} == {"row_var": (300, 1), "col_var": (1, 200)}
    assert {k: v.shape for k, v in st[1].items()} == {"row_var": (4, 30, 1),
                                                      "col_var": (4, 1, 20)}
    assert {k: v.shape for k, v in st[2].items()} == {"variance": (50,)}
    kept = sum(buf.size for b in opt._groups[0].buckets for buf in b.state.values())
    assert kept == (300 + 200) + 4 * (30 + 20) + 50


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shapes", [SHAPES, BIG], ids=["small", "threads"])
def test_numba_matches_reference_on_every_shape(shapes, dtype):
    if "numba" not in fastopt.available_backends():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, fast = [p.copy() for p in p0], [p.copy() for p in p0]
    hp = dict(weight_decay=0.1, maximize=True)
    opt_ref = fastopt.Adafactor(ref, backend="numpy", **hp)
    opt_fast = fastopt.Adafactor(fast, backend="numba", **hp)
    with np.errstate(all="ignore"):
        for step in range(6):
            gs = grads_for(rng, shapes, dtype, step)
            opt_ref.step(gs)
            opt_fast.step(gs)
    assert any(not np.array_equal(a, b) for a, b in zip(ref, p0) if a.size)
    for a, b, st_a, st_b in zip(ref, fast, opt_ref.state, opt_fast.state):
        np.testing.assert_array_equal(b, a)
        assert st_a.keys() == st_b.keys()
        for k in st_a:
            np.testing.assert_array_equal(st_b[k], st_a[k], err_msg=k)


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cuda_kernels_match_reference_on_every_shape(dtype, tmp_path):
    rng = np.random.default_rng(1)
    shapes = SHAPES + [(9000,), (2, 70, 40),       # several blocks a launch,
                       (8500, 2)]                  # and rows in three TOTAL_CHUNKs
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, gpu = [p.copy() for p in p0], [p.copy() for p in p0]
    opt_ref = fastopt.Adafactor(ref, backend="numpy", eps=(1e-30, 1e-3), d=1.5)
    opt_gpu = on_twin(fastopt.Adafactor(gpu, backend="numpy", eps=(1e-30, 1e-3), d=1.5),
                      Twin([], tmp_path))
    with np.errstate(all="ignore"):
        for step in range(6):
            gs = grads_for(rng, shapes, dtype, step)
            opt_ref.step(gs)
            opt_gpu.step(gs)
    for a, b, st_a, st_b in zip(ref, gpu, opt_ref.state, opt_gpu.state):
        np.testing.assert_array_equal(b, a)
        for k in st_a:
            np.testing.assert_array_equal(st_b[k], st_a[k], err_msg=k)


def test_a_loaded_state_of_another_shape_is_refused_by_name():
    opt = fastopt.Adafactor([np.ones((4, 3))], backend="numpy")
    opt.step([np.ones((4, 3))])
    sd = opt.state_dict()
    sd["0.row_var"] = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"0\.row_var has shape \(4, 3\).*\(4, 1\)"):
        opt.load_state_dict(sd)
    assert opt.state[0]["row_var"].shape == (4, 1)


# -- through fastopt.torch ------------------------------------------------------------------
def torch_pair(shapes, dtype, **hp):
    torch = pytest.importorskip("torch")
    ft = pytest.importorskip("fastopt.torch")
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(s, dtype=dtype)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    return torch, ours, theirs, ft.Adafactor(ours, **hp), torch.optim.Adafactor(theirs, **hp)


def step_both(torch, ours, theirs, opts, steps=8):
    for _ in range(steps):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape, dtype=a.dtype)
            b.grad = a.grad.clone()
        for opt in opts:
            opt.step()


def test_float32_tracks_torch():
    """float32: torch adds with fused multiply-adds and reduces in float32; fastopt's
    sums are float64: a few float32 roundings apart after eight steps."""
    torch, ours, theirs, *opts = torch_pair([(40, 30), (3, 5, 6), (7,)], None,
                                            weight_decay=0.01)
    step_both(torch, ours, theirs, opts)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_state_dict_moves_between_torch_and_fastopt():
    torch, ours, theirs, mine, reference = torch_pair([(6, 4), (2, 3, 4), (5,)], None)
    step_both(torch, ours, theirs, (mine, reference), steps=3)
    saved = reference.state_dict()
    assert {k: tuple(v.shape) for k, v in mine.state[ours[1]].items() if k != "step"} == \
        {k: tuple(v.shape) for k, v in saved["state"][1].items() if k != "step"}
    mine.load_state_dict(saved)                     # torch's state into fastopt's
    step_both(torch, ours, theirs, (mine, reference), steps=3)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    reference.load_state_dict(mine.state_dict())    # and back
    step_both(torch, ours, theirs, (mine, reference), steps=2)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_param_not_in_c_order_is_refused_by_name():
    torch = pytest.importorskip("torch")
    ft = pytest.importorskip("fastopt.torch")
    weight = torch.nn.Parameter(torch.randn(4, 3, 5, 5).to(memory_format=torch.channels_last))
    with pytest.raises(NotImplementedError, match=r"param_groups\[0\]\['params'\]\[0\].*C "
                                                  "order"):
        ft.Adafactor([weight])
