"""Many arrays in one bucket: the step against one flat array of the same total size, and
against torch's fused Adam on the CPU; and the per-call cost at 1e3 against NumPy.

    pytest benchmarks/quick/test_quick_buckets.py --benchmark-only

Each pair is measured interleaved: every round times a batch of one side right after a
batch of the other, and the figure is the median of the per-round ratios (a shared
machine's speed drifts between rounds, not within one).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastopt._bench import LAYOUTS, layout_case, seconds_per_call, step_case, torch_case
from fastopt.backends import BACKENDS
from fastopt.kernels import RULES

from test_quick_rules import batched, needs  # noqa: E402 (this folder is on sys.path)

ROUND_TIME = 0.05


def interleaved(benchmark, case, other, smoke: bool) -> tuple[float, float, float]:
    """Time ``case`` with pytest-benchmark, each round right after a batch of ``other``:
    (case's median seconds per step, other's, median of the per-round ratios case/other)."""
    k = max(1, int(ROUND_TIME / seconds_per_call(case.step, 0.01, repeat=1, sync=case.sync)))
    theirs = []
    benchmark.pedantic(batched(case, k), setup=lambda: theirs.append(
        seconds_per_call(other.step, ROUND_TIME, repeat=1, sync=other.sync)),
        rounds=1 if smoke else 11, warmup_rounds=0 if smoke else 1)
    if benchmark.disabled:        # --benchmark-disable: ran once, nothing was timed
        return (float("nan"),) * 3
    ours = [t / k for t in benchmark.stats.stats.data]
    theirs = theirs[-len(ours):]
    return float(np.median(ours)), float(np.median(theirs)), \
        float(np.median([a / b for a, b in zip(ours, theirs)]))


def layouts(smoke: bool) -> list[str]:
    return list(LAYOUTS)[:1] if smoke else list(LAYOUTS)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_many_arrays_over_flat(benchmark, figures, backend, layout, smoke):
    """Adam float32 over a layout's arrays against one flat array of the same size."""
    needs(backend)
    if layout not in layouts(smoke):
        pytest.skip("--smoke: the first layout only")
    many = layout_case("Adam", backend, layout)
    flat = layout_case("Adam", backend, layout, flat=True)
    benchmark.group = f"many arrays: {layout}"
    many_s, flat_s, ratio = interleaved(benchmark, many, flat, smoke)
    figures("many arrays: Adam float32, step time over one flat array's (median of rounds)",
            lambda: dict(layout=layout, backend=backend, arrays=len(LAYOUTS[layout]),
                         elements=many.n, us_many=many_s * 1e6, us_flat=flat_s * 1e6,
                         over_flat=ratio))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_many_arrays_against_torch_fused_adam(benchmark, figures, layout, smoke):
    """fastopt's numba Adam against torch.optim.Adam(fused=True), both on the CPU."""
    needs("numba")
    pytest.importorskip("torch")
    if layout not in layouts(smoke):
        pytest.skip("--smoke: the first layout only")
    ours = layout_case("Adam", "numba", layout)
    theirs = torch_case("Adam", layout, "fused")
    benchmark.group = f"against torch fused Adam (CPU): {layout}"
    ours_s, torch_s, ratio = interleaved(benchmark, ours, theirs, smoke)
    figures("against torch.optim.Adam(fused=True) on the CPU (median of rounds)",
            lambda: dict(layout=layout, us_fastopt=ours_s * 1e6, us_torch=torch_s * 1e6,
                         torch_over_fastopt=1 / ratio))


@pytest.mark.parametrize("rule", [name for name, r in RULES.items() if r.takes_any_shape])
def test_small_array_over_numpy(benchmark, figures, rule, smoke):
    """One 1e3-element float32 array: numba's whole step (Python included) against the
    NumPy backend's."""
    needs("numba")
    fast, slow = step_case(rule, "numba", 1000), step_case(rule, "numpy", 1000)
    benchmark.group = "one array of 1e3: numba against numpy"
    fast_s, slow_s, ratio = interleaved(benchmark, fast, slow, smoke)
    figures("one array of 1e3 (median of rounds)",
            lambda: dict(rule=rule, us_numba=fast_s * 1e6, us_numpy=slow_s * 1e6,
                         speedup=1 / ratio))
