"""Every registered rule: time per step, the copy roofline, serial vs parallel, start-up.

    pytest benchmarks/quick/test_quick_rules.py --benchmark-only [-k ...]
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from fastopt._bench import copy_bandwidth, seconds_per_call, step_case
from fastopt.backends import BACKENDS, available_backends
from fastopt.kernels import RULES
from fastopt.kernels._cpu import PARALLEL_THRESHOLD_BYTES, CpuKernel

RULE_NAMES = [name for name, rule in RULES.items() if rule.takes_any_shape]   # (Muon: its
#                                                       own benchmark, test_quick_muon.py)
COMPILED = [b for b in BACKENDS if b != "numpy"]


def needs(backend: str) -> None:
    if backend not in available_backends():
        pytest.skip(f"backend {backend!r} is not available here")


def steps_per_call(backend: str) -> int:
    """A batch of steps per timed call on the GPU, where one sync ends the batch (what a
    training loop sees); one step on the host."""
    return 20 if backend == "cupy" else 1


def batched(case, k: int):
    def run() -> None:
        for _ in range(k):
            case.step()
        case.sync()
    return run


@pytest.mark.sizes(1e3, 1e5, 1e7)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_step(benchmark, figures, rule, backend, n):
    """opt.step on one float32 param; grouped by rule and size, so the relative column is
    each backend's time over the fastest one's (the NumPy reference's speedup, inverted)."""
    needs(backend)
    case = step_case(rule, backend, n)
    k = steps_per_call(backend)
    benchmark.group = f"{rule} n={n:.0e}"
    benchmark.extra_info.update(steps_per_call=k, bytes_per_step=case.bytes_per_step)
    benchmark(batched(case, k))

    def row() -> dict:   # fastest: the cost without interference; median: what a loop sees
        fastest, median = benchmark.stats.stats.min / k, benchmark.stats.stats.median / k
        return dict(rule=rule, backend=backend, n=f"{n:.0e}", us_fastest=fastest * 1e6,
                    us_median=median * 1e6, GBps_median=case.bytes_per_step / median / 1e9)
    figures("step: time per opt.step", row)


@pytest.mark.sizes(1e7, 1e8)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_fraction_of_copy(benchmark, figures, rule, backend, n, smoke):
    """Effective bandwidth (the bytes a step must move / its time) over the copy roofline
    (host: an in-place a *= s threaded like the kernels; GPU: a device copy). Each round
    times a ~50 ms batch of steps right after a ~50 ms batch of copies, and the figure is
    the median of the per-round ratios: a shared machine's bandwidth drifts."""
    needs(backend)
    if (n >= 1e8) != (backend == "cupy") and not smoke:
        pytest.skip("1e7 on the host, 1e8 on the GPU")
    case = step_case(rule, backend, n)
    k = max(1, int(0.05 / seconds_per_call(case.step, 0.01, repeat=1, sync=case.sync)))
    copies = []
    benchmark.group = f"fraction of copy n={n:.0e} ({k} steps per round)"
    benchmark.pedantic(batched(case, k), setup=lambda: copies.append(
        copy_bandwidth(backend, n, min_time=0.05, repeat=1)), rounds=3 if smoke else 11,
        warmup_rounds=1)

    def row() -> dict:
        rounds = np.array(benchmark.stats.stats.data) / k
        fractions = case.bytes_per_step / rounds / 1e9 / np.array(copies[-len(rounds):])
        return dict(rule=rule, backend=backend, n=f"{n:.0e}",
                    B_per_elem=case.bytes_per_step // n,
                    GBps=case.bytes_per_step / np.median(rounds) / 1e9,
                    copy_GBps=float(np.median(copies)), of_copy=float(np.median(fractions)))
    figures("fraction of copy: median of per-round ratios", row)


@pytest.mark.sizes(1e3, 1e4, 3e4, 6e4, 1e5, 2e5, 1e6)
@pytest.mark.parametrize("loop", ["serial", "parallel"])
@pytest.mark.parametrize("rule", ["Adam", "SGD", "Adagrad"])
def test_serial_vs_parallel(benchmark, rule, loop, n):
    """The numba loop alone, serial and parallel: where the parallel one starts to win
    fixes PARALLEL_THRESHOLD_BYTES (kernels/_cpu.py)."""
    needs("numba")
    r = RULES[rule]
    kernel = CpuKernel(r, {flag: False for flag in r.flags})
    rng = np.random.default_rng(0)
    p, g = (np.abs(rng.standard_normal(n)).astype(np.float32) * 1e-3 for _ in range(2))
    state = tuple(np.full(n, 1e-3, np.float32) for _ in r.state)
    scalars = r.kernel_scalars([0.5] * len(r.scalars), np.float32)
    moved = r.bytes_per_element(r.checked(rule, r.defaults), 4) * n
    benchmark.group = f"{rule} loop n={n:.0e} ({moved / 2**20:.2f} MiB; parallel from "\
                      f"{PARALLEL_THRESHOLD_BYTES / 2**20:.0f} MiB)"
    fn = kernel.for_array(p, g, PARALLEL_THRESHOLD_BYTES if loop == "parallel" else 0)
    benchmark(fn, state, scalars)


START_UP = """
import time
t0 = time.perf_counter()
import numpy as np, fastopt
t1 = time.perf_counter()
p = np.random.default_rng(0).standard_normal({n}).astype(np.float32); g = p * 1e-3
t2 = time.perf_counter()
opt = fastopt.{rule}(p, backend="numba")
t3 = time.perf_counter()
opt.step(g)
t4 = time.perf_counter()
steady = min((lambda s: (opt.step(g), time.perf_counter() - s)[1])(time.perf_counter())
             for _ in range(50))
print(t1 - t0, t3 - t2, t4 - t3, steady)
"""


@pytest.mark.sizes(1e3, 1e6)
@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_start_up(benchmark, figures, tmp_path_factory, cache, n):
    """A fresh process: import, Adam's construction (numba compiles, or loads its on-disk
    cache), the first step and the best of 50 later ones. The timing is the whole process."""
    needs("numba")
    cache_dir = tmp_path_factory.mktemp("numba_cache") if cache == "cold" else None
    env = dict(os.environ, **({"NUMBA_CACHE_DIR": str(cache_dir)} if cache_dir else {}))
    code = START_UP.format(n=n, rule="Adam")
    runs = []

    def fresh_process() -> None:
        if cache_dir:                   # each round starts from an empty cache
            for f in cache_dir.rglob("*.nb*"):
                f.unlink()
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout
        runs.append([float(x) for x in out.split()])

    benchmark.group = "start-up (whole process)"
    benchmark.pedantic(fresh_process, rounds=3, warmup_rounds=0 if cache_dir else 1)

    def row() -> dict:
        imp, construct, first, steady = np.median(np.array(runs), axis=0)
        return dict(rule="Adam", n=f"{n:.0e}", cache=cache, import_s=imp,
                    construct_s=construct, first_step_us=first * 1e6, steady_us=steady * 1e6)
    figures("start-up: medians of fresh processes", row)


@pytest.mark.sizes(1e4, 1e6, 1e8)
def test_torch_fused_adam(benchmark, n):
    """torch.optim.Adam(fused=True) on the GPU, grouped with fastopt's Adam of the same size."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    p = torch.zeros(n, device="cuda", requires_grad=True)
    p.grad = torch.full_like(p, 1e-3)
    opt = torch.optim.Adam([p], lr=1e-3, fused=True)

    def run() -> None:
        for _ in range(steps_per_call("cupy")):
            opt.step()
        torch.cuda.synchronize()

    benchmark.group = f"Adam n={n:.0e}"
    benchmark(run)
