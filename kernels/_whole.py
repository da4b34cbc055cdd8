"""The bucket steps of whole-param rules (kernels/_rule.py: WholeParam): each param of a
bucket updated by the rule's own per-param step, with its state in flat buffers (one per
state name, the params' arrays one after another, each of the size the rule gives it).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._cpu import OPTIONS, PARAM, SIZE, _fingerprint, bucket_table, numba

if numba is not None:
    from numba.extending import overload
    from numba.np.unsafe.ndarray import to_fixed_tuple

    from ._ndarray import void_pointer


def state_starts(rule: Any, shapes: list[tuple]) -> np.ndarray:
    """(params + 1, state names): where each param's state array starts in each buffer."""
    sizes = [[int(np.prod(s)) if (s := rule.state_shape(name, shape)) is not None else 0
              for name in rule.state] for shape in shapes]
    return np.concatenate([np.zeros((1, len(rule.state)), np.int64),
                           np.cumsum(np.array(sizes, np.int64).reshape(-1, len(rule.state)),
                                     axis=0)])


def state_views(rule: Any, shapes: list[tuple], state: dict[str, Any]) -> list[dict]:
    """Per param, its state arrays by name, shaped (those it keeps)."""
    starts = state_starts(rule, shapes)
    out = []
    for k, shape in enumerate(shapes):
        views = {}
        for j, name in enumerate(rule.state):
            kept = rule.state_shape(name, shape)
            if kept is not None and name in state:
                views[name] = state[name][starts[k, j]:starts[k + 1, j]].reshape(kept)
        out.append(views)
    return out


def reference_step(rule: Any, params: list, shapes: list[tuple], state: dict[str, Any]
                   ) -> Callable[[list, Any], None]:
    """NumPy: ``f(grads, scalars)`` running the rule's reference on each param, shaped."""
    views = state_views(rule, shapes, state)
    shaped = [p.reshape(shape) for p, shape in zip(params, shapes)]
    n = len(rule.scalars)

    def step(grads: list, scalars: Any) -> None:
        with np.errstate(all="ignore"):     # IEEE arithmetic, as the compiled kernels
            for p, g, st in zip(shaped, grads, views):
                if p.size:
                    _, g = rule.reference_start(p, g.reshape(p.shape), scalars)
                    rule.reference(p, g, *(st.get(s) for s in rule.state),
                                         scalars=scalars[:n])
    return step


