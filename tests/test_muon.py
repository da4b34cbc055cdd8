"""Muon, the host-driven whole-param rule: every backend against the NumPy reference bit for
bit on matrices of every aspect, the iteration against a float64 one written from the
formula, torch.optim.Muon through fastopt.torch (bfloat16's bound; state dicts), and the
params it refuses."""
import math

import numpy as np
import pytest
from cases import MATRIX_CASES
from cuda_twin import Twin, compiler, on_twin
from scalar_rules import run_scalar

import fastopt

SHAPES = [(6, 5), (4, 9), (1, 1), (0, 3), (33, 2), (16, 16)]
CASES = [hp for _, hp in MATRIX_CASES]
IDS = ["defaults", "plain", "coefficients"]


def grads_for(rng, shapes, dtype, step):
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if step == 3:                        # non-finite values go where the reference's go
        gs[0].flat[:3] = [np.nan, np.inf, -np.inf]
    return gs


def run_against_reference(make, dtype, hp, shapes=SHAPES, steps=6):
    rng = np.random.default_rng(0)
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, other = [p.copy() for p in p0], [p.copy() for p in p0]
    opt_ref, opt_other = fastopt.Muon(ref, backend="numpy", **hp), make(other)
    with np.errstate(all="ignore"):
        for step in range(steps):
            gs = grads_for(rng, shapes, dtype, step)
            opt_ref.step(gs)
            opt_other.step(gs)
    assert any(not np.array_equal(a, b) for a, b in zip(ref, p0) if a.size)
    for a, b, st_a, st_b in zip(ref, other, opt_ref.state, opt_other.state):
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(st_b["buf"], st_a["buf"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("hp", CASES, ids=IDS)
def test_numba_matches_reference(dtype, hp):
    if "numba" not in fastopt.available_backends():
        pytest.skip("numba is not installed")
    run_against_reference(lambda ps: fastopt.Muon(ps, backend="numba", **hp), dtype, hp)


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("hp", CASES, ids=IDS)
def test_cuda_kernels_match_reference(dtype, hp, tmp_path):
    twin = Twin([], tmp_path)
    run_against_reference(lambda ps: on_twin(fastopt.Muon(ps, backend="numpy", **hp), twin),
                          dtype, hp, SHAPES + [(300, 20)])     # several blocks a launch


def muon_in_float64(p, grads, lr, wd=0.1, momentum=0.95, steps=5, abc=(3.4445, -4.7750, 2.0315)):
    """The formula with NumPy in float64, written from torch's docstring."""
    p, buf = p.astype(np.float64), np.zeros(p.shape)
    for g in grads:
        buf = momentum * buf + (1 - momentum) * g
        u = (1 - momentum) * g + momentum * buf
        x = u.T if u.shape[0] > u.shape[1] else u
        x = x / max(np.linalg.norm(x), 1e-7)
        for _ in range(steps):
            gram = x @ x.T
            x = abc[0] * x + (abc[1] * gram + abc[2] * gram @ gram) @ x
        x = x.T if u.shape[0] > u.shape[1] else x
        p = p * (1 - lr * wd) - lr * math.sqrt(max(1, p.shape[0] / p.shape[1])) * x
    return p


@pytest.mark.parametrize("hp", CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 7)])
def test_reference_matches_the_scalar_loops(shape, hp):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(4)]
    p = p0.copy()
    opt = fastopt.Muon(p, **hp)
    for g in grads:
        opt.step(g)
    expected = run_scalar("Muon", hp, p0, grads, [hp["lr"]] * len(grads))
    assert not np.array_equal(p, p0)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", [(8, 5), (5, 8)])
def test_the_iteration_is_the_formula(shape):
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(4)]
    p = p0.copy()
    opt = fastopt.Muon(p, lr=0.02)
    for g in grads:
        opt.step(g)
    np.testing.assert_allclose(p, muon_in_float64(p0, grads, 0.02), rtol=1e-12, atol=1e-14)


def test_params_that_are_not_matrices_are_refused_by_name():
    with pytest.raises(ValueError, match=r"params\[1\] has shape \(3,\); Muon updates params "
                                         "of 2 dimensions only"):
        fastopt.Muon([np.zeros((3, 3)), np.zeros(3)])
    opt = fastopt.Muon([np.zeros((3, 3))])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\] has shape"):
        opt.add_param_group({"params": [np.zeros((2, 2, 2))]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("value,match", [((1.0, 2.0), "ns_coefficients must be a triple"),
                                         (("a", 1, 2), r"ns_coefficients\[0\]")])
def test_bad_coefficients_are_refused_by_name(value, match):
    with pytest.raises(ValueError, match=match):
        fastopt.Muon(np.zeros((2, 2)), ns_coefficients=value)


def test_state_dict_keeps_the_lr_adjustment_and_loads_it():
    opt = fastopt.Muon(np.ones((3, 2)), adjust_lr_fn="match_rms_adamw", ns_steps=4)
    opt.step(np.ones((3, 2)))
    sd = opt.state_dict()
    other = fastopt.Muon(np.ones((3, 2)))
    other.load_state_dict(sd)
    assert other.param_groups[0]["adjust_lr_fn"] == "match_rms_adamw"
    assert other.param_groups[0]["ns_steps"] == 4
    none = fastopt.Muon(np.ones((3, 2)))
    none.step(np.ones((3, 2)))
    other.load_state_dict(none.state_dict())
    assert other.param_groups[0]["adjust_lr_fn"] is None


# -- through fastopt.torch ------------------------------------------------------------------
def torch_pair(shapes, **hp):
    torch = pytest.importorskip("torch")
    ft = pytest.importorskip("fastopt.torch")
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    return torch, ours, theirs, ft.Muon(ours, **hp), torch.optim.Muon(theirs, **hp)


def step_both(torch, ours, theirs, opts, steps):
    for _ in range(steps):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape)
            b.grad = a.grad.clone()
        for opt in opts:
            opt.step()


def test_bfloat16_bound_against_torch():
    """torch's iteration runs in bfloat16 (8 bits of mantissa), fastopt's in float32: after
    five steps the params differ by under 5% of how far they moved."""
    torch, ours, theirs, *opts = torch_pair([(32, 16), (16, 24)], lr=0.02)
    start = [p.detach().clone() for p in ours]
    step_both(torch, ours, theirs, opts, 5)
    for a, b, s in zip(ours, theirs, start):
        moved = (b - s).abs().max()
        assert 0 < (a - b).abs().max() < 0.05 * moved


def test_state_dict_moves_between_torch_and_fastopt():
    torch, ours, theirs, mine, reference = torch_pair([(6, 4), (3, 5)], lr=0.02)
    step_both(torch, ours, theirs, (mine, reference), 2)
    saved = reference.state_dict()
    assert set(mine.state[ours[0]]) == set(saved["state"][0]) == {"momentum_buffer"}
    mine.load_state_dict(saved)
    torch.testing.assert_close(mine.state[ours[1]]["momentum_buffer"],
                               reference.state[theirs[1]]["momentum_buffer"])
    reference.load_state_dict(mine.state_dict())
    torch.testing.assert_close(reference.state[theirs[0]]["momentum_buffer"],
                               saved["state"][0]["momentum_buffer"])


def test_torch_class_refuses_a_vector_by_name():
    torch = pytest.importorskip("torch")
    ft = pytest.importorskip("fastopt.torch")
    with pytest.raises(ValueError, match=r"has shape \(4,\); Muon updates params of 2"):
        ft.Muon([torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(4))])
