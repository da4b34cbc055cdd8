"""The one optimizer API every rule shares: param groups, ``step``, ``state_dict``.

A step runs in two phases, so that nothing is modified unless everything is right: first
every grad is checked and located (``Backend.grads_resolver``) and every group's host
scalars are computed (a schedule may raise); then each *bucket* (the params of one group
and one dtype) is updated by one compiled call. Each bucket keeps its state arrays packed
in one flat buffer per state name; ``opt.state`` shows them per param.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import re
import threading
import weakref
from types import MappingProxyType
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence, Union

import numpy as np

from ._atomic import hold_signals, release_signals
from .backends import FLOAT_DTYPES, HostBackend, Storage, is_torch_tensor, resolve_backend
from ._state_dict import encode, load, lr_entries
from .groups import Changes, ParamGroup, ParamGroups, group_spec, group_specs, is_one_array
from . import _checks
from .kernels._ndarray import spans_of
from .kernels._blockwise import ABSMAX, quantize
from .kernels._cpu import block_offsets
from .kernels._precision import BFLOAT16, INT8, bfloat16, compute_dtype, is_16bit, storage_kind
from .kernels._reduce import clip_coefficient, grad_norm
from .kernels._rule import lerp
from .kernels._whole import state_starts, state_views

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]
Arrays = Union[Any, Sequence[Any]]


def checked_arrays(owner: str, arrays: list, labels: list[str], backend: HostBackend,
                   sixteen_bit: bool = False) -> list:
    """``arrays`` as the backend's arrays, each one it can update in place (float32/float64,
    or with ``sixteen_bit`` bfloat16/float16 too; C-contiguous, writeable) and no two sharing
    memory; a clear error naming the label otherwise, before anything is allocated."""
    checked = []
    for p, label in zip(arrays, labels):
        what = f"{owner}: {label}"
        if isinstance(p, np.ma.MaskedArray):
            raise TypeError(f"{what} is a masked array, whose mask the kernels would ignore; "
                            "give its data (p.data) or a plain array")
        a = backend.check_array(p, what)
        if a.dtype not in FLOAT_DTYPES and not (sixteen_bit and is_16bit(a.dtype)):
            raise TypeError(f"{what} must have dtype float32, float64"
                            + (", bfloat16 (ml_dtypes) or float16" if sixteen_bit else
                               " (16-bit params are for the rule optimizers)")
                            + f", got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{what} must be C-contiguous (it is updated in place); "
                             f"got strides {a.strides} for shape {a.shape}")
        if not backend.writeable(a):
            raise ValueError(f"{what} is read-only; params are updated in place")
        checked.append(a)
    spans = sorted((backend.address(a), backend.address(a) + a.nbytes, i)
                   for i, a in enumerate(checked) if a.nbytes)
    for (_, end, i), (start, _, j) in zip(spans, spans[1:]):
        if start < end:
            first, second = sorted((i, j))
            raise ValueError(f"{owner}: {labels[first]} and {labels[second]} share memory; "
                             "each param must be updated once per step")
    return checked


def checked_params(owner: str, params: Arrays, backend_name: str
                   ) -> tuple[bool, HostBackend, list]:
    """(single?, backend, arrays) for ``params``: one array or a list of arrays (no groups)."""
    form, specs = group_specs(owner, params, ())
    if form == "groups":
        raise TypeError(f"{owner}: params must be an array or a list of arrays (no groups)")
    arrays = specs[0][0]
    backend = resolve_backend(backend_name, arrays)
    labels = Optimizer._labels(form, [len(arrays)])
    return form == "array", backend, checked_arrays(owner, arrays, labels, backend)


@dataclass
class Bucket:
    """The params of one group and dtype, updated by one compiled call per step."""

    rows: slice                 # its rows in the grads resolver's order
    dtype: np.dtype
    params: list                # flat views of the params
    state: dict[str, Any]       # state name -> one flat buffer for all the params
    kernel: Callable[[Any, Any], None]
    device: str = "host"
    positions: list[int] = dataclasses.field(default_factory=list)  # its params' indices
    storage: Storage | None = None      # 16-bit params: how they are read and written
    eight: bool = False                 # its state is 8-bit (state_dtype="int8")
    # with max_grad_norm: f(its resolved grads, start) -> start + their sum of squares
    sumsq: Callable[[Any, float], float] | None = None
    # a PerTensor rule's first pass: f(its resolved grads, scalars) -> sums, and each
    # param's number of dimensions
    norms: Callable[[Any, Any], Any] | None = None
    ndims: list[int] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> tuple[np.dtype, str, bool]:
        return self.dtype, self.device, self.eight

    @functools.cached_property
    def compute(self) -> np.dtype:
        """The dtype of its arithmetic, state and scalars (found once: NumPy 2 spells a
        dtype's name out at each ask, 4.7 us, a third of a small step)."""
        return compute_dtype(self.dtype)

    @property
    def offsets(self) -> list[int]:
        return np.cumsum([0] + [p.size for p in self.params]).tolist()


@dataclass
class GroupState:
    """What the optimizer keeps per param group besides its dict."""

    hp: dict[str, Any]          # validated hyperparameters, lr excluded, fixed ones included
    lr: LearningRate
    flags: dict[str, bool]
    positions: list[int]        # the group's params in the optimizer's param order
    t: int                      # steps this group has taken
    extra: dict[str, float]     # the rule's scalar state (Nadam: mu_product)
    buckets: list[Bucket]
    dtype: np.dtype = np.dtype(np.float64)   # its narrowest dtype: what numbers must fit
    limit: float = np.inf                    # the largest number that dtype holds
    ahead: tuple | None = None  # (t, lr, hp, extra, host_scalars' result) of a checked new lr


_NO_GRAD = object()       # a param no (param, grad) pair has given a grad yet


def _casts(scalars: tuple, group: GroupState, t: int) -> list[np.ndarray]:
    """Each bucket's kernel scalars (``Rule.kernel_scalars``: gscale 1) in its arithmetic's
    dtype; a 16-bit bucket told the step's number (its stochastic rounding's random bits
    are drawn from it)."""
    out, values = [], (*scalars, 1.0)        # (Rule.kernel_scalars, inlined: 0.3 us)
    for b in group.buckets:
        if b.storage is not None:
            b.storage.rng[1] = t
        out.append(np.array(values, dtype=b.compute))
    return out


def _check_precision(owner: str, precision: Precision, arrays: list) -> None:
    """master_weights and stochastic_rounding where they apply: 16-bit params."""
    kinds = {storage_kind(a.dtype) for a in arrays}
    _checks.boolean(owner, "master_weights", precision.master_weights)
    _checks.boolean(owner, "stochastic_rounding", precision.stochastic_rounding)
    if not isinstance(precision.seed, (int, np.integer)) or isinstance(precision.seed, bool) \
            or not 0 <= precision.seed < 2 ** 64:
        raise ValueError(f"{owner}: seed must be an integer in [0, 2**64), got "
                         f"{precision.seed!r}")
    if precision.state_dtype not in (None, "bfloat16", "int8"):
        raise ValueError(f"{owner}: state_dtype must be None (the arithmetic's dtype), "
                         f"'bfloat16' or 'int8' (8-bit blockwise), got "
                         f"{precision.state_dtype!r}")
    if precision.state_dtype and any(a.dtype == np.float64 for a in arrays):
        raise ValueError(f"{owner}: state_dtype={precision.state_dtype!r} keeps the state of "
                         "float32 or 16-bit params; these include float64 ones")
    if precision.state_dtype == "bfloat16":
        bfloat16(f"{owner}: state_dtype='bfloat16'")
    if not isinstance(precision.min_8bit_size, (int, np.integer)) or \
            isinstance(precision.min_8bit_size, bool) or precision.min_8bit_size < 0:
        raise ValueError(f"{owner}: min_8bit_size must be an integer >= 0 (the fewest "
                         "elements a param keeps 8-bit state for), got "
                         f"{precision.min_8bit_size!r}")
    if precision.master_weights and kinds <= {0}:
        raise ValueError(f"{owner}: master_weights=True keeps float32 copies of bfloat16 or "
                         "float16 params; these params are float32/float64")
    if precision.stochastic_rounding and (BFLOAT16 not in kinds or precision.master_weights):
        raise ValueError(f"{owner}: stochastic_rounding=True rounds bfloat16 params written "
                         "without a master copy; "
                         + ("master_weights=True writes them from float32 copies, rounded "
                            "to nearest" if precision.master_weights else
                            "these params have no bfloat16 one"))


def _described(x: Any) -> str:
    return f"a {type(x).__name__} of {len(x)}" if isinstance(x, (tuple, list)) else \
        f"a {type(x).__name__}"


def _fit(scalars: tuple, limit: float) -> bool:
    """Whether every step scalar is plainly within ``limit`` in magnitude (a NaN or inf is
    not): their Euclidean norm is (0.15 us; at most sqrt(n) times the largest, so only
    numbers near the limit go on to the full check, ``_check_scalars``)."""
    return math.hypot(*scalars) <= limit


def _owner(a: Any) -> Any:
    """The array at the end of ``a``'s chain of bases: the one owning its memory."""
    while getattr(a, "base", None) is not None and hasattr(a.base, "base"):
        a = a.base
    return a


def _narrowest(arrays: list) -> np.dtype:
    """The dtype of arithmetic among ``arrays``' with the smallest range."""
    return min((compute_dtype(a.dtype) for a in arrays), key=lambda d: np.finfo(d).max)


@dataclass(frozen=True)
class Precision:
    """The constructor's choices for 16-bit params (see ``Optimizer.__init__``)."""

    master_weights: bool = False
    stochastic_rounding: bool = False
    seed: int = 0
    state_dtype: str | None = None      # None: the arithmetic's; "bfloat16"; "int8"
    min_8bit_size: int = 4096           # "int8": smaller params keep float32 state


@dataclass
class StepCount:
    """The steps an optimizer has taken, in an object of its own: a step then sets no
    attribute of the optimizer, whose ``__setattr__`` (the guard against ``opt.lr = x``)
    costs a Python call."""

    value: int = 0
    running: bool = False       # a step is under way (a schedule calling step is an error)
    owner: int = 0              # the thread that runs it


_LIVE: weakref.WeakSet = weakref.WeakSet()     # every optimizer and LBFGS, for the fork hook


def _after_fork_in_child() -> None:
    """A child forked while another thread held an optimizer's lock would wait for it
    forever: each optimizer (``_after_fork``) gets a fresh lock, and one caught inside a
    call refuses the next (its arrays may be half-written in this child)."""
    for opt in list(_LIVE):
        opt._after_fork()


def forked_mid_call(running: bool, owner: int) -> bool:
    """In a forked child: whether another thread was inside the object's call (a fork
    from inside the call itself, by a schedule, finishes that call in the child)."""
    return running and owner != threading.get_ident()


def forked_mid_call_error(name: str) -> RuntimeError:
    return RuntimeError(f"{name}: another thread was inside a call of this optimizer when "
                        "the process forked, so in this child its params and state may be "
                        "half-changed; build a new optimizer (or load a state_dict into one)")


os.register_at_fork(after_in_child=_after_fork_in_child)


class Optimizer:
    """Base class: the param groups, their state and the bound kernels of one rule.

    Not built directly: the classes in :mod:`fastopt.optimizers` (``fastopt.Adam``, ...)
    set ``rule`` (a ``fastopt.kernels.Rule``) and pass the keyword values, validated, as
    ``defaults``.
    """

    rule: ClassVar[Any]
    #: The constructor's keywords (read-only).
    defaults: Mapping[str, Any]
    _evaluating: bool = False           # a switch rule's params hold the evaluation sequence
    _max_grad_norm: float | None = None     # clip the step's grads to this global norm
    _grad_norm: float | None = None         # the norm the last clipped step found
    #: The groups, dicts as torch's (``{"params": (...), "lr": ..., ...}``): a value changed
    #: in one applies from the next step, validated then; ``add_param_group`` adds one.
    param_groups: ParamGroups

    def __init__(self, params: Any, defaults: Mapping[str, Any], backend: str,
                 precision: Precision = Precision(), max_grad_norm: float | None = None
                 ) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "defaults", MappingProxyType(dict(defaults)))
        self._precision = precision
        self._max_grad_norm = _checks.optional_positive(owner, "max_grad_norm", max_grad_norm)
        self._grad_norm: float | None = None
        form, specs = group_specs(owner, params, self._keys())
        self._single = form == "array"
        arrays = [a for spec_arrays, _ in specs for a in spec_arrays]
        self._backend = resolve_backend(backend, arrays)
        self._lock = threading.RLock()
        self._changes = Changes(self._lock)
        self._forked_mid_call = False
        _LIVE.add(self)
        object.__setattr__(self, "param_groups", ParamGroups())
        self._groups: list[GroupState] = []
        self._arrays: list = []
        self._steps = StepCount()
        labels = self._labels(form, [len(a) for a, _ in specs])
        checked = checked_arrays(owner, arrays, labels, self._backend, sixteen_bit=True)
        self._check_ndims(owner, checked, labels)
        _check_precision(owner, precision, checked)
        start = 0
        for j, (spec_arrays, overrides) in enumerate(specs):
            count = len(spec_arrays)
            self._add_group(f"{owner}: param_groups[{j}]" if form == "groups" else owner,
                            checked[start:start + count], spec_arrays, overrides)
            start += count
        self._rebuild_resolver()

    # -- setup -----------------------------------------------------------------------------
    def _keys(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.rule.hyperparams)

    @staticmethod
    def _labels(form: str, counts: list[int]) -> list[str]:
        if form == "array":
            return ["params"]
        if form == "arrays":
            return [f"params[{i}]" for i in range(counts[0])]
        return [f"param_groups[{j}]['params'][{i}]" for j, n in enumerate(counts)
                for i in range(n)]

    def _check_ndims(self, owner: str, arrays: list, labels: list[str]) -> None:
        """A rule for some numbers of dimensions only (Muon: matrices) names the first
        param of another."""
        allowed = self.rule.whole.ndims if self.rule.whole is not None else None
        for a, label in zip(arrays, labels):
            if allowed is not None and a.ndim not in allowed:
                raise ValueError(f"{owner}: {label} has shape {a.shape}; {owner} updates "
                                 f"params of {' or '.join(map(str, allowed))} dimensions "
                                 "only: give the others (biases, norms' weights) to another "
                                 "optimizer, AdamW for one")

    def _checked_group(self, owner: str, overrides: Mapping[str, Any], dtype: np.dtype
                       ) -> tuple[LearningRate, dict[str, Any]]:
        """(lr, the other hyperparameters) of a group whose narrowest dtype is ``dtype``:
        the defaults with its overrides, validated, each number representable in ``dtype``
        (torch, too, refuses lr=1e39 for float32 params rather than step to inf)."""
        values = dict(self.defaults, **overrides)
        lr = _checks.learning_rate_or_schedule(owner, "lr", values["lr"])
        hp = self.rule.checked(owner, values)
        for name, value in [("lr", lr), *hp.items()]:
            _checks.representable(owner, name, value, dtype)
        if isinstance(lr, float):   # the step scalars too, at t = 1 where they are largest
            self._check_scalars(owner, hp, 1, lr, dict(self.rule.extra), dtype)
        return lr, hp

    def _check_scalars(self, owner: str, hp: Mapping[str, Any], t: int, lr: float,
                       extra: Mapping[str, float], dtype: np.dtype) -> None:
        scalars, _ = self.rule.host_scalars(hp, t, lr, extra)
        given = ", ".join(f"{k}={v!r}" for k, v in [("lr", lr), *hp.items()]
                          if not isinstance(v, bool))
        for name, value in zip(self.rule.scalars, scalars):
            try:
                _checks.representable(owner, name, value, dtype, nonzero=False)
            except ValueError:
                raise ValueError(f"{owner}: {given} make the step scalar {name} = {value!r} "
                                 f"at step {t}, which overflows {np.dtype(dtype).name}, the "
                                 "dtype of its params; give smaller values") from None

    def _add_group(self, owner: str, arrays: list, given: list,
                   overrides: Mapping[str, Any]) -> None:
        dtype = _narrowest(arrays)
        lr, hp = self._checked_group(owner, overrides, dtype)
        index = len(self.param_groups)
        group = ParamGroup({"params": tuple(given), **self._as_given(lr, hp)}, index,
                           self._keys(), self._changes)
        positions = list(range(len(self._arrays), len(self._arrays) + len(arrays)))
        self._arrays.extend(arrays)
        state = GroupState(hp, lr, self.rule.variant(hp), positions, 0, dict(self.rule.extra), [],
                           dtype, float(np.finfo(dtype).max))
        try:
            state.buckets = self._buckets(state)
        except BaseException:            # e.g. out of memory: no param without a group
            del self._arrays[positions[0]:]
            raise
        self.param_groups._add(group)
        self._groups.append(state)

    def _buckets(self, group: GroupState, keep: Mapping[Any, Any] | None = None) -> list[Bucket]:
        """The group's buckets, one per dtype and device, with fresh state (``keep``: the
        state buffers, by name, of the buckets they replace, by (dtype, device))."""
        members: dict[tuple, list[int]] = {}
        for i in group.positions:
            a = self._arrays[i]
            members.setdefault((a.dtype, self._backend.device_of(a), self._eight(i)),
                               []).append(i)
        buckets = []
        for key, positions in members.items():
            flat = [self._backend.flat(self._arrays[i]) for i in positions]   # np.matrix: 1-D
            state = self._fresh_state(group.hp, key[0], flat, key[2],
                                      [self._arrays[i].shape for i in positions])
            storage = self._storage(key[0], positions, key[2])
            if storage is not None and storage.kind and self._precision.master_weights:
                state["master"] = self._backend.widened(flat)
            for s, buffer in (keep or {}).get(key, {}).items():
                if s in state:
                    state[s] = buffer
            buckets.append(Bucket(slice(0), key[0], flat, state, None, key[1], positions,
                                  storage, key[2]))
        for bucket in buckets:
            self._bind_kernel(bucket, group.hp)
        return buckets

    def _fresh_state(self, hp: Mapping[str, Any], dtype: np.dtype, flat: list, eight: bool,
                     shapes: list[tuple]) -> dict[str, Any]:
        """The initial state of a bucket of ``flat`` params of ``dtype`` and ``shapes``: per
        state array its fill (kernels/_blockwise.py: as codes and one absmax a block, for
        8-bit); a whole-param rule's arrays of the sizes it gives them."""
        n, kept = sum(a.size for a in flat), self._state_dtype(dtype, eight)
        state = {}
        sizes = None if self.rule.whole is None else state_starts(self.rule, shapes)[-1]
        for s in self.rule.state_used(hp):
            fill = self.rule.state_fill(s, hp)
            if sizes is not None or not eight:
                size = n if sizes is None else int(sizes[self.rule.state.index(s)])
                state[s] = self._backend.zeros(size, kept, fill, like=flat[0])
                continue
            code, absmax = quantize(np.full(1, fill, np.float32), self.rule.signed(s))
            state[s] = self._backend.zeros(n, kept, code[0], like=flat[0])
            state[s + ABSMAX] = self._backend.zeros(block_offsets([a.size for a in flat])[-1],
                                                    np.float32, absmax[0], like=flat[0])
        return state

    def _bind_kernel(self, bucket: Bucket, hp: Mapping[str, Any]) -> None:
        empty = self._backend.zeros(0, self._state_dtype(bucket.dtype, bucket.eight),
                                    like=bucket.params[0])
        state = tuple(bucket.state.get(s, empty) for s in self.rule.state)
        if bucket.storage is not None:
            none = self._backend.zeros(0, np.float32, like=bucket.params[0])
            bucket.storage.master = bucket.state.get("master", none)
            bucket.storage.scales = tuple(bucket.state.get(s + ABSMAX, none)
                                          for s in self.rule.state)
        if self.rule.whole is not None:
            bucket.kernel = self._backend.whole_kernel(
                self.rule, hp, bucket.params, self._shapes(bucket), bucket.state)
        else:
            bucket.kernel = self._backend.bucket_kernel(self.rule, hp, bucket.params, state,
                                                       bucket.offsets, bucket.storage)
        if self._max_grad_norm is not None:
            bucket.sumsq = self._backend.bucket_sumsq(bucket.params, bucket.storage)
        if self.rule.per_tensor is not None:
            bucket.ndims = [self._arrays[i].ndim for i in bucket.positions]
            bucket.norms = self._backend.bucket_norms(self.rule, hp, bucket.params, state,
                                                      bucket.offsets)

    def _shapes(self, bucket: Bucket) -> list[tuple]:
        return [self._arrays[i].shape for i in bucket.positions]

    def _master_of(self, i: int) -> tuple[str, ...]:
        """("master",) where param i has a float32 master copy, else ()."""
        return ("master",) if self._precision.master_weights and \
            is_16bit(self._arrays[i].dtype) else ()

    def _eight(self, i: int) -> bool:
        """Whether param i keeps 8-bit state: state_dtype="int8" and at least
        min_8bit_size elements (as bitsandbytes decides: smaller params, biases and norms,
        keep float32 state, which costs little and keeps them precise)."""
        return self._precision.state_dtype == "int8" and \
            self._arrays[i].size >= self._precision.min_8bit_size

    def _storage(self, dtype: np.dtype, positions: list[int], eight: bool = False
                 ) -> Storage | None:
        """How a bucket of ``dtype`` params is read and written: None for float32/float64;
        for 16-bit ones, their kind, stochastic rounding (bfloat16 without a master copy)
        and the (seed, step) the random bits are drawn from."""
        kind, precision = storage_kind(dtype), self._precision
        state_kind = INT8 if eight else storage_kind(self._state_dtype(dtype))
        if not kind and not state_kind:
            return None
        if self.rule.passes:
            raise NotImplementedError(
                f"{type(self).__name__} reads whole params (their norms, rows or columns), "
                "which fastopt does for float32 and float64 params and state only (for "
                "now); these are 16-bit or keep narrower state")
        stochastic = precision.stochastic_rounding and kind == BFLOAT16 and \
            not precision.master_weights
        return Storage(kind, stochastic, np.array([precision.seed, 0], np.uint64),
                       list(positions), state_kind=state_kind)

    def _state_dtype(self, dtype: np.dtype, eight: bool = False) -> np.dtype:
        """The dtype the state of ``dtype`` params is kept in (``eight``: 8-bit codes)."""
        if self._precision.state_dtype == "bfloat16":
            return bfloat16()
        return np.dtype(np.uint8) if eight else compute_dtype(dtype)

    def _state_dtype_of(self, i: int, name: str) -> np.dtype:
        """The dtype of param i's state ``name``."""
        return np.dtype(np.float32) if name == "master" or name.endswith(ABSMAX) else \
            self._state_dtype(self._arrays[i].dtype, self._eight(i))

    def _state_names(self, hp: Mapping[str, Any], i: int) -> tuple[str, ...]:
        """The names of param i's state arrays: the rule's, their absmaxes (int8 state),
        its master copy (16-bit params with master weights)."""
        shape = self._arrays[i].shape
        used = tuple(s for s in self.rule.state_used(hp)
                     if self.rule.state_shape(s, shape) is not None)
        absmax = tuple(s + ABSMAX for s in used) if self._eight(i) else ()
        return (*used, *absmax, *self._master_of(i))

    def _rebuild_resolver(self) -> None:
        """Number the buckets' rows in one order (bucket by bucket) for the grads resolver."""
        order: list[int] = []
        for group in self._groups:
            for bucket in group.buckets:
                start = len(order)
                order.extend(bucket.positions)
                bucket.rows = slice(start, len(order))
        labels = ["grads"] if self._single else [f"grads[{i}]" for i in range(len(self._arrays))]
        written = self._arrays + [v for g in self._groups for b in g.buckets
                                  for v in b.state.values()]
        self._resolver = self._backend.grads_resolver(
            type(self).__name__, [self._arrays[i] for i in order], order,
            [labels[i] for i in order], spans_of(written, self._backend.address),
            frozenset(id(_owner(a)) for a in written))
        self._buckets_in_order = [b for group in self._groups for b in group.buckets]
        self._bucket_groups = [group for group in self._groups for _ in group.buckets]
        self._run = self._backend.runner(self._resolver, self._buckets_in_order)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group (a dict as in the constructor) with fresh state; it starts at step 1
        of its own, as in PyTorch. Its params must not overlap any param already here."""
        self._exclusive(self._add_param_group, param_group, "add_param_group",
                        "add groups between steps")

    def _add_param_group(self, param_group: Mapping[str, Any]) -> None:
        owner = f"{type(self).__name__}: param_groups[{len(self.param_groups)}]"
        if not isinstance(param_group, Mapping):
            raise TypeError(f"{owner} must be a dict {{'params': [...], ...}}, got "
                            f"{type(param_group).__name__}")
        given, overrides = group_spec(owner, param_group, self._keys())
        labels = [f"param_groups[{len(self.param_groups)}]['params'][{i}]"
                  for i in range(len(given))]
        known = [f"param {i}" for i in range(len(self._arrays))]
        state = [(f"the optimizer's state {name!r} of param_groups[{j}]", buffer)
                 for j, group in enumerate(self._groups) for b in group.buckets
                 for name, buffer in b.state.items()]
        checked = checked_arrays(type(self).__name__, self._arrays + [a for _, a in state] + given,
                                 known + [label for label, _ in state] + labels,
                                 self._backend, sixteen_bit=True)[len(self._arrays) + len(state):]
        self._check_ndims(type(self).__name__, checked, labels)
        self._add_group(owner, checked, given, overrides)
        self._single = False
        self._rebuild_resolver()

    # -- live hyperparameters -------------------------------------------------------------
    def _apply_changes(self) -> None:
        """Validate every changed group, then apply them all (or nothing)."""
        if self._new_lrs_only():
            return
        updates, snapshots = [], []
        pending = set(self._changes.groups)     # changes made meanwhile wait for the next
        for j in sorted(pending):
            owner = f"{type(self).__name__}: param_groups[{j}]"
            overrides = {k: v for k, v in self.param_groups[j].items() if k != "params"}
            snapshots.append(overrides)
            group = self._groups[j]
            lr, hp = self._checked_group(owner, overrides, group.dtype)
            flags = self.rule.variant(hp)
            grows = set(self.rule.state_used(hp)) - set(self.rule.state_used(group.hp))
            if flags != group.flags and grows and group.t > 0:
                changed = [k for k in self.rule.flags if flags[k] != group.flags[k]]
                raise ValueError(f"{owner}: this change switches {changed} on, which needs "
                                 f"state {sorted(grows)} that this group does not hold at step "
                                 f"{group.t} (fastopt keeps such state only while its flag is "
                                 "on); set it when creating the optimizer (or before its first "
                                 "step)")
            updates.append((group, lr, hp, flags))
        for (group, lr, hp, flags), j, read in zip(updates, sorted(pending), snapshots):
            values = self.param_groups[j]
            if all(values[k] is v for k, v in read.items()):     # unchanged since read
                dict.update(values, self._as_given(lr, hp))        # e.g. betas as a tuple
                self._changes.groups.discard(j)
            group.lr = lr
            if self._set_hyperparams(group, hp):
                self._rebuild_resolver()
        if not self._changes.groups:
            self._changes.keys.clear()

    def _new_lrs_only(self) -> bool:
        """Apply the changes if they set lr alone, to a float, in groups whose lr is a
        float (what a scheduler does before every step: ~1 us a group, where checking the
        whole group again took ~100); False, with nothing applied, otherwise."""
        if self._changes.keys != {"lr"}:
            return False
        lrs = [(j, self.param_groups[j]["lr"]) for j in self._changes.groups]
        if not all(type(lr) is float and type(self._groups[j].lr) is float for j, lr in lrs):
            return False
        for j, lr in lrs:
            self._check_new_lr(j, lr, f"{type(self).__name__}: param_groups[{j}]")
        for j, lr in lrs:
            self._groups[j].lr = lr
        self._changes.clear()
        return True

    def _take_lr(self, j: int, lr: float) -> bool:
        """Group j's lr set to the float ``lr`` now (a scheduler's change, from
        fastopt.torch: ~1 us), when that group's lr is a float and ``lr`` and the step
        scalars it makes at the group's next step are plainly fine; False, with nothing
        done, otherwise: set it in param_groups then, where the checks name what is wrong."""
        group = self._groups[j]
        if type(group.lr) is not float or not self._new_lr_fits(group, lr):
            return False
        group.lr = lr
        dict.__setitem__(self.param_groups[j], "lr", lr)
        return True

    def _new_lr_fits(self, group: GroupState, lr: float) -> bool:
        """Whether a float lr is plainly fine for ``group``: finite, >= 0, not so small it
        might round to 0, within its params' dtype, and so are the step scalars it makes
        at the group's next step (they shrink as t grows for every rule)."""
        if not (1e-30 < lr <= group.limit or lr == 0.0):
            return False
        t, hp, extra = group.t + 1, group.hp, group.extra
        made = self.rule.host_scalars(hp, t, lr, extra)
        group.ahead = (t, lr, hp, extra, made)     # the step's, if they stay the same
        return _fit(made[0], group.limit)

    def _check_new_lr(self, j: int, lr: float, owner: str) -> None:
        """A float lr for group j as ``_new_lr_fits`` checks it, or the error (named by
        ``owner``) that says what is wrong; a tiny lr that is representable passes."""
        group = self._groups[j]
        if self._new_lr_fits(group, lr):
            return
        _checks.learning_rate_or_schedule(owner, "lr", lr)
        _checks.representable(owner, "lr", lr, group.dtype)
        self._check_scalars(owner, group.hp, group.t + 1, lr, group.extra, group.dtype)

    def _settings(self) -> tuple:
        """What applying changes alters (each group's lr, hyperparameters, flags and
        buckets, and which groups have changes pending), for ``_restore_settings``."""
        return ([(g.lr, g.hp, g.flags, g.buckets) for g in self._groups],
                set(self._changes.groups), set(self._changes.keys))

    def _restore_settings(self, settings: tuple) -> None:
        """Back to ``_settings()``: changes applied since then (a flag's rebuild that
        dropped state included) are taken back and pending again."""
        groups, pending, keys = settings
        rebuilt = False
        for g, (lr, hp, flags, buckets) in zip(self._groups, groups):
            rebuilt |= g.buckets is not buckets
            g.lr, g.hp, g.flags, g.buckets = lr, hp, flags, buckets
        self._changes.groups |= pending
        self._changes.keys |= keys
        if rebuilt:
            self._rebuild_resolver()

    def _set_hyperparams(self, group: GroupState, hp: dict[str, Any]) -> bool:
        """``group.hp = hp``; a new variant (its flags) rebuilds the group's buckets and
        kernels, keeping its state arrays by name (else only the host scalars change).
        Whether it rebuilt: the caller then renumbers the grads."""
        flags = self.rule.variant(hp)
        rebuild = flags != group.flags
        if rebuild:      # built before group changes, so a failure leaves it as it was
            replacement = dataclasses.replace(group, hp=hp, flags=flags)
            group.buckets = self._buckets(replacement, {b.key: b.state for b in group.buckets})
        group.hp, group.flags = hp, flags
        return rebuild

    def _as_given(self, lr: LearningRate, hp: Mapping[str, Any]) -> dict[str, Any]:
        """A group's validated values as its dict shows them (floats, betas a tuple)."""
        return {k: lr if k == "lr" else hp[k] for k in self._keys()}

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise AttributeError(
                f"{type(self).__name__} has no settable attribute {name!r}: hyperparameters "
                f"live in param_groups (e.g. opt.param_groups[0][{name!r}] = {value!r}, "
                "used from the next step)")
        object.__setattr__(self, name, value)

    # -- the step ------------------------------------------------------------------------
    def _grads_list(self, grads: Arrays) -> tuple[list, bool]:
        """(the grads as a list or tuple, one per param in group order; whether they came
        as (param, grad) pairs, in any order). Anything else than a list or tuple, their
        subclasses included, is copied into a list first."""
        name = type(self).__name__
        if type(grads) not in (list, tuple):
            if isinstance(grads, Mapping):
                raise TypeError(f"{name}: grads must be a list or tuple of {len(self._arrays)} "
                                f"arrays in the order of params, got a {type(grads).__name__} "
                                "(its keys would be taken for grads; give list(grads.values()) "
                                "if they are in that order, or (param, grad) pairs)")
            if not hasattr(grads, "__iter__") or is_one_array(grads) or \
                    isinstance(grads, (str, bytes)):
                raise TypeError(f"{name}: grads must be a list or tuple of {len(self._arrays)} "
                                f"arrays like params, got {type(grads).__name__}")
            grads = list(grads)
        if grads and type(grads[0]) is tuple:
            return self._by_param(grads), True
        if self._single:
            raise TypeError(f"{name}: grads must be a single array like params, got a "
                            f"{type(grads).__name__} of {len(grads)}")
        if len(grads) != len(self._arrays):
            raise ValueError(f"{name}: grads must hold {len(self._arrays)} arrays (one per "
                             f"param), got {len(grads)}; {self._order_note()}")
        return grads, False

    def _by_param(self, pairs: list) -> list:
        """The grads in group order from (param, grad) pairs given in any order, each param
        one this optimizer was given (by identity), each once, every one of them."""
        name = type(self).__name__
        params = [p for group in self.param_groups for p in group["params"]]
        at = {id(p): i for i, p in enumerate(params)}
        grads: list = [_NO_GRAD] * len(params)
        for k, pair in enumerate(pairs):
            if type(pair) is not tuple or len(pair) != 2:
                raise TypeError(f"{name}: grads given as (param, grad) pairs: entry {k} is "
                                f"{_described(pair)}, not a pair")
            i = at.get(id(pair[0]), -1)
            if i < 0:
                raise ValueError(f"{name}: grads given as (param, grad) pairs: pair {k}'s "
                                 "param is not one of this optimizer's (give the arrays it was "
                                 "made with, as in opt.param_groups)")
            if grads[i] is not _NO_GRAD:
                raise ValueError(f"{name}: grads given as (param, grad) pairs: two pairs "
                                 f"give a grad for {self._param_label(i)}")
            grads[i] = pair[1]
        missing = [self._param_label(i) for i, g in enumerate(grads) if g is _NO_GRAD]
        if missing:
            raise ValueError(f"{name}: grads given as (param, grad) pairs have none for "
                             f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; "
                             "every param needs a grad")
        return grads

    def _grads_error(self, exc: Exception, paired: bool) -> Exception:
        """A grad's shape or dtype error saying how grads meet params: the param a pair
        named, or the order grads are taken in."""
        found = re.search(r"grads\[(\d+)\] has (shape|dtype)", str(exc))
        if found is None:
            return exc
        if paired:
            return type(exc)(str(exc).replace(found[0].split(" has")[0], "the grad paired with "
                                              + self._param_label(int(found[1])), 1))
        return type(exc)(f"{exc}; {self._order_note()}")

    def _param_label(self, i: int) -> str:
        """Param i (in group order) as errors name it."""
        groups = self.param_groups
        form = "array" if self._single else "arrays" if len(groups) == 1 else "groups"
        return self._labels(form, [len(g["params"]) for g in groups])[i]

    def _order_note(self) -> str:
        """How grads are matched to params, for errors where they may be out of order."""
        if len(self.param_groups) == 1:
            order = "grads are taken in the order of the params"
        else:
            order = "grads are taken in group order, one per param (" + ", then ".join(
                f"param_groups[{j}]'s {len(g['params'])}"
                for j, g in enumerate(self.param_groups)) + ")"
        return f"{order}; or give (param, grad) pairs, in any order"

    def _group_step(self, group: GroupState) -> tuple[list, dict]:
        """(the host scalars of the group's next step cast for each of its buckets, the
        rule's scalar state after it): everything that may raise, computed before any
        kernel runs."""
        t = group.t + 1
        lr = group.lr
        ahead = group.ahead
        if ahead is not None and ahead[0] == t and ahead[1] is lr and ahead[2] is group.hp \
                and ahead[3] is group.extra:    # made by _new_lr_fits for this step
            scalars, extra = ahead[4]
            return _casts(scalars, group, t), extra
        if not isinstance(lr, float):          # a schedule, or a live 0-d array or tensor
            owner = type(self).__name__
            lr = _checks.learning_rate(owner, lr.item() if _checks.is_live(lr) else lr(t),
                                       step=t)
            if lr > group.limit:
                _checks.representable(owner, f"lr schedule at step {t}", lr, group.dtype)
        scalars, extra = self.rule.host_scalars(group.hp, t, lr, group.extra)
        if not isinstance(group.lr, float) and not _fit(scalars, group.limit):
            self._check_scalars(f"{type(self).__name__}: lr schedule at step {t}", group.hp,
                                t, lr, group.extra, group.dtype)
        return _casts(scalars, group, t), extra

    def step(self, grads: Arrays) -> None:
        """One fused update of every param in place, from ``grads``: one array if params
        was one array, else a sequence with one grad per param, in the order of the groups,
        or (param, grad) pairs in any order (``zip(params, grads)``), matched by the param
        arrays themselves. Calls from several threads take turns (one lock per optimizer)."""
        self._exclusive(self._step, grads, "step", "a step cannot nest")

    def _after_fork(self) -> None:
        self._forked_mid_call = forked_mid_call(self._steps.running, self._steps.owner)
        self._lock = self._changes.lock = threading.RLock()

    def _exclusive(self, run: Callable[[Any], Any], arg: Any, name: str, advice: str) -> Any:
        """``run(arg)`` holding the lock and the signal handlers (fastopt/_atomic.py: a
        handler runs once the call is whole and the optimizer idle again); a call nested in
        a step is an error, named with ``advice``."""
        if self._forked_mid_call:
            raise forked_mid_call_error(type(self).__name__)
        held = hold_signals()
        try:
            with self._lock:
                if self._steps.running:
                    which = "its own" if name == "step" else "a"
                    raise RuntimeError(f"{type(self).__name__}.{name} was called from inside "
                                       f"{which} step (by an lr schedule?); {advice}")
                self._steps.running, self._steps.owner = True, threading.get_ident()
                try:
                    return run(arg)
                finally:
                    self._steps.running = False
        finally:
            release_signals(held)

    def _prepare(self) -> tuple[list, list]:
        """(each bucket's cast scalars, each group's scalar state after the step): the
        changes applied and everything that may raise computed, nothing modified yet."""
        if self._evaluating:
            raise RuntimeError(f"{type(self).__name__}: the params hold the averaged point "
                               "for evaluation (after opt.eval()); call opt.train() before "
                               "stepping")
        if self._changes.groups:
            self._apply_changes()
        casts: list = []
        extras = []
        for group in self._groups:
            group_casts, extra = self._group_step(group)
            casts += group_casts
            extras.append(extra)
        return casts, extras

    def _advance(self, extras: list) -> None:
        for group, extra in zip(self._groups, extras):
            group.t += 1
            group.extra = extra
        self._steps.value += 1

    def _step_at(self, addresses: np.ndarray) -> bool:
        """A step from grads given by their data addresses, one per param in param order,
        for a caller that vouches for each grad's shape, dtype and contiguity (fastopt.torch:
        torch gives every p.grad its param's). Numba backend only. False, with nothing
        done, when a grad meets memory the step writes: the caller then steps with arrays,
        whose checks copy it."""
        return self._exclusive(self._step_addresses, addresses, "step", "a step cannot nest")

    def _step_addresses(self, addresses: np.ndarray) -> bool:
        casts, extras = self._prepare()
        if self._max_grad_norm is not None or self.rule.passes:
            pointers = self._resolver.at(addresses)
            if pointers is None:
                return False
            self._run_passes(pointers, casts)
            self._advance(extras)
            return True
        if len(self._buckets_in_order) == 1:            # one compiled call places and steps
            if self._buckets_in_order[0].kernel.placed(addresses, self._resolver,
                                                       casts[0]) >= 0:
                return False
            self._advance(extras)
            return True
        pointers = self._resolver.at(addresses)
        if pointers is None:
            return False
        for bucket, cast in zip(self._buckets_in_order, casts):
            bucket.kernel(pointers[bucket.rows], cast)
        self._advance(extras)
        return True

    def _step(self, grads: Arrays) -> None:
        casts, extras = self._prepare()
        # ``glist`` holds the grads until every kernel ran (a generator's arrays included)
        paired = False
        if self._single and not isinstance(grads, (list, tuple, zip)):
            glist = [grads]
        else:
            glist, paired = self._grads_list(grads)
        try:
            if self._max_grad_norm is None and not self.rule.passes:
                self._run(glist, casts)
            else:
                self._run_passes(self._resolver.resolve(glist), casts)
        except (TypeError, ValueError) as exc:
            raise self._grads_error(exc, paired) from None
        self._advance(extras)

    # -- clipping by the global norm (kernels/_reduce.py) ------------------------------------
    def _sumsq(self, resolved: Any, start: float = 0.0) -> float:
        """``start`` plus the sum of squares of the step's grads (``resolved``: as the
        resolver gives them), bucket after bucket, in the fixed order of every backend."""
        for bucket in self._buckets_in_order:
            start = bucket.sumsq(resolved[bucket.rows], start)
        return start

    def _run_scaled(self, resolved: Any, casts: list, gscale: float) -> None:
        """Every bucket's kernel on grads read times ``gscale`` (a PerTensor rule's after
        its first pass: the norms of each param, then its scalars)."""
        n = len(self.rule.scalars)
        for group, bucket, cast in zip(self._bucket_groups, self._buckets_in_order, casts):
            cast[n] = gscale
            grads = resolved[bucket.rows]
            if bucket.norms is not None:
                cast = self._with_param_scalars(group, bucket, grads, cast)
            bucket.kernel(grads, cast)

    def _with_param_scalars(self, group: GroupState, bucket: Bucket, grads: Any,
                            cast: np.ndarray) -> np.ndarray:
        """``cast`` and, after it, each param's PerTensor scalars (kernels/_rule.py) from
        the norms the first pass takes."""
        norms = np.sqrt(bucket.norms(grads, cast))
        values = self.rule.per_tensor.host(group.hp, norms, bucket.ndims)
        return np.concatenate((cast, np.asarray(values, cast.dtype).ravel()))

    def _run_passes(self, resolved: Any, casts: list,
                    summed: Callable[[float], float] = lambda total: total) -> None:
        """The step from resolved grads: with max_grad_norm, every grad read times
        ``min(1, max_grad_norm / (norm + 1e-6))``, the norm taken over all of them first
        (no grad is written; ``summed``: the sum of squares over the processes that hold
        the grads, ShardedOptimizer's ranks)."""
        gscale = 1.0
        if self._max_grad_norm is not None:
            self._grad_norm = grad_norm(summed(self._sumsq(resolved)))
            gscale = clip_coefficient(self._max_grad_norm, self._grad_norm)
        self._run_scaled(resolved, casts, gscale)

    def _step_scaled(self, resolved: Any, gscale: float) -> None:
        """A step from grads resolved already, each read times ``gscale`` (fastopt.torch:
        a norm over several optimizers, and amp's 1/grad_scale)."""
        casts, extras = self._prepare()
        self._run_scaled(resolved, casts, gscale)
        self._advance(extras)

    # -- two sequences (schedule-free rules): eval() and train() ---------------------------
    def _moving(self, to_eval: bool) -> list:
        """The (group, bucket) pairs a switch to ``to_eval`` moves, or the error that says
        why it cannot (nothing changed)."""
        if self._evaluating == to_eval:
            return []
        moving = [(g, b) for g in self._groups if g.t > 0 for b in g.buckets]
        if any(b.storage is not None for _, b in moving):
            raise NotImplementedError(f"{type(self).__name__}: eval()/train() move float32 or "
                                      "float64 params whose state is kept as it is; these are "
                                      "16-bit or keep narrower state")
        return moving

    def _switch(self, to_eval: bool) -> None:
        """Move every param that has stepped to the other sequence (kernels/_rule.py:
        switch_state, switch_weight); checked first, so an error changes nothing."""
        moving = self._moving(to_eval)
        for group, bucket in moving:
            weight = self.rule.switch_weight(group.hp, to_eval)
            z, offsets = bucket.state[self.rule.switch_state], bucket.offsets
            for k, p in enumerate(bucket.params):
                p[...] = lerp(p, z[offsets[k]:offsets[k + 1]], np.asarray(weight, p.dtype))
        self._evaluating = to_eval

    # -- copies and pickles: the arrays and state travel, kernels and tables are rebuilt -----
    def __copy__(self) -> Optimizer:
        raise TypeError(f"{type(self).__name__}: a shallow copy would share params and state "
                        "but not the step counts; use copy.deepcopy (new params and state) "
                        "or state_dict()")

    def __getstate__(self) -> dict[str, Any]:
        """A snapshot (the state's arrays copied) taken holding the lock: pickle writes it
        after the lock is released, while another thread may step. The params stay the
        user's objects, so that pickling them with the optimizer (``pickle.dumps([params,
        opt])``) links the two again when loaded, as ``copy.deepcopy`` does."""
        with self._lock:
            params = [a for group in self.param_groups for a in group["params"]]
            keep = {id(a): a for a in [*self._arrays, *params]}
            return copy.deepcopy(self._state_for_copy(), keep)

    def __deepcopy__(self, memo: dict) -> Optimizer:
        new = object.__new__(type(self))
        memo[id(self)] = new
        with self._lock:            # every array copied before another thread's step
            state = copy.deepcopy(self._state_for_copy(), memo)
        new.__setstate__(state)
        return new

    def _state_for_copy(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_steps"] = dataclasses.replace(self._steps, running=False)
        del state["_resolver"], state["_run"], state["_lock"], state["_buckets_in_order"]
        del state["_bucket_groups"]
        state["defaults"] = dict(self.defaults)
        state["_groups"] = [(dataclasses.replace(g, buckets=[]),
                             [(b.dtype, b.device, b.eight, b.state) for b in g.buckets])
                            for g in self._groups]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        groups = state.pop("_groups")
        self.__dict__.update(state, _lock=threading.RLock(), _forked_mid_call=False,
                             defaults=MappingProxyType(state["defaults"]))
        self._changes.lock = self._lock
        _LIVE.add(self)
        for group, values in zip(groups, self.param_groups):    # torch tensors: views again,
            for i, given in zip(group[0].positions, values["params"]):  # of the copies
                if is_torch_tensor(given):
                    self._arrays[i] = self._backend.check_array(given, "params")
        self._groups = []
        for group, kept in groups:
            group.buckets = self._buckets(group, {(k, d, e): v for k, d, e, v in kept})
            self._groups.append(group)
        self._rebuild_resolver()

    # -- introspection -------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend the optimizer runs on: "numpy", "numba" or "cupy"."""
        return self._backend.name

    @property
    def params(self) -> Arrays:
        """The arrays this optimizer updates: one array, or a list in group order."""
        return self._arrays[0] if self._single else list(self._arrays)

    @property
    def max_grad_norm(self) -> float | None:
        """The global norm the grads are clipped to at each step (None: not clipped)."""
        return self._max_grad_norm

    @property
    def grad_norm(self) -> float | None:
        """With ``max_grad_norm``: the norm of the last step's grads before clipping, over
        all of them (``torch.nn.utils.clip_grad_norm_``'s result); None before a step."""
        return self._grad_norm

    @property
    def step_count(self) -> int:
        """How many steps have been taken."""
        return self._steps.value

    @property
    def hyperparams(self) -> dict:
        """The constructor's keyword values (each group's own are in ``param_groups``)."""
        return dict(self.defaults)

    @property
    def state(self) -> list[dict]:
        """Per param (in group order), its state arrays (views, shaped like the param)."""
        self._resolver.check_params(writing=False)
        out: list[dict] = [{} for _ in self._arrays]
        for group in self._groups:
            for bucket in group.buckets:
                if self.rule.whole is not None:
                    for i, views in zip(bucket.positions, state_views(
                            self.rule, self._shapes(bucket), bucket.state)):
                        out[i] = views
                    continue
                offsets = bucket.offsets
                blocks = block_offsets([p.size for p in bucket.params])
                for k, i in enumerate(bucket.positions):
                    shape = self._arrays[i].shape
                    out[i] = {s: v[blocks[k]:blocks[k + 1]] if s.endswith(ABSMAX) else
                              v[offsets[k]:offsets[k + 1]].reshape(shape)
                              for s, v in bucket.state.items()}
        return out

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        groups = f", groups={len(self.param_groups)}" if len(self.param_groups) > 1 else ""
        return f"{type(self).__name__}({hp}, backend={self.backend!r}{groups}, step={self.step_count})"

    # -- state_dict ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as a flat dict of NumPy arrays and Python scalars.

        Keys: ``rule``, ``step``, ``n_params``, ``n_groups``; per group j
        ``groups.{j}.params`` (the indices of its params), ``groups.{j}.step``, its
        hyperparameters ``groups.{j}.{name}`` and the rule's scalar state (Nadam's
        ``groups.{j}.mu_product``); and ``"{i}.{name}"`` for each state array of param i,
        shaped like it (an optional hyperparameter set to None is stored as NaN). A built-in
        schedule as lr is stored as its kind (``groups.{j}.lr``) and its numbers
        (``groups.{j}.lr.*``); a function of your own as "callable": it is not stored, and
        loading takes the loading optimizer's lr for it, which must be a callable. Every
        value is a number, a string or an array: ``np.savez(file, **sd)`` and
        ``dict(np.load(file))`` round-trip it without pickling. It loads into an optimizer
        of the same rule, groups and param shapes on any backend. Changes made to
        ``param_groups`` since the last step are validated and applied first.
        """
        with self._lock:
            return self._state_dict()

    def _state_dict(self) -> dict[str, Any]:
        # the groups as they are now, validated; from inside a step (by its schedule) the
        # values that step uses: a change made during it applies from the next step
        if self._changes.groups and not self._steps.running:
            self._apply_changes()
        sd: dict[str, Any] = {"rule": type(self).__name__, "step": self.step_count,
                              "n_params": len(self._arrays), "n_groups": len(self._groups)}
        if self.rule.switch_state:
            sd["train_mode"] = not self._evaluating
        for j, (values, group) in enumerate(zip(self.param_groups, self._groups)):
            prefix = f"groups.{j}."
            sd[prefix + "params"] = np.array(group.positions, dtype=np.int64)
            sd[prefix + "step"] = group.t
            sd.update(lr_entries(prefix + "lr", group.lr))
            for h in self.rule.hyperparams:
                if h.name != "lr":
                    sd[prefix + h.name] = encode(h.kind, group.hp[h.name])
            for k, v in group.extra.items():
                sd[prefix + k] = v
        for i, st in enumerate(self.state):
            for k, v in st.items():
                sd[f"{i}.{k}"] = self._backend.to_numpy(v)
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()`` (this layout, or the first one: one group, no
        hyperparameters): the groups' hyperparameters and steps, and the state. Every check runs before anything is
        changed."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{type(self).__name__}.load_state_dict: state_dict must be a dict "
                            f"as state_dict() returns, got {type(state_dict).__name__}")
        self._exclusive(lambda sd: load(self, sd), state_dict, "load_state_dict",
                        "load between steps")
