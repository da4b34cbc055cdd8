"""Backends: where the arrays live and which implementation of a rule runs.

The backend is resolved once, when an optimizer is constructed; the optimizer then calls
the bound kernel directly every step.

* ``numpy``  the plain-NumPy reference (always available);
* ``numba``  fused, multithreaded CPU kernels (needs numba);
* ``cupy``   fused CUDA elementwise kernels (needs cupy and a CUDA device).

``backend="auto"`` picks cupy for device arrays (anything with ``__cuda_array_interface__``)
and numba for NumPy arrays, numpy when numba is not installed. A backend named explicitly
that cannot run raises :class:`BackendUnavailableError` saying what to install; it never
falls back silently.
"""
from __future__ import annotations

import functools
import importlib.util
from typing import Any, Callable, Mapping, Sequence

import numpy as np

BACKENDS = ("numpy", "numba", "cupy")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (a package or a device is missing)."""


def _type_name(x: Any) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def is_device_array(x: Any) -> bool:
    return hasattr(x, "__cuda_array_interface__")


class HostBackend:
    """Arrays are NumPy arrays; subclasses choose the kernel."""

    name = "numpy"

    def check_array(self, x: Any, what: str) -> np.ndarray:
        """``x`` as a NumPy array this backend can update, or a TypeError naming ``what``."""
        if not isinstance(x, np.ndarray):
            where = " (a device array)" if is_device_array(x) else ""
            raise TypeError(f"{what} must be a numpy.ndarray for backend '{self.name}', got "
                            f"{_type_name(x)}{where}")
        return x

    def zeros(self, n: int, dtype: np.dtype, fill: float = 0.0) -> np.ndarray:
        return np.full(n, fill, dtype=dtype)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.array(x, copy=True)

    def copy_from_numpy(self, dst: np.ndarray, src: np.ndarray) -> None:
        np.copyto(dst, src.reshape(dst.shape))

    def writeable(self, x: np.ndarray) -> bool:
        return x.flags.writeable

    def grad_matches(self, g: Any, p: np.ndarray) -> bool:
        """Whether ``g`` can be used as the gradient of ``p`` (the per-step fast check)."""
        return (isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype == p.dtype
                and g.flags.c_contiguous)

    def device_of(self, x: Any) -> str:
        return "host"

    def address(self, x: np.ndarray) -> int:
        return x.__array_interface__["data"][0]

    def kernel(self, rule: Any, hp: Mapping[str, Any], param: Any) -> Callable[..., None]:
        """The step function ``f(p, g, state, scalars)`` of ``rule`` for ``param`` (``state``:
        a tuple of every state slot the rule declares); a partial, so it pickles."""
        return functools.partial(_reference_step, rule.reference, rule.variant(hp))


def _reference_step(reference: Callable[..., None], flags: Mapping[str, bool], p: Any, g: Any,
                    state: tuple, scalars: Any) -> None:
    reference(p, g, *state, scalars, **flags)


class NumbaBackend(HostBackend):
    """NumPy arrays, updated by the rules' fused Numba loops (compiled at construction)."""

    name = "numba"

    def __init__(self) -> None:
        self._kernels: dict = {}

    def kernel(self, rule: Any, hp: Mapping[str, Any], param: Any) -> Callable[..., None]:
        from .kernels._cpu import CpuKernel

        flags = rule.variant(hp)
        key = (rule.cpu_element, tuple(flags.items()))
        if key not in self._kernels:
            self._kernels[key] = CpuKernel(rule, flags)
        bytes_per_step = rule.bytes_per_element(hp, param.itemsize) * param.size
        return self._kernels[key].for_array(param, bytes_per_step)


