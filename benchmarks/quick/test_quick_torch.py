"""fastopt.torch against torch.optim on the CPU, float32, in one process: every rule torch
has, against torch's fused implementation where it has one and its foreach one, over
ResNet-18's 62 parameter shapes (11.7M elements, memory-bound), 200 arrays of 5,000 and
100 of 100 (the per-array cost); and fastopt.torch.LBFGS against torch.optim.LBFGS.

    pytest benchmarks/quick/test_quick_torch.py --benchmark-only [-k resnet18]

Grads are set once; each sample times ``opt.step()`` alone. Pairs are measured interleaved
(see test_quick_buckets.py) and the figure is the median of the per-round ratios.
``flat_over_fastopt`` compares with fastopt's step over one flat array of the same size
(the bandwidth roofline of the step, 1.0 = reached), timed right after.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from fastopt._bench import LAYOUTS, layout_case, seconds_per_call, torch_case
from fastopt.kernels import REGISTRY

from test_quick_buckets import interleaved, layouts  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

PAIRS = [(rule.class_name, impl) for rule in REGISTRY
         if rule.torch_class and rule.takes_any_shape for impl in ("fused", "foreach")]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("rule,impl", PAIRS, ids=[f"{r}-{i}" for r, i in PAIRS])
def test_against_torch_optim(benchmark, figures, rule, impl, layout, smoke):
    """fastopt.torch.X against torch.optim.X(fused=True) or (foreach=True)."""
    needs("numba")
    pytest.importorskip("torch")
    if layout not in layouts(smoke):
        pytest.skip("--smoke: the first layout only")
    try:
        theirs = torch_case(rule, layout, impl)
    except NotImplementedError as exc:
        pytest.skip(str(exc))
    ours = torch_case(rule, layout, "fastopt")
    benchmark.group = f"fastopt.torch against torch.optim ({impl}), CPU: {layout}"
    ours_s, theirs_s, ratio = interleaved(benchmark, ours, theirs, smoke)
    flat = layout_case(rule, "numba", layout, flat=True)     # the roofline: one flat array
    flat_s = seconds_per_call(flat.step, 0.05 if smoke else 0.3)
    figures("fastopt.torch against torch.optim on the CPU, float32 (median of rounds)",
            lambda: dict(rule=rule, torch=impl, layout=layout, us_fastopt=ours_s * 1e6,
                         us_torch=theirs_s * 1e6, torch_over_fastopt=1 / ratio,
                         flat_over_fastopt=flat_s / ours_s))


@pytest.mark.parametrize("search", [None, "strong_wolfe"], ids=["fixed step", "strong_wolfe"])
@pytest.mark.parametrize("hidden", [16, 1024], ids=["4k params", "266k params"])
def test_lbfgs_against_torch_optim(benchmark, figures, hidden, search, smoke):
    """fastopt.torch.LBFGS against torch.optim.LBFGS: one ``step(closure)`` of 20
    iterations (history 10) on an MLP, float32, each call from the same params and an
    empty state (the optimizer made once, its buffers kept, as in a training loop)."""
    needs("numba")
    torch = pytest.importorskip("torch")
    import fastopt.torch as ft

    def case(cls):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(256, hidden), torch.nn.Tanh(),
                                    torch.nn.Linear(hidden, 3))
        x, y = torch.randn(256, 256), torch.randn(256, 3)
        start = [p.detach().clone() for p in model.parameters()]
        opt = cls(model.parameters(), history_size=10, line_search_fn=search)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        def step():
            with torch.no_grad():
                for p, s in zip(model.parameters(), start):
                    p.copy_(s)
            opt.state.clear()
            opt.step(closure)
        return SimpleNamespace(step=step, sync=lambda: None)
    benchmark.group = f"fastopt.torch.LBFGS against torch.optim.LBFGS, CPU: {hidden} hidden"
    ours_s, theirs_s, ratio = interleaved(benchmark, case(ft.LBFGS), case(torch.optim.LBFGS),
                                          smoke)
    figures("fastopt.torch.LBFGS against torch.optim.LBFGS, CPU float32 (median of rounds)",
            lambda: dict(hidden=hidden, search=search or "fixed", ms_fastopt=ours_s * 1e3,
                         ms_torch=theirs_s * 1e3, torch_over_fastopt=1 / ratio))


@pytest.mark.parametrize("n,dtype", [(266_243, "float32"), (1_000_000, "float32"),
                                     (10_000_000, "float64")])
def test_lbfgs_direction_against_torchs(benchmark, figures, n, dtype, smoke):
    """The direction d = -H g from 10 pairs: fastopt's fused two-loop kernel (what
    fastopt.torch.LBFGS runs) against torch.optim.LBFGS's loop of 40 dots and axpys."""
    needs("numba")
    torch = pytest.importorskip("torch")
    import numpy as np

    from fastopt.kernels import lbfgs as K
    if smoke and n > 266_243:
        pytest.skip("--smoke: the smallest size only")
    m, rng = 10, np.random.default_rng(0)
    S = rng.standard_normal((m, n)).astype(dtype)
    Y, g, d = S + np.asarray(0.1, dtype), rng.standard_normal(n).astype(dtype), np.zeros(n, dtype)
    rho, order = np.full(m, 1e-3), np.arange(m, dtype=np.int64)
    ops = K.HostOps(n, np.dtype(dtype), compiled=True, by_size=False)
    tS, tY, tg = list(torch.from_numpy(S)), list(torch.from_numpy(Y)), torch.from_numpy(g)

    def torchs():                      # torch.optim.LBFGS.step's two loops, as written there
        q, al = tg.neg(), [None] * m
        for i in range(m - 1, -1, -1):
            al[i] = tS[i].dot(q) * 1e-3
            q.add_(tY[i], alpha=-al[i])
        r = torch.mul(q, 0.5)
        for i in range(m):
            r.add_(tS[i], alpha=al[i] - tY[i].dot(r) * 1e-3)
    ours = SimpleNamespace(step=lambda: ops.two_loop(g, S, Y, rho, order, 0.5, d),
                           sync=lambda: None)
    benchmark.group = f"L-BFGS direction against torch's, CPU: n={n:.0e} {dtype}"
    ours_s, theirs_s, ratio = interleaved(benchmark, ours,
                                          SimpleNamespace(step=torchs, sync=lambda: None), smoke)
    figures("L-BFGS direction, 10 pairs, against torch.optim.LBFGS's (median of rounds)",
            lambda: dict(n=f"{n:.0e}", dtype=dtype, ms_fastopt=ours_s * 1e3,
                         ms_torch=theirs_s * 1e3, torch_over_fastopt=1 / ratio))
