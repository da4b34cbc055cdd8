"""Measuring steps: the one place the benchmark scripts, the asv suite and
``python -m fastopt bench`` time things.

Effective bandwidth counts the bytes a step must move (each array it reads once plus each
it writes once: 28 B/element for float32 Adam) over its time. The roofline it is compared
with is measured in the same process: on the host an in-place read-modify-write of one
array (8 B/element in float32), on the GPU a device-to-device copy.
"""
from __future__ import annotations

import inspect

import functools
import time
import timeit
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import optimizers
from .backends import available_backends
from .problems import param_view
from .kernels._cpu import PARALLEL_THRESHOLD_BYTES, prange, serial_and_parallel
from .kernels._precision import bfloat16, compute_dtype


def seconds_per_call(fn: Callable[[], Any], min_time: float = 0.2, repeat: int = 5,
                     sync: Callable[[], Any] = lambda: None) -> float:
    """Best mean time of one call of ``fn`` over ``repeat`` timeit measurements of about
    ``min_time / repeat`` each. ``sync`` (waiting for the device) runs whenever timeit
    reads its clock, so queued device work is counted once per measurement, not per call."""
    def clock() -> float:
        sync()
        return time.perf_counter()

    timer = timeit.Timer(fn, timer=clock)
    once = timer.timeit(number=1) or 1e-9          # also warms the call
    number = max(1, int(min_time / repeat / once))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def array_module(backend: str) -> tuple[Any, Callable[[], Any]]:
    """(numpy or cupy, a function that waits for the device) for ``backend``."""
    if backend == "cupy":
        import cupy
        return cupy, cupy.cuda.Device().synchronize
    return np, lambda: None


def minimize_ops(backend: str, n: int, dtype: Any = np.float64) -> Any:
    """minimize's kernels on ``backend`` for n elements (numba's at every size, as the
    kernel benchmarks measure them); NotImplementedError where the backend is missing."""
    from .kernels import lbfgs

    if backend not in available_backends():
        raise NotImplementedError(f"backend {backend!r} is not available here")
    if backend == "cupy":
        return lbfgs.CupyOps(n, dtype)
    return lbfgs.HostOps(n, dtype, compiled=backend == "numba", by_size=False)


