"""fastopt.torch against torch.optim on PyTorch's own optimizer test configurations
(``torch.testing._internal.common_optimizers.optim_db``: each class's keyword sets), float64,
several param shapes, ten steps from the same grads (LBFGS: three steps of a closure). The
class fastopt.torch lacks is skipped by name (SparseAdam: not planned). Muon takes matrices
only, and torch runs its Newton-Schulz iteration in bfloat16: here torch's iteration runs in
float64 instead (the same function, patched), so the rest of its step is compared to 1e-12;
tests/test_muon.py bounds the difference bfloat16 makes."""
import inspect

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")       # torch's internal test modules import it
common = pytest.importorskip("torch.testing._internal.common_optimizers")
ft = pytest.importorskip("fastopt.torch")

from fastopt.kernels import REGISTRY  # noqa: E402

OURS = {rule.torch_class: getattr(ft, rule.torch_class) for rule in REGISTRY
        if rule.torch_class}
OURS["LBFGS"] = ft.LBFGS
# torch keeps NAdam's mu_product and ASGD's eta and mu in float32 tensors, fastopt in float64
LOOSER = {"NAdam": 1e-7, "ASGD": 1e-7}
SHAPES = [(5, 3), (4,), (2, 3, 2)]
MATRICES = [(5, 3), (4, 6), (7, 7)]        # Muon's


def configurations():
    out = []
    for info in common.optim_db:
        name = info.optim_cls.__name__
        wanted = inspect.signature(info.optim_inputs_func).parameters
        inputs = info.optim_inputs_func(device="cpu", **(
            {"dtype": torch.float64} if "dtype" in wanted else {}))
        for k, optim_input in enumerate(inputs):
            out.append(pytest.param(name, optim_input.kwargs, id=f"{name}-{k}"))
    return out


def bowl(params, weights, opt):
    opt.zero_grad()
    loss = sum((w * (p - 1.0) ** 2).sum() for p, w in zip(params, weights))
    loss.backward()
    return loss


def newton_schulz_in_float64(grad, ns_coefficients, ns_steps, eps):
    """torch.optim._muon's iteration, line for line, in float64 instead of bfloat16."""
    a, b, c = ns_coefficients
    x = grad.double()
    if grad.size(0) > grad.size(1):
        x = x.T
    x = x.div(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


@pytest.mark.parametrize("name,kwargs", configurations())
def test_matches_torch_on_its_own_configurations(name, kwargs, monkeypatch):
    if name not in OURS:
        pytest.skip(f"fastopt.torch has no {name}")
    shapes = SHAPES
    if name == "Muon":
        monkeypatch.setattr(torch.optim._muon, "_zeropower_via_newtonschulz",
                            newton_schulz_in_float64)
        shapes = MATRICES
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    start = [p.detach().clone() for p in ours]
    opts = OURS[name](ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    if name == "LBFGS":         # a closure's loss: a quadratic bowl of the params
        weights = [torch.rand(s, dtype=torch.float64) + 0.5 for s in shapes]
        for opt, params in zip(opts, (ours, theirs)):
            for _ in range(3):
                opt.step(lambda params=params, opt=opt: bowl(params, weights, opt))
    for _ in range(0 if name == "LBFGS" else 10):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape, dtype=torch.float64)
            b.grad = a.grad.clone()
        for opt in opts:
            opt.step()
    assert all(not torch.equal(a, s) for a, s in zip(ours, start))
    rtol = LOOSER.get(name, 1e-12)
    if name == "Muon" and torch.is_tensor(kwargs.get("lr")):    # torch's 1 - lr*wd and
        rtol = 1e-6         # lr*ratio are then float32 tensors (fastopt's: float64)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol / 10)
