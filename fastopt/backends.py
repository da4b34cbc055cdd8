"""Backends: where the arrays live and which implementation of a rule runs.

The backend is resolved once, when an optimizer is constructed; the optimizer then calls
the bound kernel directly every step.

* ``numpy``  the plain-NumPy reference (always available);
* ``numba``  fused, multithreaded CPU kernels (needs numba);
* ``cupy``   fused CUDA kernels, one launch per bucket of arrays (needs cupy and a CUDA
  device).

``backend="auto"`` picks cupy for device arrays (anything with ``__cuda_array_interface__``)
and numba for NumPy arrays, numpy when numba is not installed. A backend named explicitly
that cannot run raises :class:`BackendUnavailableError` saying what to install; it never
falls back silently.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .kernels._ndarray import overlapping

BACKENDS = ("numpy", "numba", "cupy")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class Storage:
    """How a bucket whose params or state are stored narrower than its float32 arithmetic
    is read and written (kernels/_precision.py)."""

    kind: int                   # the params': 0 (float32), BFLOAT16 or FLOAT16
    stochastic: bool            # bfloat16 written with stochastic rounding
    rng: np.ndarray             # (seed, step) as uint64: the step sets its number first
    positions: list[int]        # the params' indices in the optimizer (their random streams)
    master: Any = None          # the float32 master copy, flat and laid out as the state,
    #                             or an empty array
    state_kind: int = 0         # the state's: 0 (float32), BFLOAT16 or INT8
    scales: tuple = ()          # INT8: per state array of the rule, its absmaxes (flat, one
    #                             per block of each param) or an empty array


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (a package or a device is missing)."""


def _type_name(x: Any) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def is_device_array(x: Any) -> bool:
    if is_torch_tensor(x):
        return x.device.type == "cuda"
    return hasattr(x, "__cuda_array_interface__")