def rosenbrock_on(backend: str, n: int) -> tuple[Any, Callable]:
    """(x0, fun) of extended Rosenbrock from (-1.2, 1, ...) on ``backend``'s arrays: fun(x)
    returns (f, g) with g on the backend; NotImplementedError where it is missing."""
    from .problems import rosenbrock

    if backend not in available_backends():
        raise NotImplementedError(f"backend {backend!r} is not available here")
    xp, _ = array_module(backend)

    def fun(x):
        f, g = rosenbrock(x.get() if hasattr(x, "get") else x)
        return f, xp.asarray(g)
    return xp.asarray(np.tile([-1.2, 1.0], n // 2)), fun


def _scale(a, s):
    for i in prange(a.size):
        a[i] = a[i] * s


@functools.lru_cache(maxsize=None)
def _scale_in_place(parallel: bool):
    """The loop a *= s compiled by numba like the kernels (serial or parallel); NumPy's
    in-place multiply where numba is missing."""
    try:
        return serial_and_parallel(_scale)[parallel]
    except ImportError:
        return lambda a, s: np.multiply(a, s, out=a)


def host_copy_bandwidth(n: int, dtype: Any = np.float32, min_time: float = 0.2,
                        repeat: int = 5) -> float:
    """GB/s of an in-place a *= s over n elements (read + write counted), threaded as the
    kernels are at this size (serially below PARALLEL_THRESHOLD_BYTES)."""
    a = np.ones(n, dtype=dtype)
    s = np.dtype(dtype).type(1.0)
    scale = _scale_in_place(2 * a.nbytes >= PARALLEL_THRESHOLD_BYTES)
    return 2 * a.nbytes / seconds_per_call(lambda: scale(a, s), min_time, repeat) / 1e9


def device_copy_bandwidth(n: int, dtype: Any = np.float32, min_time: float = 0.2,
                          repeat: int = 5) -> float:
    """GB/s of a device-to-device copy of n elements (read + write counted)."""
    cp, sync = array_module("cupy")
    a, b = cp.ones(n, dtype=dtype), cp.empty(n, dtype=dtype)
    gbps = 2 * a.nbytes / seconds_per_call(lambda: cp.copyto(b, a), min_time, repeat,
                                           sync=sync) / 1e9
    del a, b
    return gbps


def copy_bandwidth(backend: str, n: int, dtype: Any = np.float32, min_time: float = 0.2,
                   repeat: int = 5) -> float:
    """The roofline of ``backend``'s device for n elements of ``dtype`` (``repeat=1``: the
    mean of one batch rather than the best of several)."""
    dtype = compute_dtype(_dtype(dtype))       # (16-bit params: a float32 copy's figure)
    if backend == "cupy":
        return device_copy_bandwidth(n, dtype, min_time, repeat)
    return host_copy_bandwidth(n, dtype, min_time, repeat)


@dataclass
class StepCase:
    """One rule's optimizer on one backend with one param of n elements, ready to step."""

    rule: str
    backend: str
    n: int
    dtype: str
    step: Callable[[], None]
    sync: Callable[[], Any]
    bytes_per_step: int


def step_case(rule: str, backend: str, n: int, dtype: Any = np.float32,
              hyperparams: dict | None = None, options: tuple = (),
              shape: tuple | None = None) -> StepCase:
    """Build the case (``options``: the optimizer's keyword-only options, precision's and
    max_grad_norm, as (name, value) pairs; ``shape``: the param's, of n elements, where
    not a vector); NotImplementedError when ``backend`` cannot run here."""
    if backend not in available_backends():
        raise NotImplementedError(f"backend {backend!r} is not available here")
    xp, sync = array_module(backend)
    rng = np.random.default_rng(0)
    dtype = _dtype(dtype)
    shape = shape or param_view(rule, np.empty(n)).shape     # (Muon: a matrix of n)
    p = xp.asarray(rng.standard_normal(shape).astype(dtype))
    g = xp.asarray((rng.standard_normal(shape) * 1e-3).astype(dtype))
    opt = getattr(optimizers, rule)(p, backend=backend, **(hyperparams or {}), **dict(options))
    state_itemsize = compute_dtype(dtype).itemsize       # (16-bit params: float32 state)
    bytes_per_step = opt.rule.bytes_per_element(opt._groups[0].hp, dtype.itemsize,
                                                state_itemsize) * n
    return StepCase(rule, backend, n, dtype.name, lambda: opt.step(g), sync, bytes_per_step)


def _dtype(dtype: Any) -> np.dtype:
    """A NumPy dtype, "bfloat16" (ml_dtypes') included."""
    return bfloat16() if isinstance(dtype, str) and dtype == "bfloat16" else np.dtype(dtype)


def memory_needed(rule: str, backend: str, n: int, dtype: Any = np.float32) -> int:
    """Bytes a bench case of n elements holds at once, at most: the param, grad and state
    (the bytes a step moves bound them) and the float64 draw they start from, plus, for
    the NumPy reference, its temporaries (four arrays)."""
    rule_ = getattr(optimizers, rule).rule
    dtype = _dtype(dtype)
    itemsize = dtype.itemsize
    per_element = rule_.bytes_per_element(rule_.checked(rule, rule_.defaults), itemsize,
                                          compute_dtype(dtype).itemsize) + 8
    return n * (per_element + (4 * itemsize if backend == "numpy" else 0))


def memory_available(backend: str) -> int | None:
    """Bytes free for a case on ``backend``: the GPU's free memory for cupy, the host's
    available memory (Linux's MemAvailable) otherwise; None where it cannot be told."""
    if backend == "cupy":
        import cupy
        return int(cupy.cuda.runtime.memGetInfo()[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


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


def measure_step(rule: str, backend: str, n: int, dtype: Any = np.float32,
                 min_time: float = 0.2, hyperparams: dict | None = None) -> StepTiming:
    """Time ``opt.step(g)`` of one rule on one backend (waiting for the device)."""
    case = step_case(rule, backend, n, dtype, hyperparams)
    seconds = seconds_per_call(case.step, min_time, sync=case.sync)
    return StepTiming(rule, backend, n, case.dtype, seconds, case.bytes_per_step)


# -- many arrays ------------------------------------------------------------------------
def _resnet18_shapes() -> list[tuple[int, ...]]:
    """The 62 parameter shapes of torchvision's ResNet-18 (11.7M parameters), in order."""
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7), (64,), (64,)]
    width_in = 64
    for width in (64, 128, 256, 512):
        for block in range(2):
            c_in = width_in if block == 0 else width
            shapes += [(width, c_in, 3, 3), (width,), (width,), (width, width, 3, 3), (width,),
                       (width,)]
            if block == 0 and c_in != width:          # the downsampling shortcut
                shapes += [(width, c_in, 1, 1), (width,), (width,)]
        width_in = width
    return shapes + [(1000, 512), (1000,)]


LAYOUTS: dict[str, list[tuple[int, ...]]] = {
    "100x100": [(100,)] * 100,
    "200x5000": [(5000,)] * 200,
    "resnet18": _resnet18_shapes(),
}


def layout_case(rule: str, backend: str, layout: str, dtype: Any = np.float32,
                flat: bool = False) -> StepCase:
    """A step over the arrays of ``layout`` (one list of params), or with ``flat`` over
    one array of the same total size: what bucketing costs is the ratio of the two."""
    if backend not in available_backends():
        raise NotImplementedError(f"backend {backend!r} is not available here")
    xp, sync = array_module(backend)
    shapes = LAYOUTS[layout]
    if flat:
        shapes = [(sum(int(np.prod(s)) for s in shapes),)]
    rng = np.random.default_rng(0)
    params = [xp.asarray(rng.standard_normal(s).astype(dtype)) for s in shapes]
    grads = [xp.asarray((rng.standard_normal(s) * 1e-3).astype(dtype)) for s in shapes]
    opt = getattr(optimizers, rule)(params, backend=backend)
    n = sum(p.size for p in params)
    bytes_per_step = opt.rule.bytes_per_element(opt._groups[0].hp, np.dtype(dtype).itemsize) * n
    return StepCase(rule, backend, n, np.dtype(dtype).name, lambda: opt.step(grads), sync,
                    bytes_per_step)


def torch_case(rule: str, layout: str, impl: str = "fastopt", device: str = "cpu",
               shapes: tuple | None = None) -> StepCase:
    """A torch optimizer's ``step()`` over the arrays of ``layout`` (or of ``shapes``),
    grads already set: ``impl`` is "fastopt" (fastopt.torch's class), "fused" or "foreach"
    (torch.optim's class with that option) or "default" (its defaults); ImportError without
    torch, NotImplementedError where torch has no such class or option."""
    import torch

    params = [torch.zeros(s, device=device, requires_grad=True)
              for s in (LAYOUTS[layout] if shapes is None else shapes)]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    torch_name = optimizers.CLASSES[rule].rule.torch_class
    if impl == "fastopt":
        import fastopt.torch
        opt = getattr(fastopt.torch, torch_name or rule)(params)
    else:
        cls = getattr(torch.optim, torch_name or "", None)
        if cls is None or impl != "default" and impl not in inspect.signature(cls).parameters:
            raise NotImplementedError(f"torch.optim has no {rule} with {impl}=True")
        opt = cls(params, **({} if impl == "default" else {impl: True}))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    n = sum(p.numel() for p in params)
    rule_ = optimizers.CLASSES[rule].rule
    bytes_per_step = rule_.bytes_per_element(rule_.checked(rule, rule_.defaults), 4) * n
    return StepCase(rule, f"torch-{impl}-{device}", n, "float32", opt.step, sync,
                    bytes_per_step)
