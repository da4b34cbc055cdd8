"""Muon on a matrix: fastopt's numba step against torch.optim.Muon, float32 on the CPU.

    pytest benchmarks/quick/test_quick_muon.py --benchmark-only

torch runs the Newton-Schulz iteration in bfloat16, which a CPU without bfloat16
arithmetic (this Zen 2) does slowly: its step is timed once (31 s at 1024 x 1024 here),
fastopt's over rounds; the figure is the ratio of the two.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_quick_rules import needs  # noqa: E402 (this folder is on sys.path)

SHAPES = [(1024, 1024), (4096, 1024)]


@pytest.mark.parametrize("shape", SHAPES, ids=["1024x1024", "4096x1024"])
def test_muon_against_torch(benchmark, figures, shape, smoke):
    needs("numba")
    torch = pytest.importorskip("torch")
    import fastopt
    from fastopt._bench import seconds_per_call

    shape = (64, 32) if smoke else shape
    rng = np.random.default_rng(0)
    p = rng.standard_normal(shape, np.float32)
    g = rng.standard_normal(shape, np.float32)
    ours = fastopt.Muon([p], backend="numba")
    ours.step([g])
    benchmark.group = f"Muon {shape[0]}x{shape[1]} float32: fastopt's step"
    benchmark.pedantic(ours.step, args=([g],), rounds=1 if smoke else 5, warmup_rounds=0)
    weight = torch.nn.Parameter(torch.from_numpy(p.copy()))
    weight.grad = torch.from_numpy(g)
    theirs = torch.optim.Muon([weight])
    torch_s = seconds_per_call(theirs.step, 0.0, repeat=1)
    if benchmark.disabled:
        return
    ours_s = benchmark.stats.stats.median
    figures("Muon, numba against torch.optim.Muon (bfloat16 iteration), CPU",
            lambda: dict(shape=f"{shape[0]}x{shape[1]}", ms_fastopt=ours_s * 1e3,
                         s_torch=torch_s, torch_over_fastopt=torch_s / ours_s))
