"""fastopt.torch against torch.optim on PyTorch's own optimizer test configurations
(``torch.testing._internal.common_optimizers.optim_db``: each class's keyword sets), float64,
several param shapes, ten steps from the same grads (LBFGS: three steps of a closure). The
classes fastopt.torch lacks are skipped by name (Muon; SparseAdam is not
planned)."""
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


@pytest.mark.parametrize("name,kwargs", configurations())
def test_matches_torch_on_its_own_configurations(name, kwargs):
    if name not in OURS:
        pytest.skip(f"fastopt.torch has no {name}")
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in SHAPES]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    start = [p.detach().clone() for p in ours]
    opts = OURS[name](ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    if name == "LBFGS":         # a closure's loss: a quadratic bowl of the params
        weights = [torch.rand(s, dtype=torch.float64) + 0.5 for s in SHAPES]
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
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol / 10)
