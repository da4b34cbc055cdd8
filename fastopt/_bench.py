"""Measuring steps: the one place the benchmark script, asv suite and CLI time things.

Effective bandwidth counts the bytes a step must move (each array it reads once plus each
it writes once: 28 B/element for float32 Adam) over its time, and is compared with an
in-place read-modify-write of one array (8 B/element in float32) timed in the same process:
the roofline for a streaming kernel.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import optimizers


def seconds_per_call(fn: Callable[[], Any], min_time: float = 0.2, batches: int = 5,
                     sync: Callable[[], Any] = lambda: None) -> float:
    """Best mean time of one call over ``batches`` batches that each last ~min_time/batches."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-7)
    per_batch = max(1, int(min_time / batches / once))
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(per_batch):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / per_batch)
    return best


def host_copy_bandwidth(n: int, dtype: Any = np.float32, min_time: float = 0.2) -> float:
    """GB/s of a parallel in-place a *= s over n elements (read + write counted), Numba."""
    import numba

    a = np.ones(n, dtype=dtype)
    s = np.dtype(dtype).type(1.0)
    scale = _scale_in_place()
    return 2 * a.nbytes / seconds_per_call(lambda: scale(a, s), min_time) / 1e9


_SCALE: list = []


def _scale_in_place():
    if not _SCALE:
        import numba

        @numba.njit(parallel=True, error_model="numpy", nogil=True)
        def scale(a, s):
            for i in numba.prange(a.size):
                a[i] = a[i] * s

        _SCALE.append(scale)
    return _SCALE[0]


@dataclass
class StepTiming:
    rule: str
    backend: str
    n: int
    dtype: str
    seconds: float
    bytes_per_step: int

    @property
    def gbps(self) -> float:
        return self.bytes_per_step / self.seconds / 1e9


def time_step(rule: str, backend: str, n: int, dtype: Any = np.float32,
              min_time: float = 0.2, hyperparams: dict | None = None,
              xp: Any = np, sync: Callable[[], Any] = lambda: None) -> StepTiming:
    """Time ``opt.step(g)`` of one rule on one backend for one param of n elements."""
    hp = hyperparams or {}
    rng = np.random.default_rng(0)
    p = xp.asarray(rng.standard_normal(n).astype(dtype))
    g = xp.asarray((rng.standard_normal(n) * 1e-3).astype(dtype))
    opt = getattr(optimizers, rule)(p, backend=backend, **hp)
    seconds = seconds_per_call(lambda: opt.step(g), min_time, sync=sync)
    bytes_per_step = opt.rule.bytes_per_element(opt._hp, np.dtype(dtype).itemsize) * n
    return StepTiming(rule, backend, n, np.dtype(dtype).name, seconds, bytes_per_step)
