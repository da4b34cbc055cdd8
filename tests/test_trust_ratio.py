"""LAMB and LARS (per-param trust ratios: kernels/_rule.py's PerTensor) against
pytorch-optimizer's ``Lamb`` and ``LARS``, through fastopt.torch, float64 and float32; the
norms are in float64 in a fixed order here, in the param's dtype in torch's, so the bound
is a few ulps of float64 (1e-12) and of float32 (1e-5)."""
import numpy as np
import pytest

import fastopt

torch = pytest.importorskip("torch")
po = pytest.importorskip("pytorch_optimizer")
ft = pytest.importorskip("fastopt.torch")

SHAPES = [(30, 20), (20,), (50, 3, 3), (7, 4)]     # a 600-element matrix: ||p|| > 10
CASES = [
    ("Lamb", dict(lr=1e-2)),
    ("Lamb", dict(lr=1e-2, weight_decay=0.05, betas=(0.8, 0.99), maximize=True)),
    ("Lamb", dict(lr=3e-3, eps=1e-3, weight_decay=0.01)),
    ("LARS", dict(lr=1.0)),
    ("LARS", dict(lr=1.0, weight_decay=0.1, momentum=0.9, nesterov=True, maximize=True)),
    ("LARS", dict(lr=0.5, momentum=0.0, trust_coefficient=0.02, weight_decay=0.01)),
    ("LARS", dict(lr=0.5, momentum=0.5, dampening=0.3)),
]
BOUNDS = {torch.float64: dict(rtol=1e-12, atol=1e-14), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def params(dtype):
    torch.manual_seed(0)
    made = [torch.nn.Parameter(torch.randn(s, dtype=dtype)) for s in SHAPES]
    with torch.no_grad():
        made[-1].zero_()                    # a zero weight: its trust ratio is 1
    return made


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("foreach", [False, True], ids=["per-param", "foreach"])
@pytest.mark.parametrize("rule,hp", CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)])
def test_matches_pytorch_optimizer(rule, hp, dtype, foreach):
    ours, theirs = params(dtype), params(dtype)
    opt = getattr(ft, rule)(ours, **hp)
    reference = getattr(po, rule)(theirs, foreach=foreach, **hp)
    generator = torch.Generator().manual_seed(1)
    for _ in range(8):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape, dtype=dtype, generator=generator)
            b.grad = a.grad.clone()
        opt.step()
        reference.step()
    moved = [not torch.equal(a, b) for a, b in zip(ours, params(dtype))]
    assert all(moved)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **BOUNDS[dtype])


def test_lars_leaves_vectors_to_plain_sgd():
    """A 1-D param (a bias) takes momentum SGD steps without decay or trust ratio; a
    matrix of the same numbers is scaled by its trust ratio."""
    g = np.linspace(-1, 1, 12)
    vector, matrix = np.linspace(1, 2, 12), np.linspace(1, 2, 12).reshape(3, 4)
    opt = fastopt.LARS([vector, matrix], lr=0.1, momentum=0.0, weight_decay=0.5)
    opt.step([g, g.reshape(3, 4)])
    np.testing.assert_array_equal(vector, np.linspace(1, 2, 12) - 0.1 * g)
    p = np.linspace(1, 2, 12)
    trust = 1e-3 * np.linalg.norm(p) / (np.linalg.norm(g) + 0.5 * np.linalg.norm(p))
    np.testing.assert_allclose(matrix.ravel(), p - 0.1 * (g + 0.5 * p) * trust, rtol=1e-15)


def test_the_trust_ratio_is_per_param_not_per_bucket():
    """Two params in one bucket (one compiled call) step as each would alone."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 30)), 100 * rng.standard_normal((20, 5))
    alone = [a.copy(), b.copy()]
    together = fastopt.Lamb([a, b], lr=1e-2, weight_decay=0.01)
    singles = [fastopt.Lamb(x, lr=1e-2, weight_decay=0.01) for x in alone]
    for _ in range(3):
        grads = [rng.standard_normal(a.shape), rng.standard_normal(b.shape)]
        together.step(grads)
        for opt, g in zip(singles, grads):
            opt.step(g)
    np.testing.assert_array_equal(a, alone[0])
    np.testing.assert_array_equal(b, alone[1])


def test_bytes_a_step_moves_count_the_first_pass():
    """LAMB's first pass reads p, g, m and v; LARS's p and g: the roofline the benchmarks
    compare against counts them (float32: AdamW's 28 bytes + 16; SGD's 20 + 8)."""
    lamb, lars = fastopt.Lamb.rule, fastopt.LARS.rule
    assert lamb.bytes_per_element(lamb.checked("Lamb", lamb.defaults), 4) == 28 + 16
    assert lars.bytes_per_element(lars.checked("LARS", lars.defaults), 4) == 20 + 8
