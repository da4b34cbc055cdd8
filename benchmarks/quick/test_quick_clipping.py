"""Clipping by the global norm: AdamW's step with ``max_grad_norm`` against the step alone,
and against torch's recipe (``torch.nn.utils.clip_grad_norm_``, which takes the norm and
then scales the grads in place, followed by ``torch.optim.AdamW(fused=True)``), both on
the CPU, interleaved.

    pytest benchmarks/quick/test_quick_clipping.py --benchmark-only

The clipped step reads each grad twice (the norm, then the update reading it scaled) and
writes none: 32 bytes a float32 param against the step's 28, so at the memory bound 1.14x.
torch's recipe reads the grads twice and writes them once before its step: 12 bytes, then
its step's 28, 40 against fastopt's 32, so at the memory bound fastopt's clipped step takes
0.8x torch's time. The third benchmark times the norm pass alone against numba's own
fastmath sum, the fastest read of the grads numba gives (it reassociates, so it cannot give
every backend the same bits).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from test_quick_buckets import interleaved  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

MAX_NORM = 1.0      # below the grads' norm (about 3e-2 * sqrt(n)): every step clips


def fastopt_step(n: int, max_grad_norm: float | None) -> SimpleNamespace:
    """fastopt's numba AdamW over one float32 param of n elements, its grad set once."""
    import fastopt

    rng = np.random.default_rng(0)
    p = rng.standard_normal(n, np.float32)
    g = rng.standard_normal(n, np.float32) * np.float32(3e-2)
    opt = fastopt.AdamW(p, lr=1e-3, backend="numba", max_grad_norm=max_grad_norm)
    return SimpleNamespace(step=lambda: opt.step(g), sync=lambda: None, opt=opt)


def torch_clip_and_fused_step(n: int) -> SimpleNamespace:
    """torch's clip_grad_norm_ then its fused AdamW, on a CPU tensor of n elements (the
    grad is scaled in place at each step: its norm is MAX_NORM after the first, and every
    step reads and writes it all the same)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(n))
    grad = torch.randn(n) * 3e-2
    p.grad = grad.clone()
    opt = torch.optim.AdamW([p], lr=1e-3, fused=True)

    def step() -> None:
        torch.nn.utils.clip_grad_norm_([p], MAX_NORM)
        opt.step()

    return SimpleNamespace(step=step, sync=lambda: None)


def test_clipped_step_against_the_step_alone(benchmark, figures, smoke):
    needs("numba")
    n = 100_000 if smoke else 10_000_000
    benchmark.group = f"AdamW, {n:.0e} float32: max_grad_norm against the step alone"
    clipped = fastopt_step(n, MAX_NORM)
    ours, alone, ratio = interleaved(benchmark, clipped, fastopt_step(n, None), smoke)
    assert clipped.opt.grad_norm > MAX_NORM
    figures("clipping by the global norm, numba, CPU (median of rounds)",
            lambda: dict(against="the step alone", n=n, ms_clipped=ours * 1e3,
                         ms_other=alone * 1e3, ratio=ratio))


def test_clipped_step_against_torch_clip_grad_norm_and_fused_adamw(benchmark, figures, smoke):
    needs("numba")
    n = 100_000 if smoke else 10_000_000
    benchmark.group = f"AdamW, {n:.0e} float32: max_grad_norm against torch's clip + fused"
    ours, theirs, ratio = interleaved(benchmark, fastopt_step(n, MAX_NORM),
                                      torch_clip_and_fused_step(n), smoke)
    figures("clipping by the global norm, numba, CPU (median of rounds)",
            lambda: dict(against="torch clip_grad_norm_ + AdamW(fused=True)", n=n,
                         ms_clipped=ours * 1e3, ms_other=theirs * 1e3, ratio=ratio))


def norm_pass(n: int) -> SimpleNamespace:
    """max_grad_norm's pass alone (kernels/_reduce.py: float64 lanes in one fixed order,
    the same bits on every backend) over one float32 grad of n elements."""
    from fastopt.kernels._cpu import PARAM
    from fastopt.kernels._reduce import BucketSum, sum_of_squares

    g = np.random.default_rng(0).standard_normal(n, np.float32)
    total = BucketSum([g], g.dtype)                   # (reads g itself: its "param")
    pointers = total.table[:, PARAM].copy()
    assert total(pointers, 0.0) == sum_of_squares([g])     # the reference's bits
    return SimpleNamespace(step=lambda: total(pointers, 0.0), sync=lambda: None, g=g)


def fastmath_sum(g: np.ndarray) -> SimpleNamespace:
    """numba's own parallel reduction of the squares with fastmath (reassociated: it cannot
    give the same bits on every backend, which is why the norm pass is not written so)."""
    import numba

    @numba.njit(parallel=True, fastmath=True)
    def squares(x):
        s = 0.0
        for i in numba.prange(x.size):
            s += np.float64(x[i]) * np.float64(x[i])
        return s

    squares(g)
    return SimpleNamespace(step=lambda: squares(g), sync=lambda: None)


def test_norm_pass_against_a_fastmath_sum(benchmark, figures, smoke):
    """How far the fixed-order pass is from the fastest read the machine gives numba."""
    needs("numba")
    n = 100_000 if smoke else 10_000_000
    benchmark.group = f"{n:.0e} float32: the norm pass against numba's fastmath sum"
    ours = norm_pass(n)
    mine, theirs, ratio = interleaved(benchmark, ours, fastmath_sum(ours.g), smoke)
    figures("clipping by the global norm, numba, CPU (median of rounds)",
            lambda: dict(against="the norm pass: numba's fastmath sum", n=n,
                         ms_clipped=mine * 1e3, ms_other=theirs * 1e3, ratio=ratio))
