"""Adafactor on a matrix: fastopt's numba step against torch.optim.Adafactor (foreach, the
default, and the single-tensor loop), float32 on the CPU, interleaved; and the state each
keeps for it (m + n numbers).

    pytest benchmarks/quick/test_quick_adafactor.py --benchmark-only

A step reads g four times and p twice and writes p (kernels/adafactor.py: rows, columns,
the update's norm, the update), with two divisions and a square root per element read:
compute as much as memory on two cores.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from test_quick_buckets import interleaved  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

SHAPES = [(1024, 1024), (4096, 1024)]


def fastopt_step(shape: tuple) -> SimpleNamespace:
    import fastopt

    rng = np.random.default_rng(0)
    p = rng.standard_normal(shape, np.float32)
    g = rng.standard_normal(shape, np.float32)
    opt = fastopt.Adafactor([p], backend="numba")
    return SimpleNamespace(step=lambda: opt.step([g]), sync=lambda: None, opt=opt)


def torch_step(shape: tuple, foreach: bool) -> SimpleNamespace:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(shape))
    p.grad = torch.randn(shape)
    opt = torch.optim.Adafactor([p], foreach=foreach)
    return SimpleNamespace(step=opt.step, sync=lambda: None, opt=opt, p=p)


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "single"])
@pytest.mark.parametrize("shape", SHAPES, ids=["1024x1024", "4096x1024"])
def test_adafactor_against_torch(benchmark, figures, shape, foreach, smoke):
    needs("numba")
    shape = (64, 32) if smoke else shape
    benchmark.group = f"Adafactor {shape[0]}x{shape[1]} float32: fastopt against torch's"
    ours = fastopt_step(shape)
    theirs = torch_step(shape, foreach)
    ours_s, theirs_s, ratio = interleaved(benchmark, ours, theirs, smoke)
    kept = sum(v.size for v in ours.opt.state[0].values())
    theirs.step()
    torch_kept = sum(v.numel() for k, v in theirs.opt.state[theirs.p].items() if k != "step")
    assert kept == torch_kept == shape[0] + shape[1]
    figures("Adafactor, numba against torch.optim.Adafactor, CPU (median of rounds)",
            lambda: dict(shape=f"{shape[0]}x{shape[1]}",
                         torch="foreach" if foreach else "single tensor",
                         ms_fastopt=ours_s * 1e3, ms_torch=theirs_s * 1e3, ratio=ratio,
                         state_numbers=kept))
