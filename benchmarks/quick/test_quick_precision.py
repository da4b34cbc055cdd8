"""Fewer bytes a param: AdamW's step with 16-bit params and grads (rounded to nearest,
stochastically, or from float32 master copies) and with bfloat16 state, against the
float32 step on the same machine, interleaved (numba, CPU).

    pytest benchmarks/quick/test_quick_precision.py --benchmark-only

Each row: the step time, its ratio to float32's (median of the per-round ratios), the
bytes of state kept a param and the bytes a step must move a param (each array read once
and written once: 28 for float32 AdamW).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from test_quick_buckets import interleaved  # noqa: E402 (this folder is on sys.path)
from test_quick_rules import needs  # noqa: E402

# (params and grads, options, state bytes a param, bytes a step moves a param)
MODES = {
    "bfloat16, to nearest": ("bfloat16", {}, 8, 2 + 2 + 2 + 16),
    "bfloat16, stochastic": ("bfloat16", dict(stochastic_rounding=True), 8, 22),
    "bfloat16, master copy": ("bfloat16", dict(master_weights=True), 12, 2 + 2 + 8 + 16),
    "float32, bfloat16 state": ("float32", dict(state_dtype="bfloat16"), 4, 8 + 4 + 8),
    "bfloat16, bfloat16 state, stochastic": (
        "bfloat16", dict(stochastic_rounding=True, state_dtype="bfloat16"), 4, 2 + 2 + 2 + 8),
}


def stepping(dtype: str, options: dict, n: int) -> SimpleNamespace:
    """AdamW's step over one param of n elements, its grad set once."""
    import fastopt
    if dtype == "bfloat16":
        import ml_dtypes
        dtype = ml_dtypes.bfloat16
    p = np.zeros(n, dtype)
    g = np.full(n, 1e-3, np.float32).astype(dtype)
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