def is_torch_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (asked only where torch is already imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def torch_view(x: Any, what: str, sixteen_bit: bool = False) -> Any:
    """A view of a torch tensor's memory without a copy: a NumPy array for a CPU tensor,
    a CuPy array for a CUDA one; a clear error naming ``what`` for anything fastopt cannot
    update in place (sparse, complex, other devices; 16-bit unless ``sixteen_bit``, and on
    the CPU only)."""
    torch = sys.modules["torch"]
    t = x.detach()
    if t.layout != torch.strided:
        raise TypeError(f"{what} is a sparse tensor ({t.layout}); fastopt updates dense "
                        f"tensors only")
    low = t.dtype in (torch.bfloat16, torch.float16)
    if t.is_complex() or not t.is_floating_point() or (t.element_size() < 4 and not (
            sixteen_bit and low and t.device.type == "cpu")):
        kinds = "float32 and float64 tensors" + (", and bfloat16 and float16 ones on the CPU"
                                                 if sixteen_bit else "")
        raise TypeError(f"{what} has dtype {t.dtype} on {t.device}; fastopt updates {kinds}")
    if t.device.type == "cpu":
        return numpy_of(t)
    if t.device.type == "cuda":
        import cupy
        return cupy.from_dlpack(t)        # the same device memory; DLPack orders the streams
        # (__cuda_array_interface__ would make cupy wait for torch's stream on the host)
    raise TypeError(f"{what} is on device {t.device}; fastopt updates CPU tensors (numpy, "
                    f"numba backends) and CUDA tensors (cupy backend)")


def numpy_of(t: Any) -> np.ndarray:
    """A CPU tensor's memory as a NumPy array (bfloat16: ml_dtypes', through its bits)."""
    torch = sys.modules["torch"]
    if t.dtype == torch.bfloat16:
        from .kernels._precision import bfloat16
        return t.view(torch.int16).numpy().view(bfloat16())
    return t.numpy()


def tensor_of(a: np.ndarray) -> Any:
    """A NumPy array's memory as a CPU tensor (bfloat16 through its bits)."""
    torch = sys.modules["torch"]
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


class HostBackend:
    """Arrays are NumPy arrays; subclasses choose the kernel."""

    name = "numpy"

    def __reduce__(self) -> tuple:
        return _make_backend, (self.name,)   # the process's shared backend object

    def check_array(self, x: Any, what: str) -> np.ndarray:
        """``x`` as a NumPy array this backend can update (a torch CPU tensor is viewed as
        one), or a TypeError naming ``what``."""
        if is_torch_tensor(x) and x.device.type == "cpu":
            return torch_view(x, what, sixteen_bit=True)
        if not isinstance(x, np.ndarray):
            where = " (a device array)" if is_device_array(x) else ""
            raise TypeError(f"{what} must be a numpy.ndarray for backend '{self.name}', got "
                            f"{_type_name(x)}{where}")
        return x

    def zeros(self, n: int, dtype: np.dtype, fill: float = 0.0, like: Any = None) -> np.ndarray:
        """n elements of ``fill`` (on the device of ``like``, for device arrays)."""
        return np.full(n, fill, dtype=dtype)

    def widened(self, flat: list) -> np.ndarray:
        """The 16-bit arrays ``flat`` as one float32 buffer (a master copy)."""
        from .kernels._precision import widen
        return np.concatenate([widen(a) for a in flat]) if flat else np.zeros(0, np.float32)

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

    def checked_grad(self, g: Any, p: Any, what: str) -> Any:
        """``g`` as a flat array of the backend, or the error that says what is wrong with
        it as the gradient of ``p`` (other libraries' device arrays, e.g. torch CUDA
        tensors, are viewed without a copy)."""
        if isinstance(g, np.ma.MaskedArray):
            raise TypeError(f"{what} is a masked array, whose mask the kernels would ignore; "
                            "give g.filled(0.0) (or the value the masked entries should have)")
        if not self.grad_matches(g, p):
            g = self.check_array(g, what)
            if g.shape != p.shape:
                raise ValueError(f"{what} has shape {g.shape}, its param has {p.shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"{what} has dtype {g.dtype}, its param has {p.dtype}")
            if not g.flags.c_contiguous:
                raise ValueError(f"{what} must be C-contiguous, got strides {g.strides}")
            if not self.grad_matches(g, p):
                raise ValueError(f"{what} is on another device than its param "
                                 f"({self.device_of(g)} vs {self.device_of(p)})")
        return self.flat(g)

    def flat(self, g: Any) -> Any:
        """``g`` as a flat array of this backend's own type (np.matrix stays 2-D otherwise)."""
        return (g if type(g) is np.ndarray else np.asarray(g)).reshape(-1)

    def device_of(self, x: Any) -> str:
        return "host"

    def address(self, x: np.ndarray) -> int:
        return x.__array_interface__["data"][0]

    def grads_resolver(self, owner: str, params: list, order: list[int], labels: list[str],
                       spans: np.ndarray, roots: frozenset) -> Any:
        """What finds a step's grads for the buckets: ``resolve(grads)`` checks every grad
        (``grads[order[k]]`` belongs to ``params[k]``, named ``labels[k]`` in errors; one
        that meets ``spans``, the memory a step writes, owned by the arrays ``roots``, is
        copied first) and returns what the bucket kernels take, indexed by k."""
        return FlatGrads(self, owner, params, order, labels, spans, roots)

    def bucket_kernel(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                      offsets: list[int], storage: Storage | None = None
                      ) -> Callable[[Any, Any], None]:
        """``f(grads, scalars)`` updating flat ``params`` from their flat ``grads``;
        ``state`` holds one flat buffer per state name of the rule (param k owns
        offsets[k]:offsets[k+1]; an empty buffer for the state the variant does not use);
        ``storage``: how 16-bit params are read and written."""
        per_param = [(p, tuple(s[a:b] if s.size else p for s in state))
                     for p, a, b in zip(params, offsets, offsets[1:])]
        if storage is not None:
            masters = [storage.master[a:b] if storage.master.size else None
                       for a, b in zip(offsets, offsets[1:])]
            from .kernels._cpu import block_offsets

            blocks = block_offsets([p.size for p in params])
            scales = [tuple(x[a:b] for x in storage.scales) for a, b in zip(blocks, blocks[1:])]
            signed = tuple(rule.signed(s) for s in rule.state)
            return functools.partial(_reference_bucket_16, rule.reference_update,
                                     rule.variant(hp), per_param, storage, masters,
                                     scales, signed)
        return functools.partial(_reference_bucket, rule, rule.variant(hp), per_param)

    def whole_kernel(self, rule: Any, hp: Mapping[str, Any], params: list,
                     shapes: list[tuple], state: dict[str, Any]) -> Callable[[Any, Any], None]:
        """``f(grads, scalars)``: a whole-param rule's step (kernels/_whole.py) over flat
        ``params`` of ``shapes``, with its ``state`` buffers by name."""
        from .kernels._whole import reference_step

        return reference_step(rule, params, shapes, state)

    def bucket_norms(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                     offsets: list[int]) -> Callable[[Any, Any], np.ndarray]:
        """``f(grads, scalars) -> sums``: a PerTensor rule's first pass over a bucket (as
        ``bucket_kernel`` takes its arguments): per param, the sums of squares of its norm
        values, shape (params, norms), float64; nothing written."""
        per_param = [(p, tuple(s[a:b] if s.size else p for s in state))
                     for p, a, b in zip(params, offsets, offsets[1:])]
        return functools.partial(_reference_norms, rule, rule.variant(hp), per_param)

    def bucket_sumsq(self, params: list, storage: Storage | None = None
                     ) -> Callable[[Any, float], float]:
        """``f(grads, start)``: ``start`` plus the sum of squares of a bucket's grads, as
        the resolver gives them, in kernels/_reduce.py's order."""
        from .kernels._reduce import sum_of_squares
        return sum_of_squares

    def runner(self, resolver: Any, buckets: list) -> Callable[[list, list], None]:
        """``run(grads, scalars)``: check and locate every grad, then run each bucket's
        kernel with its scalars (one cast array per bucket, in ``buckets`` order)."""
        def run(grads: list, scalars: list) -> None:
            resolved = resolver.resolve(grads)
            for bucket, cast in zip(buckets, scalars):
                bucket.kernel(resolved[bucket.rows], cast)
        return run


def check_unchanged(arrays: list, layouts: list, labels: list[str],
                    writeable: Callable[[Any], bool] | None = None) -> None:
    """An error naming the first of ``arrays`` (``labels``: "Adam: params[1]") that was made
    read-only (when ``writeable`` says whether an array is) or changed in shape or dtype
    in place since ``layouts`` ((shape, dtype) of each) were taken."""
    for a, (shape, dtype), label in zip(arrays, layouts, labels):
        if writeable is not None and not writeable(a):
            raise ValueError(f"{label} was made read-only after the optimizer was built; "
                             "params are updated in place")
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"{label} was changed in place to shape {a.shape} and dtype "
                             f"{a.dtype} after the optimizer was built for {shape} {dtype}")


class FlatGrads:
    """The general grads resolver: checks each grad in Python, returns them flat.

    A grad that shares memory with a param or the optimizer's state (``spans``: the byte
    ranges a step writes) is replaced by a copy first: every backend then computes as if
    all grads were read before anything is written, and they all agree."""

    def __init__(self, backend: HostBackend, owner: str, params: list, order: list[int],
                 labels: list[str], spans: np.ndarray, roots: frozenset = frozenset()) -> None:
        self.backend, self.params, self.order, self.spans = backend, params, order, spans
        self.starts, self.ends = spans[:, 0].tolist(), spans[:, 1].tolist()
        self.roots = roots              # ids of the arrays owning the memory of ``spans``
        # (shape, dtype) of each param as built (holding the dtypes: compiled checks compare
        # their addresses)
        self.layouts = [(p.shape, p.dtype) for p in params]
        self.labels = [f"{owner}: {label}" for label in labels]
        self.param_labels = [what.replace(": grads", ": params", 1) for what in self.labels]
        self.copies: list = []         # kept until the next step: the kernels read them

    def check_params(self, writing: bool = True) -> None:
        """An error naming the first param that was made read-only (when ``writing``) or
        changed in shape or dtype in place since the optimizer was built."""
        check_unchanged(self.params, self.layouts, self.param_labels,
                        self.backend.writeable if writing else None)

    def resolve(self, grads: list) -> list:
        self.check_params()
        check = self.backend.checked_grad
        flat = [check(grads[i], p, what) for i, p, what in zip(self.order, self.params,
                                                                self.labels)]
        return self.apart(flat, [grads[i] for i in self.order])

    def apart(self, flat: list, given: list) -> list:
        """``flat`` with each grad that meets ``spans`` replaced by a copy. A grad that owns
        its memory and owns none of theirs cannot (one attribute read); the others take an
        address read and a bisection."""
        out, self.copies = flat, []
        for k, (g, original) in enumerate(zip(flat, given)):
            if getattr(original, "base", 0) is None and id(original) not in self.roots and \
                    getattr(getattr(original, "flags", None), "owndata", False):
                continue
            if self.meets(self.backend.address(g), g.nbytes):
                out = list(out) if out is flat else out
                out[k] = g.copy()
                self.copies.append(out[k])
        return out

    def meets(self, start: int, nbytes: int) -> bool:
        """Whether ``nbytes`` from ``start`` share memory with what a step writes."""
        return bool(nbytes) and overlapping(self.starts, self.ends, start, start + nbytes)


class GradPointers(FlatGrads):
    """The numba resolver: the grads' data pointers, found by one compiled call
    (kernels/_ndarray.py) or, for a grad it cannot vouch for, by the general checks."""

    def __init__(self, *args: Any) -> None:
        from .kernels._ndarray import FIELDS, LAYOUT, grad_table, resolve_grads

        super().__init__(*args)
        self.table, self.dims = grad_table(self.params, self.order)
        self.pointers = np.zeros(len(self.params), dtype=np.intp)
        self.compiled = resolve_grads if FIELDS is not None else None
        self.layout = LAYOUT
        self.one_id = np.zeros(1, dtype=np.intp)

    def ids(self, grads: list) -> np.ndarray:
        """The grads' object addresses, for the compiled checks."""
        if len(grads) == 1:             # 0.08 us instead of fromiter's 0.45
            self.one_id[0] = id(grads[0])
            return self.one_id
        return np.fromiter(map(id, grads), np.intp, len(grads))

    def resolve(self, grads: list) -> np.ndarray:
        if self.compiled is not None:
            ids = self.ids(grads)
            if self.compiled(ids, self.table, self.dims, self.spans, self.pointers,
                             self.layout) < 0:
                return self.pointers
        return self.resolve_in_python(grads)

    def at(self, addresses: np.ndarray) -> np.ndarray | None:
        """The pointers of grads given by their data addresses (one per param, in param
        order; the caller vouches for shape, dtype and contiguity), or None, with nothing
        written, when one meets memory a step writes."""
        from .kernels._ndarray import place_addresses

        if place_addresses(addresses, self.table, self.spans, self.pointers) >= 0:
            return None
        return self.pointers

    def resolve_in_python(self, grads: list) -> np.ndarray:
        """The general checks (and the errors they raise), then the addresses: of the grads
        themselves (the step holds them), or of their copies (``self.copies`` holds them)."""
        for k, g in enumerate(super().resolve(grads)):
            self.pointers[k] = self.backend.address(g)
        return self.pointers


def _reference_bucket(rule: Any, flags: Mapping[str, bool], per_param: list, grads: list,
                      scalars: Any) -> None:
    # IEEE arithmetic as the compiled kernels do it: an np.errstate(all="raise") of the
    # caller's would stop a step half-way, after some params moved
    with np.errstate(all="ignore"):
        for k, ((p, state), g) in enumerate(zip(per_param, grads)):
            rule.reference_update(p, g, *state, scalars=param_scalars(rule, scalars, k),
                                  **flags)


def param_scalars(rule: Any, scalars: Any, k: int) -> Any:
    """Param k's kernel scalars: the step's, and a PerTensor rule's of row k after them
    (the bucket's kernels read them from one array: kernels/_cpu.py)."""
    if rule.per_tensor is None:
        return scalars
    n, width = len(rule.scalars) + 1, len(rule.per_tensor.scalars)
    return np.concatenate((scalars[:n], scalars[n + k * width:n + (k + 1) * width]))


def _reference_norms(rule: Any, flags: Mapping[str, bool], per_param: list, grads: list,
                     scalars: Any) -> np.ndarray:
    """A PerTensor rule's first pass (NumPy): each param's sums of squares of its values."""
    with np.errstate(all="ignore"):
        return np.array([rule.reference_norms(p, g, *state, scalars=scalars, **flags)
                         for (p, state), g in zip(per_param, grads)]).reshape(
                             len(per_param), len(rule.per_tensor.norms))


def _reference_bucket_16(reference: Callable[..., None], flags: Mapping[str, bool],
                         per_param: list, storage: Storage, masters: list, scales: list,
                         signed: tuple, grads: list, scalars: Any) -> None:
    """The reference for a storage (kernels/_precision.py): each 16-bit param and its
    16-bit or 8-bit state widened to float32 (or its master copy), the rule in float32,
    and each written back: 16-bit values rounded, 8-bit state requantized
    (kernels/_blockwise.py)."""
    from .kernels._blockwise import dequantize, quantize
    from .kernels._precision import INT8, narrow, narrow_stochastic, widen

    seed, t = (int(v) for v in storage.rng)
    eight = storage.state_kind == INT8
    with np.errstate(all="ignore"):
        for (p, state), g, master, i, absmax in zip(per_param, grads, masters,
                                                    storage.positions, scales):
            x = master if master is not None else widen(p) if storage.kind else p
            wide = tuple(s if not storage.state_kind or s is p else
                         dequantize(s, a, sg) if eight else widen(s)
                         for s, a, sg in zip(state, absmax, signed))
            reference(x, widen(g) if storage.kind else g, *wide, scalars=scalars, **flags)
            for s, w, a, sg in zip(state, wide, absmax, signed):
                if w is s:
                    continue
                if eight:
                    s[...], a[...] = quantize(w, sg)
                else:
                    s[...] = narrow(w, s.dtype)
            if storage.kind:
                p[...] = narrow_stochastic(x, seed, t, i) if storage.stochastic else \
                    narrow(x, p.dtype)


def _parts_of(threads: Callable[[], int]) -> Callable[[], int]:
    """How many parts a parallel loop splits into, read at each step: numba's threads
    (``threads``: numba.get_num_threads, 1.4 us), 1 in a child forked after GNU OpenMP
    started, which runs the serial loop (kernels/_threads.py)."""
    from .kernels import _threads

    return lambda: 1 if _threads.forked_from_omp else threads()


class NumbaBackend(HostBackend):
    """NumPy arrays, updated by the rules' fused Numba loops (compiled at construction)."""

    name = "numba"

    def __init__(self) -> None:
        self._kernels: dict = {}

    def grads_resolver(self, owner: str, params: list, order: list[int], labels: list[str],
                       spans: np.ndarray, roots: frozenset) -> GradPointers:
        return GradPointers(self, owner, params, order, labels, spans, roots)

    def bucket_kernel(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                      offsets: list[int], storage: Storage | None = None
                      ) -> Callable[[Any, Any], None]:
        import numba

        from .kernels._cpu import NO_GRADS, UNCHECKED, CpuKernel, bucket_table
        from .kernels._precision import stored_bits

        flags = rule.variant(hp)
        stored = None if storage is None else (storage.kind, storage.state_kind,
                                               storage.master.size > 0, storage.stochastic)
        key = (rule.cpu_element, tuple(flags.items()), stored)
        if key not in self._kernels:
            self._kernels[key] = CpuKernel(rule, flags, stored)
        dtype = params[0].dtype
        loop, parallel = self._kernels[key].loop(
            np.float32 if stored else dtype,
            rule.bytes_per_element(hp, dtype.itemsize) * offsets[-1])
        table = bucket_table(params, None if storage is None else storage.positions)
        if stored and storage.state_kind:           # the kernels see 16-bit state as bits
            state = tuple(x.view(stored_bits(storage.state_kind)) for x in state)
        parts = _parts_of(numba.get_num_threads) if parallel else lambda: 1
        extra = () if storage is None else (storage.master, storage.rng, storage.scales)

        def step(pointers: np.ndarray, scalars: np.ndarray) -> None:
            loop(table, pointers, state, scalars, parts(), *UNCHECKED, *extra)

        def checked_step(ids: np.ndarray, grads: GradPointers, scalars: np.ndarray) -> int:
            """The grads checked and located in the same call: -1, or the first row the
            compiled checks could not vouch for (nothing touched then)."""
            return loop(table, grads.pointers, state, scalars, parts(), ids, grads.table,
                        grads.dims, grads.spans, grads.layout, NO_GRADS, *extra)

        def placed_step(addresses: np.ndarray, grads: GradPointers, scalars: np.ndarray
                        ) -> int:
            """The grads given by their data addresses (``Optimizer._step_at``), placed and
            checked in the same call: -1, or the first row that meets memory the step
            writes (nothing touched then)."""
            return loop(table, grads.pointers, state, scalars, parts(), NO_GRADS, grads.table,
                        grads.dims, grads.spans, grads.layout, addresses, *extra)

        step.loop, step.checked, step.placed = loop, checked_step, placed_step
        return step

    def bucket_sumsq(self, params: list, storage: Storage | None = None
                     ) -> Callable[[Any, float], float]:
        from .kernels._reduce import BucketSum

        if storage is None or not storage.kind:
            return BucketSum(params, params[0].dtype)
        return BucketSum([p.view(np.uint16) for p in params], np.dtype(np.uint16),
                         storage.kind)

    def whole_kernel(self, rule: Any, hp: Mapping[str, Any], params: list,
                     shapes: list[tuple], state: dict[str, Any]) -> Callable[[Any, Any], None]:
        from .kernels._whole import HostWhole, WholeKernel

        if rule.whole.cpu is None:
            return HostWhole(rule, params, shapes, state)
        return WholeKernel(rule, rule.variant(hp), params, shapes, state)

    def bucket_norms(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                     offsets: list[int]) -> Callable[[Any, Any], np.ndarray]:
        from .kernels._reduce import NormKernel

        return NormKernel(rule, rule.variant(hp), params, state)

    def runner(self, resolver: GradPointers, buckets: list) -> Callable[[list, list], None]:
        """One bucket: its loop checks the grads itself (one compiled call a step)."""
        if len(buckets) != 1 or resolver.compiled is None:
            return super().runner(resolver, buckets)
        (bucket,) = buckets
        kernel = bucket.kernel

        def run(grads: list, scalars: list) -> None:
            if kernel.checked(resolver.ids(grads), resolver, scalars[0]) >= 0:
                kernel(resolver.resolve_in_python(grads), scalars[0])
        return run


NO_BFLOAT16 = ("the cupy backend keeps no bfloat16 arrays (CuPy has none): use float16 "
               "params, or float32 ones with state_dtype='int8'")


class CupyBackend(HostBackend):
    """CuPy arrays (or any ``__cuda_array_interface__`` object, viewed without a copy),
    updated by the rules' CUDA bucket kernels (kernels/_gpu.py). A step launches one kernel
    per bucket and never synchronises with the host."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        self.cp = cupy
        self._kernels: dict = {}

    def check_array(self, x: Any, what: str) -> Any:
        if isinstance(x, self.cp.ndarray):
            return x
        if is_torch_tensor(x) and x.device.type == "cuda":
            return torch_view(x, what)
        if is_device_array(x) and not isinstance(x, np.ndarray):
            return self.cp.asarray(x)           # zero copy: shares the device memory
        where = " (a host array: move it with cupy.asarray)" if isinstance(x, np.ndarray) else ""
        raise TypeError(f"{what} must be a device array (cupy.ndarray or an object with "
                        f"__cuda_array_interface__) for backend 'cupy', got "
                        f"{_type_name(x)}{where}")

    def writeable(self, x: Any) -> bool:
        return True

    def zeros(self, n: int, dtype: np.dtype, fill: float = 0.0, like: Any = None) -> Any:
        if np.dtype(dtype).name == "bfloat16":
            raise NotImplementedError(NO_BFLOAT16)
        with self.cp.cuda.Device(like.data.device_id if like is not None else None):
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

    def flat(self, g: Any) -> Any:
        return g.reshape(-1)

    def grads_resolver(self, owner: str, params: list, order: list[int], labels: list[str],
                       spans: np.ndarray, roots: frozenset) -> DeviceGradAddresses:
        return DeviceGradAddresses(self, owner, params, order, labels, spans, roots)

    def _kernel(self, code: str, name: str) -> Any:
        """The compiled kernel of a source (now, or from cupy's disk cache: not in a step)."""
        from .kernels._gpu import OPTIONS

        if code not in self._kernels:
            self._kernels[code] = self.cp.RawKernel(code, name, options=OPTIONS)
            self._kernels[code].compile()
        return self._kernels[code]

    def _launch(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                storage: Storage | None) -> Callable[[Any, Any], None]:
        """A bucket's launch: kernels/_gpu.py's kernel, or for params or state stored
        narrower than float32 kernels/_gpu_precision.py's (float16 params, 8-bit state;
        CuPy has no bfloat16 arrays)."""
        from .kernels._gpu import BucketLaunch, kernel_source, multi_tensor_name
        from .kernels._gpu import multi_tensor_source

        addresses, sizes = [p.data.ptr for p in params], [p.size for p in params]
        if storage is None:
            source = kernel_source(rule, rule.variant(hp), hp)
            dtype = params[0].dtype
            kernel = self._kernel(multi_tensor_source(source, dtype),
                                  multi_tensor_name(source, dtype))
            used = [state[rule.state.index(s)] for s in source.out_params[1:]]
            return BucketLaunch(kernel, self.cp, source, addresses, sizes, used)
        from .kernels._gpu_precision import StorageLaunch, storage_module, storage_source
        from .kernels._precision import BFLOAT16

        if BFLOAT16 in (storage.kind, storage.state_kind):
            raise NotImplementedError(NO_BFLOAT16)
        source = storage_source(rule, rule.variant(hp), hp, (
            storage.kind, storage.state_kind, storage.master.size > 0, storage.stochastic))
        kernel = self._kernel(storage_module([source]), source.name)
        return StorageLaunch(kernel, self.cp, source, addresses, sizes, storage.positions,
                             dict(zip(rule.state, state)), dict(zip(rule.state, storage.scales)),
                             storage.master, storage.rng)

    def widened(self, flat: list) -> Any:
        cp = self.cp
        return cp.concatenate([a.astype(cp.float32) for a in flat]) if flat else \
            cp.zeros(0, cp.float32)

    def bucket_kernel(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                      offsets: list[int], storage: Storage | None = None
                      ) -> Callable[[Any, Any], None]:
        cp, device = self.cp, params[0].device
        with device:    # the tables live, and the kernel runs, on the params' device
            launch = self._launch(rule, hp, params, state, storage)
            grads = cp.zeros(len(params), dtype=np.uint64)
        last_stream = [None]

        def step(addresses: np.ndarray, scalars: Any) -> None:
            with device:
                stream = cp.cuda.get_current_stream()
                if last_stream[0] is not None and last_stream[0].ptr != stream.ptr:
                    last_stream[0].synchronize()    # its launch may still read ``grads``
                last_stream[0] = stream
                # asynchronous on this stream, ordered before the launch; it returns once
                # the host addresses are staged
                grads.set(addresses, stream=stream)
                launch(grads, scalars)

        return step

    def whole_kernel(self, rule: Any, hp: Mapping[str, Any], params: list,
                     shapes: list[tuple], state: dict[str, Any]) -> Callable[[Any, Any], None]:
        from .kernels._reduce import cuda_ctype

        sources = rule.whole.cuda_sources(cuda_ctype(params[0].dtype))
        return self._on_device(params, sources, lambda launches, stage: rule.whole.device(
            launches, self.cp, [p.data.ptr for p in params], shapes, state, params[0].dtype,
            stage))

    def bucket_sumsq(self, params: list, storage: Storage | None = None
                     ) -> Callable[[Any, float], float]:
        from .kernels._reduce import DeviceBucketSum, cuda_ctype, cuda_sources

        return self._on_device(params, cuda_sources(cuda_ctype(params[0].dtype)),
                               lambda launches, stage: DeviceBucketSum(
                                   launches, self.cp, [p.size for p in params], stage))

    def bucket_norms(self, rule: Any, hp: Mapping[str, Any], params: list, state: tuple,
                     offsets: list[int]) -> Callable[[Any, Any], np.ndarray]:
        from .kernels._reduce import DeviceNorms, cuda_ctype, norms_cuda_sources

        used = [state[rule.state.index(s)] for s in rule.state_used(hp)]
        sources = norms_cuda_sources(rule, rule.variant(hp), hp, cuda_ctype(params[0].dtype))
        return self._on_device(params, sources, lambda launches, stage: DeviceNorms(
            launches, self.cp, len(rule.per_tensor.norms), [p.data.ptr for p in params],
            [p.size for p in params], used, stage))

    def _on_device(self, params: list, sources: list, build: Callable[..., Any]
                   ) -> Callable[[Any, Any], Any]:
        """``f(addresses, x)``: ``build(launches, stage)``'s result run on the params'
        device, with ``sources`` compiled there and ``stage(addresses)`` copying a step's
        grad addresses there (kernels/_reduce.py's passes)."""
        from .kernels._gpu_precision import storage_module

        device = params[0].device
        with device:
            launches = [self._kernel(storage_module([s]), s.name) for s in sources]
            staged = self.cp.zeros(len(params), dtype=np.uint64)
            run = build(launches, lambda addresses: staged.set(addresses) or staged)

        def on_device(addresses: np.ndarray, x: Any) -> Any:
            with device:
                return run(addresses, x)
        return on_device


class DeviceGradAddresses(FlatGrads):
    """The cupy resolver: the grads' device addresses (on the host; each bucket copies its
    own to its device), checked in Python with cheap attribute reads and no new arrays."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.devices = [p.data.device_id for p in self.params]

    def _fast(self, grads: list) -> list[int] | None:
        cp = self.backend.cp
        mine = [grads[i] for i in self.order]
        if not all(type(g) is cp.ndarray and g.flags.c_contiguous for g in mine):
            return None
        if ([(g.shape, g.dtype) for g in mine] != self.layouts
                or [g.data.device_id for g in mine] != self.devices):
            return None
        addresses = [g.data.ptr for g in mine]
        if any(self.meets(a, g.nbytes) for a, g in zip(addresses, mine)):
            return None                 # shares memory with a param or the state: copies
        return addresses

    def resolve(self, grads: list) -> np.ndarray:
        addresses = self._fast(grads)
        if addresses is None:     # other device arrays (torch, viewed), or the error to raise
            addresses = [g.data.ptr for g in super().resolve(grads)]
        return np.array(addresses, dtype=np.uint64)


NUMPY = HostBackend()


@functools.lru_cache(maxsize=None)
def _shared(cls: type) -> HostBackend:
    """One backend object per class per process: its compiled kernels are shared."""
    return cls()


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _numba_problem() -> str | None:
    """Why the numba backend cannot run here, or None."""
    if not _module_available("numba"):
        return "numba is not installed: pip install numba (or fastopt[numba])"
    try:
        import numba
    except Exception as exc:        # installed but broken (e.g. built for another NumPy)
        return f"numba fails to import ({type(exc).__name__}: {exc})"
    if numba.config.DISABLE_JIT:
        return "numba's JIT is disabled (NUMBA_DISABLE_JIT is set)"
    from .kernels._cpu import numba as kernels_numba

    if kernels_numba is None:
        return "numba imported, but its extension API did not (see kernels/_cpu.py)"
    return None


def _make_backend(name: str) -> HostBackend:
    """The backend object for ``name``, or BackendUnavailableError saying what is missing."""
    if name == "numpy":
        return NUMPY
    if name == "numba":
        problem = _numba_problem()
        if problem:
            raise BackendUnavailableError(f"backend 'numba' cannot run: {problem}")
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
