"""Fewer bytes a param: AdamW's step with 16-bit params and grads (rounded to nearest,
stochastically, or from float32 master copies), with bfloat16 state and with 8-bit
blockwise state, against the float32 step on the same machine, interleaved (numba, CPU);
and the 8-bit step against bitsandbytes' CPU AdamW8bit (speed, and how far apart the two
land from the same state) and DeepSpeed's CPU Adam (where DeepSpeed is installed).

    pytest benchmarks/quick/test_quick_precision.py --benchmark-only

Each row: the step time, its ratio to float32's (median of the per-round ratios), the
bytes of state kept a param and the bytes a step must move a param (each array read once
and written once: 28 for float32 AdamW; 8-bit state counts its absmaxes, 4 bytes a block
of 256).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from test_quick_buckets import interleaved  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

EIGHT = 2 * 4 / 256          # two absmaxes a block of 256, read and written once: ~0.03 B
# (params and grads, options, state bytes a param, bytes a step moves a param)
MODES = {
    "bfloat16, to nearest": ("bfloat16", {}, 8, 2 + 2 + 2 + 16),
    "bfloat16, stochastic": ("bfloat16", dict(stochastic_rounding=True), 8, 22),
    "bfloat16, master copy": ("bfloat16", dict(master_weights=True), 12, 2 + 2 + 8 + 16),
    "float32, bfloat16 state": ("float32", dict(state_dtype="bfloat16"), 4, 8 + 4 + 8),
    "bfloat16, bfloat16 state, stochastic": (
        "bfloat16", dict(stochastic_rounding=True, state_dtype="bfloat16"), 4, 2 + 2 + 2 + 8),
    "float32, int8 state": ("float32", dict(state_dtype="int8"), 2 + EIGHT, 8 + 4 + 4 + EIGHT),
    "bfloat16, int8 state, stochastic": (
        "bfloat16", dict(stochastic_rounding=True, state_dtype="int8"), 2 + EIGHT,
        2 + 2 + 2 + 4 + EIGHT),
}


def stepping(dtype: str, options: dict, n: int) -> SimpleNamespace:
    """AdamW's step over one param of n elements, its grad set once."""
    import fastopt
    if dtype == "bfloat16":
        import ml_dtypes
        dtype = ml_dtypes.bfloat16
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n, np.float32).astype(dtype)
    g = (rng.standard_normal(n, np.float32) * 1e-2).astype(dtype)
    opt = fastopt.AdamW(p, lr=1e-3, backend="numba", **options)
    return SimpleNamespace(step=lambda: opt.step(g), sync=lambda: None)


@pytest.mark.parametrize("mode", list(MODES))
def test_step_against_float32(benchmark, figures, mode, smoke):
    needs("numba")
    pytest.importorskip("ml_dtypes")
    n = 100_000 if smoke else 10_000_000
    dtype, options, state_bytes, moved = MODES[mode]
    benchmark.group = f"AdamW, {n:.0e} params: 16-bit against float32"
    ours, theirs, ratio = interleaved(benchmark, stepping(dtype, options, n),
                                      stepping("float32", {}, n), smoke)
    figures("AdamW with fewer bytes a param, numba, CPU (median of rounds)",
            lambda: dict(mode=mode, n=n, ms=ours * 1e3, ms_float32=theirs * 1e3,
                         over_float32=ratio, state_bytes=state_bytes, bytes_moved=moved))


def _bitsandbytes_adamw8bit(n: int) -> SimpleNamespace:
    """bitsandbytes' AdamW8bit on a CPU tensor of n elements (8-bit state for all of it)."""
    torch = pytest.importorskip("torch")
    bnb = pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n) * 1e-2
    opt = bnb.optim.AdamW8bit([p], lr=1e-3, min_8bit_size=0)
    return SimpleNamespace(step=opt.step, sync=lambda: None, opt=opt, p=p)


def test_int8_against_bitsandbytes_adamw8bit(benchmark, figures, smoke):
    """fastopt's 8-bit AdamW against bitsandbytes' on the same machine, interleaved; and
    from the same state (theirs after 3 steps), one step of each: the largest difference
    of the state, in codes and in units of its block's quantization step, and of the
    params."""
    needs("numba")
    ft = pytest.importorskip("fastopt.torch")
    from fastopt.kernels import _blockwise as B
    n = 100_000 if smoke else 10_000_000
    theirs = _bitsandbytes_adamw8bit(n)
    for _ in range(3):
        theirs.step()
    mine_p = theirs.p.detach().clone().requires_grad_()
    mine = ft.AdamW([mine_p], lr=1e-3, state_dtype="int8")
    mine.load_state_dict(theirs.opt.state_dict())
    mine_p.grad = theirs.p.grad.clone()
    mine.step()
    theirs.step()
    ours_st, their_st = mine.state[mine_p], theirs.opt.state[theirs.p]
    codes, gaps = 0, 0.0
    for k, name in ((1, "exp_avg"), (2, "exp_avg_sq")):
        a, b = ours_st[name].numpy(), their_st[f"state{k}"].numpy()
        signed = name == "exp_avg"
        gap = np.diff(B.QMAPS[int(signed)]).max() * their_st[f"absmax{k}"].numpy().max()
        codes = max(codes, int(np.abs(a.astype(int) - b).max()))
        gaps = max(gaps, float(np.abs(B.dequantize(a, ours_st[name + "_absmax"].numpy(),
                                                   signed)
                                      - B.dequantize(b, their_st[f"absmax{k}"].numpy(),
                                                     signed)).max() / gap))
    dp = float((mine_p - theirs.p).abs().max())
    ours = stepping("float32", dict(state_dtype="int8"), n)
    benchmark.group = f"AdamW 8-bit state, {n:.0e} params: against bitsandbytes"
    ours_s, theirs_s, ratio = interleaved(benchmark, ours, theirs, smoke)
    figures("8-bit AdamW against bitsandbytes' AdamW8bit, CPU (median of rounds)",
            lambda: dict(n=n, ms=ours_s * 1e3, ms_bitsandbytes=theirs_s * 1e3,
                         times_faster=1 / ratio, state_codes_apart=codes,
                         state_apart_in_steps=gaps, params_apart=dp))


def test_int8_against_deepspeed_cpu_adam(benchmark, figures, smoke):
    """fastopt's 8-bit AdamW against DeepSpeed's CPU Adam (float32, AVX: what
    ZeRO-Offload runs), interleaved; DeepSpeed compiles it on first use (minutes)."""
    needs("numba")
    torch = pytest.importorskip("torch")
    adam = pytest.importorskip("deepspeed.ops.adam")
    n = 100_000 if smoke else 10_000_000
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n) * 1e-2
    opt = adam.DeepSpeedCPUAdam([p], lr=1e-3, adamw_mode=True)
    theirs = SimpleNamespace(step=opt.step, sync=lambda: None)
    benchmark.group = f"AdamW 8-bit state, {n:.0e} params: against DeepSpeedCPUAdam"
    ours_s, theirs_s, ratio = interleaved(benchmark, stepping("float32", dict(
        state_dtype="int8"), n), theirs, smoke)
    figures("8-bit AdamW against DeepSpeedCPUAdam (float32), CPU (median of rounds)",
            lambda: dict(n=n, ms=ours_s * 1e3, ms_deepspeed=theirs_s * 1e3,
                         over_deepspeed=ratio))
