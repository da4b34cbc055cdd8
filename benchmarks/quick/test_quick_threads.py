"""numba's threads, three figures per policy (kernels/_threads.py says what fastopt does):

* alone: the median step of a process stepping back to back (a benchmark's loop);
* two processes: the same, two processes at once on a machine with as many cores as
  numba has threads (each one's median; the slower one reported);
* in a loop: the median step when 0.5 ms of the user's own single-thread work (the
  forward and backward pass) runs between steps, and the CPU time the process's other
  threads burn during that work (a thread left spinning on a core the user's code
  could use), per step.

Policies: fastopt's (its spin count and serial-or-parallel choice), libgomp's own spinning
(GOMP_SPINCOUNT=300000 with the parallel loop at every step), fastopt's spin count with
the parallel loop at every step (fastopt 0.1's policy), and the serial loop alone.

    pytest benchmarks/quick/test_quick_threads.py --benchmark-only
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_quick_rules import needs  # noqa: E402 (this folder is on sys.path)

STEPPING = """
import json, time, numpy as np, fastopt
from fastopt.kernels import _cpu
policy = {policy!r}
if policy == "serial":
    _cpu.PARALLEL_THRESHOLD_BYTES = 1 << 62
if policy == "parallel":                   # the parallel loop at every step
    _cpu.WARM_THRESHOLD_BYTES = 0
p = np.zeros({n}, np.float32); g = np.ones({n}, np.float32)
opt = fastopt.Adam(p, backend="numba")
for _ in range(20):
    opt.step(g)
x = np.ones(2000)

def users_own_code():                      # 0.5 ms of single-thread work
    t = time.perf_counter()
    while time.perf_counter() - t < 5e-4:
        x.sum()

if {in_loop}:
    steps, others = [], []
    for _ in range({rounds}):
        t = time.perf_counter(); opt.step(g); steps.append(time.perf_counter() - t)
        process, thread = time.process_time(), time.thread_time()
        users_own_code()
        others.append((time.process_time() - process) - (time.thread_time() - thread))
    print(json.dumps([float(np.median(steps)), float(np.mean(others))]))
else:
    steps, end = [], time.perf_counter() + {seconds}
    while time.perf_counter() < end:
        t = time.perf_counter(); opt.step(g); steps.append(time.perf_counter() - t)
    print(json.dumps([float(np.median(steps)), 0.0]))
"""
POLICIES = {"fastopt's": ("fastopt", {}), "libgomp's spinning": ("parallel", {"GOMP_SPINCOUNT":
                                                                              "300000"}),
            "parallel at every step": ("parallel", {}), "serial": ("serial", {})}


def measured(n: int, policy: str, copies: int, in_loop: bool, smoke: bool) -> list[list]:
    """[median seconds per step, other threads' CPU seconds per step] of each process."""
    name, env = POLICIES[policy]
    code = STEPPING.format(n=n, policy=name, in_loop=in_loop, rounds=20 if smoke else 300,
                           seconds=0.1 if smoke else 2.0)
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT",
                                                               "OMP_WAIT_POLICY")}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(clean, **env)) for _ in range(copies)]
    return [json.loads(p.communicate()[0]) for p in procs]


@pytest.mark.sizes(1e5, 1e6)
@pytest.mark.parametrize("policy", list(POLICIES))
def test_thread_policies(benchmark, figures, policy, n, smoke):
    needs("numba")
    result = {}

    def run() -> None:
        result["alone"] = measured(n, policy, 1, False, smoke)[0][0]
        result["together"] = max(r[0] for r in measured(n, policy, 2, False, smoke))
        result["loop"], result["other"] = measured(n, policy, 1, True, smoke)[0]

    benchmark.group = "thread policies"
    benchmark.pedantic(run, rounds=1)
    figures("Adam float32: alone, two processes at once, in a loop with the user's code",
            lambda: dict(policy=policy, n=f"{n:.0e}", us_alone=result["alone"] * 1e6,
                         us_two_processes=result["together"] * 1e6,
                         two_over_alone=result["together"] / result["alone"],
                         us_in_loop=result["loop"] * 1e6,
                         us_other_threads_cpu=result["other"] * 1e6))
