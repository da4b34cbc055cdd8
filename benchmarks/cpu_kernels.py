"""Numba backend figures on this machine: ratios measured in one run.

    python benchmarks/cpu_kernels.py            # all sections
    python benchmarks/cpu_kernels.py roofline   # n=1e7 float32: GB/s vs a parallel RMW, x NumPy
    python benchmarks/cpu_kernels.py small      # n=1e3: opt.step, numba vs numpy
    python benchmarks/cpu_kernels.py sweep      # serial vs parallel loop, 1e3..1e7
    python benchmarks/cpu_kernels.py latency    # import time, construction, first steps

The roofline section times the copy right before and after each timing of the rule and
reports the median of the per-round ratios, so both see the same machine state (a shared
VM's memory bandwidth drifts by tens of percent within a minute).
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

import fastopt
from fastopt._bench import host_copy_bandwidth, measure_step, seconds_per_call
from fastopt.kernels import RULES
from fastopt.kernels._cpu import PARALLEL_THRESHOLD_BYTES, CpuKernel

RULE_NAMES = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "Nadam"]


def roofline(n: int = 10_000_000, rounds: int = 7) -> None:
    print(f"n = {n:.0e} float32: effective bandwidth (bytes the rule must move / time) against "
          "an in-place parallel read-modify-write of one array timed just before and after "
          f"it; medians of {rounds} rounds; the NumPy backend for the speedup\n")
    print(f"{'rule':<9} {'B/elem':>6} {'numba ms':>9} {'GB/s':>6} {'copy GB/s':>10} "
          f"{'of copy':>8} {'numpy ms':>9} {'x numpy':>8}")
    for rule in RULE_NAMES:
        times, copies, ratios = [], [], []
        before = host_copy_bandwidth(n, min_time=0.1)
        for _ in range(rounds):
            t = measure_step(rule, "numba", n, min_time=0.15)
            after = host_copy_bandwidth(n, min_time=0.1)
            copy = (before + after) / 2
            times.append(t.seconds)
            copies.append(copy)
            ratios.append(t.gbps / copy)
            before = after
        seconds = float(np.median(times))
        slow = measure_step(rule, "numpy", n, min_time=0.5)
        print(f"{rule:<9} {t.bytes_per_step // n:>6} {seconds * 1e3:>9.2f} "
              f"{t.bytes_per_step / seconds / 1e9:>6.1f} {np.median(copies):>10.1f} "
              f"{np.median(ratios):>8.2f} {slow.seconds * 1e3:>9.2f} "
              f"{slow.seconds / seconds:>8.1f}", flush=True)


def small(n: int = 1_000) -> None:
    print(f"\nn = {n} float32: opt.step per call (Python overhead included)\n")
    print(f"{'rule':<9} {'numpy us':>9} {'numba us':>9} {'x numpy':>8}")
    for rule in RULE_NAMES:
        slow = min(measure_step(rule, "numpy", n, min_time=0.1).seconds for _ in range(3))
        fast = min(measure_step(rule, "numba", n, min_time=0.1).seconds for _ in range(3))
        print(f"{rule:<9} {slow * 1e6:>9.2f} {fast * 1e6:>9.2f} {slow / fast:>8.1f}", flush=True)


def sweep(rules=("adam", "sgd", "adagrad")) -> None:
    print(f"\nserial vs parallel Numba loop (float32, kernel call only); parallel from "
          f"{PARALLEL_THRESHOLD_BYTES:,} bytes moved per step\n")
    print(f"{'rule':<8} {'n':>11} {'serial us':>10} {'parallel us':>12} {'par speedup':>12}")
    rng = np.random.default_rng(0)
    for name in rules:
        rule = RULES[name]
        flags = {k: False for k in rule.variant(_default_hp(name))}
        kernel = CpuKernel(rule.numba_loop, flags, 2 + len(rule.state), len(rule.scalars))
        for n in (1_000, 10_000, 30_000, 60_000, 100_000, 200_000, 1_000_000, 10_000_000):
            arrays = [np.abs(rng.standard_normal(n)).astype(np.float32) * 1e-3
                      for _ in range(2 + len(rule.state))]
            scalars = np.full(len(rule.scalars), 0.5, np.float32)
            kernel.for_array(arrays[0], 0)                            # compiles serial
            kernel.for_array(arrays[0], PARALLEL_THRESHOLD_BYTES)     # compiles parallel
            ts = seconds_per_call(lambda: kernel.serial(*arrays, scalars), 0.2)
            tp = seconds_per_call(lambda: kernel.parallel(*arrays, scalars), 0.2)
            print(f"{name:<8} {n:>11,} {ts * 1e6:>10.1f} {tp * 1e6:>12.1f} {ts / tp:>12.2f}",
                  flush=True)


def _default_hp(name: str) -> dict:
    opt = getattr(fastopt, {"sgd": "SGD"}.get(name, name.capitalize()))(np.zeros(1), backend="numpy")
    return opt._hp


LATENCY_SCRIPT = """
import time
t0 = time.perf_counter()
import numpy as np, fastopt
t1 = time.perf_counter()
p = np.random.default_rng(0).standard_normal({n}).astype(np.{dtype}); g = p * 1e-3
t2 = time.perf_counter()
opt = fastopt.Adam(p, backend="numba")
t3 = time.perf_counter()
opt.step(g)
t4 = time.perf_counter()
steady = min((lambda s: (opt.step(g), time.perf_counter() - s)[1])(time.perf_counter())
             for _ in range(50))
print(f"{{t1 - t0:.3f}} {{t3 - t2:.3f}} {{(t4 - t3) * 1e6:.0f}} {{steady * 1e6:.0f}}")
"""


def latency() -> None:
    print("\nfresh processes: import, Adam construction (compiles or loads numba's cache), "
          "first step, best later step\n")
    print(f"{'case':<26} {'import s':>9} {'construct s':>12} {'1st step us':>12} {'steady us':>10}")
    for n, dtype in ((1_000, "float32"), (1_000, "float64"), (1_000_000, "float32")):
        for run in ("first run", "cached"):
            out = subprocess.run([sys.executable, "-c", LATENCY_SCRIPT.format(n=n, dtype=dtype)],
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"{f'n={n:.0e} {dtype} {run}':<26} {out[0]:>9} {out[1]:>12} {out[2]:>12} "
                  f"{out[3]:>10}", flush=True)


SECTIONS = {"roofline": roofline, "small": small, "sweep": sweep, "latency": latency}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SECTIONS)
    start = time.perf_counter()
    for name in chosen:
        SECTIONS[name]()
    print(f"\n({time.perf_counter() - start:.0f} s)")