class CupyBackend(HostBackend):
    """CuPy arrays (or any ``__cuda_array_interface__`` object, viewed without a copy),
    updated by the rules' CUDA elementwise kernels. A step launches one kernel per param
    and never synchronises with the host."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        self.cp = cupy
        self._kernels: dict = {}

    def check_array(self, x: Any, what: str) -> Any:
        if isinstance(x, self.cp.ndarray):
            return x
        if is_device_array(x) and not isinstance(x, np.ndarray):
            return self.cp.asarray(x)           # zero copy: shares the device memory
        where = " (a host array: move it with cupy.asarray)" if isinstance(x, np.ndarray) else ""
        raise TypeError(f"{what} must be a device array (cupy.ndarray or an object with "
                        f"__cuda_array_interface__) for backend 'cupy', got "
                        f"{_type_name(x)}{where}")

    def writeable(self, x: Any) -> bool:
        return True

    def zeros(self, n: int, dtype: np.dtype, fill: float = 0.0) -> Any:
        return self.cp.full(n, fill, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return self.cp.asnumpy(x)

    def copy_from_numpy(self, dst: Any, src: np.ndarray) -> None:
        dst.set(np.ascontiguousarray(src).reshape(dst.shape))

    def address(self, x: Any) -> int:
        return x.data.ptr

    def grad_matches(self, g: Any, p: Any) -> bool:
        return (isinstance(g, self.cp.ndarray) and g.shape == p.shape and g.dtype == p.dtype
                and g.flags.c_contiguous and g.device == p.device)

    def device_of(self, x: Any) -> str:
        return f"cuda:{x.device.id}"

    def kernel(self, rule: Any, hp: Mapping[str, Any], param: Any) -> Callable[..., None]:
        from .kernels._gpu import elementwise_kernel, kernel_source

        source = kernel_source(rule, rule.variant(hp), hp)
        if source not in self._kernels:
            self._kernels[source] = elementwise_kernel(source)
        launch = self._kernels[source]
        used = [rule.state.index(s) for s in source.out_params[1:]]
        block = source.block_size

        def step(p, g, state, scalars):
            launch(g, *scalars, p, *[state[k] for k in used], block_size=block)

        # Compile for this dtype now (or load cupy's disk cache): no step waits for NVRTC.
        scratch = self.cp.zeros(1, dtype=param.dtype)
        step(scratch.copy(), scratch, tuple(scratch.copy() for _ in rule.state),
             np.zeros(len(rule.scalars), param.dtype))
        return step


NUMPY = HostBackend()


@functools.lru_cache(maxsize=None)
def _shared(cls: type) -> HostBackend:
    """One backend object per class per process: its compiled kernels are shared."""
    return cls()


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _make_backend(name: str) -> HostBackend:
    """The backend object for ``name``, or BackendUnavailableError saying what is missing."""
    if name == "numpy":
        return NUMPY
    if name == "numba":
        if not _module_available("numba"):
            raise BackendUnavailableError(
                "backend 'numba' needs numba: pip install numba (or fastopt[numba])")
        return _shared(NumbaBackend)
    if name == "cupy":
        if not _module_available("cupy"):
            raise BackendUnavailableError(
                "backend 'cupy' needs cupy and a CUDA device: pip install cupy-cuda12x "
                "(or fastopt[gpu])")
        if not _cuda_device_present():
            raise BackendUnavailableError("backend 'cupy' needs a CUDA device; cupy found none")
        return _shared(CupyBackend)
    raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")


@functools.lru_cache(maxsize=None)
def _cuda_device_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:       # no driver, no device, or a broken CUDA install
        return False


def available_backends() -> list[str]:
    """The backends that can run on this machine, fastest host backend last."""
    names = []
    for name in BACKENDS:
        try:
            _make_backend(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


def resolve_backend(name: str, params: Sequence[Any]) -> HostBackend:
    """The backend for ``name`` ("auto" decides from the arrays)."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {_type_name(name)}")
    if name != "auto":
        return _make_backend(name)
    if any(is_device_array(p) and not isinstance(p, np.ndarray) for p in params):
        return _make_backend("cupy")
    for candidate in ("numba", "numpy"):
        try:
            return _make_backend(candidate)
        except BackendUnavailableError:
            continue
    raise AssertionError("the numpy backend is always available")
