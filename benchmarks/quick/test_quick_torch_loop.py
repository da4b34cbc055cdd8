"""fastopt.torch in a training loop, CPU, float32: what one ``opt.step()`` costs against
torch.optim's fused, foreach and for-loop steps, with the lr constant or changed before
every step (what any per-step scheduler does); the torch layer's own cost over the core
API on the same arrays, and each of its per-step costs (``-k budget``); and a whole
training iteration of the digits CNN.

    pytest benchmarks/quick/test_quick_torch_loop.py --benchmark-only [-k cnn]
    pytest benchmarks/quick/test_quick_torch_loop.py --benchmark-only -k budget

Models, as the param shapes a training loop hands the optimizer: ``cnn`` the digits CNN
(8 tensors, 9.8k params), ``mlp`` an MLP 784-1024-1024-320-10 (8 tensors, 2.2M),
``linear200`` 200 x Linear(32, 32) (400 tensors, 211k). Pairs are measured interleaved
(test_quick_buckets.py) and each figure is the median of the per-round ratios.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from test_quick_buckets import interleaved  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

MODELS = {
    "cnn": [(8, 1, 3, 3), (8,), (16, 8, 3, 3), (16,), (32, 256), (32,), (10, 32), (10,)],
    "mlp": [(1024, 784), (1024,), (1024, 1024), (1024,), (320, 1024), (320,), (10, 320),
            (10,)],
    "linear200": [(32, 32), (32,)] * 200,
}
RULES = {"AdamW": dict(lr=1e-3), "SGD": dict(lr=1e-3, momentum=0.9, nesterov=True)}
TORCH_IMPLS = {"fused": dict(fused=True), "foreach": dict(foreach=True),
               "for-loop": dict(foreach=False)}


def stepping(model: str, rule: str, impl: str, lr_change: bool) -> SimpleNamespace:
    """``step()`` of one optimizer over the model's params, grads set once: fastopt.torch
    ("fastopt"), the core API on the same memory ("core") or torch.optim (TORCH_IMPLS);
    with ``lr_change``, a new lr in the group before every step."""
    import torch

    import fastopt
    import fastopt.torch as ft
    params = [torch.zeros(s, requires_grad=True) for s in MODELS[model]]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    if impl == "core":
        grads = [p.grad.numpy() for p in params]
        core = getattr(fastopt, rule)([p.detach().numpy() for p in params], **RULES[rule])
        group, step = core.param_groups[0], lambda: core.step(grads)
    else:
        opt = getattr(ft, rule)(params, **RULES[rule]) if impl == "fastopt" else \
            getattr(torch.optim, rule)(params, **RULES[rule], **TORCH_IMPLS[impl])
        group, step = opt.param_groups[0], opt.step
    if not lr_change:
        return SimpleNamespace(step=step, sync=lambda: None)
    lrs, k = [1e-3 * (1 + 1e-4 * i) for i in range(7)], [0]

    def changed_step() -> None:
        k[0] += 1
        group["lr"] = lrs[k[0] % 7]
        step()
    return SimpleNamespace(step=changed_step, sync=lambda: None)


CASES = [(m, r, c) for m in MODELS for r in RULES for c in (False, True)]
IDS = [f"{m}-{r}-{'lr changed' if c else 'lr constant'}" for m, r, c in CASES]


@pytest.mark.parametrize("impl", list(TORCH_IMPLS))
@pytest.mark.parametrize("model,rule,lr_change", CASES, ids=IDS)
def test_step_against_torch(benchmark, figures, model, rule, lr_change, impl, smoke):
    """fastopt.torch.X's step against torch.optim.X's (fused, foreach, for-loop)."""
    needs("numba")
    pytest.importorskip("torch")
    if smoke and (model != "cnn" or impl != "fused"):
        pytest.skip("--smoke: the CNN against fused only")
    benchmark.group = f"fastopt.torch step against torch.optim ({impl}): {model}"
    ours, theirs, ratio = interleaved(benchmark, stepping(model, rule, "fastopt", lr_change),
                                      stepping(model, rule, impl, lr_change), smoke)
    figures("fastopt.torch step against torch.optim, CPU float32 (median of rounds)",
            lambda: dict(model=model, rule=rule, lr="changed" if lr_change else "constant",
                         torch=impl, us_fastopt=ours * 1e6, us_torch=theirs * 1e6,
                         fastopt_over_torch=ratio))


@pytest.mark.parametrize("model,rule,lr_change", CASES, ids=IDS)
def test_torch_layer_over_the_core_api(benchmark, figures, model, rule, lr_change, smoke):
    """What the torch layer adds to the core API's step over the same arrays (finding the
    grads, following the groups, step counts, hooks): the difference, and per tensor."""
    needs("numba")
    pytest.importorskip("torch")
    if smoke and model != "cnn":
        pytest.skip("--smoke: the CNN only")
    benchmark.group = f"fastopt.torch over the core API: {model}"
    ours, core, _ = interleaved(benchmark, stepping(model, rule, "fastopt", lr_change),
                                stepping(model, rule, "core", lr_change), smoke)
    tensors = len(MODELS[model])
    figures("the torch layer's cost over the core API, CPU float32 (medians)",
            lambda: dict(model=model, rule=rule, lr="changed" if lr_change else "constant",
                         tensors=tensors, us_torch_layer=ours * 1e6, us_core=core * 1e6,
                         us_over=(ours - core) * 1e6,
                         us_over_per_tensor=(ours - core) * 1e6 / tensors))


@pytest.mark.parametrize("rule", list(RULES))
def test_digits_cnn_training_iteration(benchmark, figures, rule, smoke):
    """forward, backward and step of the digits CNN (batch 64, cosine-annealed lr):
    fastopt.torch.X against torch.optim.X(fused=True)."""
    needs("numba")
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    import fastopt.torch as ft
    digits = load_digits()
    x = torch.tensor(digits.images[:64, None] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:64])

    def iteration(make):
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(256, 32), torch.nn.ReLU(),
            torch.nn.Linear(32, 10))
        opt = make(net.parameters())
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)

        def run() -> None:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            schedule.step()
        return SimpleNamespace(step=run, sync=lambda: None)
    ours = iteration(lambda p: getattr(ft, rule)(p, **RULES[rule]))
    theirs = iteration(lambda p: getattr(torch.optim, rule)(p, **RULES[rule], fused=True))
    benchmark.group = "digits CNN training iteration"
    ours_s, theirs_s, ratio = interleaved(benchmark, ours, theirs, smoke)
    figures("digits CNN training iteration (forward, backward, step, scheduler), CPU",
            lambda: dict(rule=rule, us_fastopt=ours_s * 1e6, us_torch_fused=theirs_s * 1e6,
                         fastopt_over_torch=ratio))


def _budget_parts(opt) -> dict:
    """Each per-step cost of the torch layer as a call of its own, on a warm optimizer
    whose grads are set: what ``opt.step()`` spends, piece by piece."""
    import torch
    from torch.autograd.graph import increment_version

    from fastopt._atomic import hold_signals, release_signals
    from fastopt.torch import _GRAD, _addresses
    cohort = opt._cohorts[0]
    grads = [p.grad for p in cohort.params]
    check = opt._lane.checks[0]
    addresses = _addresses(grads)
    group = opt.param_groups[0]
    lrs, k = [1e-3 * (1 + 1e-4 * i) for i in range(7)], [0]

    def new_lr() -> None:
        k[0] += 1
        group["lr"] = lrs[k[0] % 7]
        opt._sync(cohort)

    return {
        "whole step": opt.step,
        "signals held and released": lambda: release_signals(hold_signals()),
        "structure unchanged?": opt._same_structure,
        "params' memory unchanged?": lambda: opt._current(cohort),
        "grads found and checked (first step)": lambda: opt._grads(cohort),
        "grads found and checked (steady)": lambda: check(*map(_GRAD, cohort.params)),
        "every p.grad read (nothing else)": lambda: list(map(_GRAD, cohort.params)),
        "group values followed": lambda: opt._sync(cohort),
        "a new lr taken": new_lr,
        "grads' addresses": lambda: _addresses(grads),
        "core step at the addresses": lambda: cohort.core._step_at(addresses),
        "autograd versions bumped": lambda: increment_version(cohort.params),
        "opt.state built": lambda: _state_after_a_step(opt),
        "torch's own wrapper (an empty step)": _empty_step(torch, cohort.params),
    }


def _state_after_a_step(opt):
    """``opt.state`` as the first read after a step builds it (a step renews it)."""
    opt._version += 1
    return opt.state


def _empty_step(torch, params):
    class Empty(torch.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {})

        def step(self, closure=None):
            return None
    return Empty(params).step


BUDGET = ["whole step", "signals held and released", "structure unchanged?",
          "params' memory unchanged?", "grads found and checked (first step)",
          "grads found and checked (steady)", "every p.grad read (nothing else)",
          "group values followed",
          "a new lr taken", "grads' addresses", "core step at the addresses",
          "autograd versions bumped", "opt.state built", "torch's own wrapper (an empty step)"]


@pytest.mark.parametrize("part", BUDGET)
@pytest.mark.parametrize("model", ["cnn", "linear200"])
def test_torch_layer_budget(benchmark, figures, model, part, smoke):
    """The torch layer's per-step costs one by one (SGD Nesterov): finding and checking
    the grads (at a first step, and at a steady one, where torch's tensor guard checks
    them; reading every p.grad alone is the floor), following the groups, the core's step,
    the autograd versions, the signal guard (held around a step of several cohorts),
    opt.state (built once per step when read), and torch's step wrapper, which
    fastopt.torch enters only while a hook or profiler needs it."""
    needs("numba")
    pytest.importorskip("torch")
    if smoke and model != "cnn":
        pytest.skip("--smoke: the CNN only")
    opt = stepping_optimizer(model)
    call = _budget_parts(opt)[part]
    benchmark.group = f"fastopt.torch's per-step budget: {model}"
    benchmark(call)
    tensors = len(MODELS[model])
    figures("fastopt.torch's per-step budget, SGD Nesterov, CPU float32 (medians)",
            lambda: dict(model=model, part=part, us=benchmark.stats.stats.median * 1e6,
                         us_per_tensor=benchmark.stats.stats.median * 1e6 / tensors))


def stepping_optimizer(model: str):
    """fastopt.torch.SGD (Nesterov) over the model's params, grads set, stepped once."""
    import torch

    import fastopt.torch as ft
    params = [torch.zeros(s, requires_grad=True) for s in MODELS[model]]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    opt = ft.SGD(params, **RULES["SGD"])
    opt.step()
    return opt