def array_at(xp: Any, address: int, shape: tuple, dtype: Any) -> Any:
    """The ``xp`` array (numpy or cupy) of ``shape`` and ``dtype`` at ``address``, owning
    nothing (the caller keeps what owns the memory alive while it is used)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if xp.__name__ == "cupy":
        memory = xp.cuda.UnownedMemory(address, nbytes, None)
        return xp.ndarray(shape, dtype, xp.cuda.MemoryPointer(memory, 0))
    import ctypes

    if not nbytes:
        return np.zeros(shape, dtype)
    return np.frombuffer((ctypes.c_byte * nbytes).from_address(address), dtype).reshape(shape)


class HostWhole:
    """``f(grad pointers, scalars)``: a host-driven whole-param rule (kernels/_rule.py:
    WholeParam.host) over one bucket on the numba backend: each param's grad viewed at
    its address, then the rule's step with numba's elementwise parts."""

    def __init__(self, rule: Any, params: list, shapes: list[tuple], state: dict[str, Any]
                 ) -> None:
        self.rule, self.n = rule, len(rule.scalars)
        self.params = [p.reshape(s) for p, s in zip(params, shapes)]
        self.state = [tuple(v.get(s) for s in rule.state)
                      for v in state_views(rule, shapes, state)]
        self.ops = rule.whole.ops["numba"]
        if params:
            self.ops.compile(params[0].dtype)        # now: no step waits for the JIT

    def __call__(self, pointers: np.ndarray, scalars: np.ndarray) -> None:
        s, gscale = scalars[:self.n], scalars[self.n]
        for p, st, address in zip(self.params, self.state, pointers):
            if p.size:
                g = array_at(np, int(address), p.shape, p.dtype)
                self.rule.whole.host(p, g, *st, s, gscale, self.ops)


def whole_views(state, starts, k):
    """tuple(x[starts[k, j]:starts[k + 1, j]] for j, x in enumerate(state))."""
    return tuple(x[starts[k, j]:starts[k + 1, j]] for j, x in enumerate(state))


if numba is not None:
    @overload(whole_views, jit_options=dict(OPTIONS, cache=False))  # its source is generated
    def _whole_views_unrolled(state, starts, k):
        items = "".join(f"state[{j}][starts[k, {j}]:starts[k + 1, {j}]], "
                        for j in range(len(state)))
        return eval(f"lambda state, starts, k: ({items})")


def _whole_loop(table, grads, state, starts, dims, scalars):
    """The rule's step on each param of a bucket in turn: ``PARALLEL_STEP`` (its loops
    split over the threads) on those moving ``THRESHOLD`` bytes or more, ``SERIAL_STEP``
    on the others (bound per rule and build, as kernels/_cpu.py's loop); ``table`` and
    ``grads`` as kernels/_cpu.py's loop takes them, ``state`` one flat buffer per state
    name (``starts``: where each param's part begins), ``dims`` a row per param."""
    s = to_fixed_tuple(scalars, N_SCALARS)  # noqa: F821 (bound per rule)
    gscale = scalars[N_SCALARS]  # noqa: F821
    for k in range(table.shape[0]):
        size = table[k, SIZE]
        if size == 0:
            continue
        p = numba.carray(void_pointer(table[k, PARAM]), size, scalars.dtype)
        g = numba.carray(void_pointer(grads[k]), size, scalars.dtype)
        views = whole_views(state, starts, k)
        if size >= THRESHOLD:  # noqa: F821
            PARALLEL_STEP(p, g, views, dims[k], s, gscale, FLAGS)  # noqa: F821
        else:
            SERIAL_STEP(p, g, views, dims[k], s, gscale, FLAGS)  # noqa: F821
    return -1


class WholeKernel:
    """``f(grad pointers, scalars)``: a whole-param rule's numba step over one bucket of
    flat ``params`` of ``shapes``, with its ``state`` buffers by name; compiled now. A
    param moving 1 MiB or more a step (kernels/_cpu.py's threshold) runs the rule's loops
    on numba's threads; the bucket's call is then guarded as kernels/_cpu.py's parallel
    loops are (one at a time; serial in a child forked after OpenMP started)."""

    def __init__(self, rule: Any, flags: Any, params: list, shapes: list[tuple],
                 state: dict[str, Any]) -> None:
        from . import _threads
        from ._cpu import PARALLEL_THRESHOLD_BYTES

        if numba is None:
            raise ImportError("the numba backend needs numba: pip install numba")
        dtype = params[0].dtype
        empty = np.zeros(0, dtype)
        self.state = tuple(state.get(s, empty) for s in rule.state)
        self.table, self.starts = bucket_table(params), state_starts(rule, shapes)
        self.dims = np.array([rule.whole.dims(s) for s in shapes], np.int64).reshape(
            len(shapes), -1)
        threshold = -(-PARALLEL_THRESHOLD_BYTES // (dtype.itemsize * rule.whole.streams))
        parallel = max(p.size for p in params) >= threshold and _threads.parallel_ok()
        options = dict(error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)
        serial = numba.njit(**options)(rule.whole.cpu)
        self.loop = numba.njit(parallel=True, **options)(rule.whole.cpu) if parallel \
            else serial
        build = self._build(rule, flags, serial, serial, threshold, dtype)
        if parallel:
            self.fn = _threads.fork_guarded(build, _threads.one_at_a_time(
                self._build(rule, flags, self.loop, serial, threshold, dtype)))
        else:
            self.fn = build

    def _build(self, rule: Any, flags: Any, big: Any, small: Any, threshold: int,
               dtype: np.dtype) -> Callable:
        """The bucket's loop with ``big`` as the step of params of ``threshold`` elements
        or more, ``small`` of the others; compiled now, on one element."""
        from ._jit import njit

        env = dict(_whole_loop.__globals__, PARALLEL_STEP=big, SERIAL_STEP=small,
                   THRESHOLD=threshold, N_SCALARS=len(rule.scalars),
                   FLAGS=tuple(bool(v) for v in flags.values()))
        loop = type(_whole_loop)(_whole_loop.__code__, env, "_whole_loop")
        suffix = "".join(f"_{k}{int(v)}" for k, v in flags.items()) + \
            ("_parallel" if big is not small else "")
        loop.__qualname__ = (f"{rule.name}_whole{suffix}_"
                             f"{_fingerprint(rule.whole.cpu, _whole_loop)}")
        loop.__module__ = __name__
        fn = njit(loop, **OPTIONS)
        scratch, width = np.zeros(1, dtype), len(rule.state)
        fn(bucket_table([scratch]), np.array([scratch.ctypes.data], np.intp),
           tuple(np.ones(1, dtype) for _ in rule.state),
           np.array([[0] * width, [1] * width], np.int64),
           np.array([rule.whole.dims((1,))], np.int64), np.zeros(len(rule.scalars) + 1, dtype))
        return fn

    def __call__(self, pointers: np.ndarray, scalars: np.ndarray) -> None:
        self.fn(self.table, pointers, self.state, self.starts, self.dims, scalars)
