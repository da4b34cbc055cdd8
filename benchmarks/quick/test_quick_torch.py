"""fastopt.torch against torch.optim on the CPU, float32, in one process: every rule torch
has, against torch's fused implementation where it has one and its foreach one, over
ResNet-18's 62 parameter shapes (11.7M elements, memory-bound), 200 arrays of 5,000 and
100 of 100 (the per-array cost).

    pytest benchmarks/quick/test_quick_torch.py --benchmark-only [-k resnet18]

Grads are set once; each sample times ``opt.step()`` alone. Pairs are measured interleaved
(see test_quick_buckets.py) and the figure is the median of the per-round ratios.
``flat_over_fastopt`` compares with fastopt's step over one flat array of the same size
(the bandwidth roofline of the step, 1.0 = reached), timed right after.
"""
from __future__ import annotations

import pytest

from fastopt._bench import LAYOUTS, layout_case, seconds_per_call, torch_case
from fastopt.kernels import REGISTRY

from test_quick_buckets import interleaved, layouts  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

PAIRS = [(rule.class_name, impl) for rule in REGISTRY if rule.torch_class
         for impl in ("fused", "foreach")]


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
