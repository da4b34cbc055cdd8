"""Two processes stepping at once on a machine with as many cores as numba has threads: each
process's time per step against its time alone (kernels/_threads.py says what fastopt sets).

    pytest benchmarks/quick/test_quick_threads.py --benchmark-only
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_quick_rules import needs  # noqa: E402 (this folder is on sys.path)

STEPPING = """
import sys, time, numpy as np, fastopt
p = np.zeros({n}, np.float32); g = np.ones({n}, np.float32)
opt = fastopt.Adam(p, backend="numba")
for _ in range(20):
    opt.step(g)
times, end = [], time.perf_counter() + {seconds}
while time.perf_counter() < end:
    t = time.perf_counter(); opt.step(g); times.append(time.perf_counter() - t)
print(np.median(times) * 1e6)
"""
SETTINGS = {"fastopt's": {}, "libgomp's default spin": {"GOMP_SPINCOUNT": "300000"}}


def per_step_us(n: int, seconds: float, copies: int, env: dict) -> list[float]:
    """Median us per step of each of ``copies`` processes started together."""
    code = STEPPING.format(n=n, seconds=seconds)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, **env)) for _ in range(copies)]
    return [float(p.communicate()[0]) for p in procs]


@pytest.mark.sizes(1e5)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_two_processes_at_once(benchmark, figures, setting, n, smoke):
    needs("numba")
    seconds = 0.2 if smoke else 3.0
    result = {}

    def run() -> None:
        result["alone"] = per_step_us(n, seconds, 1, SETTINGS[setting])[0]
        result["together"] = max(per_step_us(n, seconds, 2, SETTINGS[setting]))

    benchmark.group = "two processes at once"
    benchmark.pedantic(run, rounds=1)
    figures("two processes x Adam float32 at once (median us per step)",
            lambda: dict(setting=setting, n=f"{n:.0e}", us_alone=result["alone"],
                         us_together=result["together"],
                         slowdown=result["together"] / result["alone"]))
