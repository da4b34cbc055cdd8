"""``torch.optim`` drop-ins that run fastopt's fused kernels: one class per rule.

    import fastopt.torch
    opt = fastopt.torch.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    for x, y in data:
        loss_fn(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        sched.step()

Each class subclasses ``torch.optim.Optimizer`` with torch's constructor (its keywords,
defaults and param groups), reads every ``p.grad`` in ``step(closure=None)`` and updates
``p`` in place: CPU tensors through a NumPy view of their memory (numba backend), CUDA
tensors through ``__cuda_array_interface__`` (cupy backend, on torch's current stream).
``param_groups`` are torch's: lr schedulers drive them; ``state_dict()`` is in torch's
layout. A param whose grad is None is skipped and its state not advanced, as in torch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import itertools
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch.autograd.graph import increment_version

from . import _checks
from ._atomic import hold_signals, release_signals
from .backends import numpy_of, tensor_of, torch_view
from .kernels import REGISTRY, Rule
from .kernels._blockwise import ABSMAX
from .kernels._reduce import clip_coefficient, grad_norm
from .optimizer import Optimizer, Precision
from .optimizers import CLASSES, bound_arguments, switch_methods
from .solvers.linesearch import lswolfe
from .solvers.problem import checked_loss

# torch keywords that only pick torch's code path: the result is the same without them
PATH_ONLY = ("foreach", "fused")
_FLOATS = ("bfloat16", "float16", "float32", "float64")    # state a load casts between
# fastopt's keywords for 16-bit params and state (keyword-only, after backend)
PRECISION = tuple(f.name for f in dataclasses.fields(Precision))


@dataclass
class Cohort:
    """Params of one torch group that have taken the same number of steps, updated by
    one fastopt optimizer (a group splits when some of its params get no grad)."""

    group: int                  # index in param_groups
    members: list[int]          # indices in that group's "params"
    core: Optimizer
    params: list                # the tensors
    addresses: list = field(default_factory=list)  # the params' data as viewed
    layouts: list = field(default_factory=list)    # GRAD_LAYOUT a grad of each must have
    strides: list | None = None  # per param: None (C order) or its strides; None for all C
    sharded: bool = False       # DTensor params (FSDP2): the kernels update each local shard
    backend: str = ""           # the core's
    synced: list | None = None      # the group's values (_synced_keys) the core has taken
    plain: bool = False         # all of them numbers, flags or None (no tensor to re-read)
    loaded: bool = False        # holds a loaded state at step 0 (torch shows it)


@dataclass(frozen=True)
class Lane:
    """What the last step rested on, for the next to take the same way (``_steady_step``):
    the cohorts it stepped with every grad (each with a check that a grad is laid out as
    that step's was) or skipped with none (check None)."""

    cohorts: tuple[Cohort, ...]
    checks: tuple[Callable[..., bool] | None, ...]


# what a grad shares with its param, compared for all of a cohort's grads in one pass
GRAD_LAYOUT = operator.attrgetter("dtype", "shape", "is_cpu")   # (sparse: not contiguous)
_GRAD = operator.attrgetter("grad")
_data_ptr = torch.Tensor.data_ptr


class ReadOnlyState(Mapping):
    """fastopt.torch's ``state`` and each param's entry in it: read-only mappings over
    fastopt's own buffers, whose assignments say what to do instead."""

    __slots__ = ("_items", "_what", "_missing")

    def __init__(self, items: dict, what: str, missing: bool = False) -> None:
        self._items, self._what, self._missing = items, what, missing

    def __getitem__(self, key: Any) -> Any:
        """The entry; with ``missing``, an empty one for a key without (torch's state is a
        defaultdict: ``len(opt.state[p]) == 0`` before p's first step)."""
        if self._missing and key not in self._items:
            return ReadOnlyState({}, "opt.state[p]")
        return self._items[key]

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError(f"{self._what} is read-only: fastopt keeps the state in its own buffers. "
                        "Change a state tensor in place (opt.state[p]['exp_avg'].copy_(t)) or "
                        "load a whole state with opt.load_state_dict(sd)")

    def __delitem__(self, key: Any) -> None:
        self[key] = None

    def __repr__(self) -> str:
        return repr(self._items)


def hooked_lightly(step: Callable) -> Callable:
    """``step`` as torch.optim.Optimizer wraps it (the step pre- and post-hooks, global and
    the optimizer's own, and the profiler's "Optimizer.step#X.step" range), with torch's
    wrapper entered only while a hook is registered or a profiler runs: its
    ``record_function`` costs ~10 us a step even with no profiler, as much as the whole
    update of a small model. Marked ``hooked`` so that torch does not wrap it again.

    Under ``torch.compile`` the step is one graph break, run as it is, never traced:
    traced, its per-step scalars became guards and every step recompiled."""
    from torch.optim import optimizer as torch_optimizer

    hooked = torch.optim.Optimizer.profile_hook_step(step)
    profiling = torch._C._autograd._profiler_enabled

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        # (a subclass's own step is wrapped by torch, which runs the hooks once)
        if type(self).step is light and (
                self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or torch_optimizer._global_optimizer_pre_hooks
                or torch_optimizer._global_optimizer_post_hooks or profiling()):
            return hooked(self, *args, **kwargs)
        out = step(self, *args, **kwargs)
        self._optimizer_step_code()
        return out
    # (~0.6 us a step: after a graph break the frames a step enters would still be
    # compiled, each with its own guards, so the whole step runs with dynamo off)
    light = functools.wraps(step)(torch.compiler.disable(run, recursive=True))
    light.hooked = True  # type: ignore[attr-defined]
    return light


class _Named:
    """Re-raise a TypeError or ValueError with ``core``'s name of a group replaced by
    ``torch``'s ("Adam: param_groups[0]" -> "Adam: param_groups[2]")."""

    __slots__ = ("core", "torch")

    def __init__(self, core: str, torch: str) -> None:
        self.core, self.torch = core, torch

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is not None and issubclass(kind, (TypeError, ValueError)):
            raise kind(str(exc).replace(self.core, self.torch)) from None


def _label(j: int, i: int) -> str:
    return f"param_groups[{j}]['params'][{i}]"


class TorchOptimizer(torch.optim.Optimizer):
    """Base class: torch's optimizer protocol over fastopt optimizers (``rule`` set by
    each subclass)."""

    rule: Rule
    fixed: dict[str, Any] = {}      # group keys torch's class sets and no keyword changes
    # torch.amp.GradScaler then sets grad_scale and found_inf for step(), which reads the
    # grads times 1/grad_scale and skips on an inf, as torch's fused optimizers do
    _step_supports_amp_scaling = True

    def __init__(self, params: Any, defaults: dict[str, Any], backend: str = "auto",
                 precision: Precision = Precision(), max_grad_norm: float | None = None
                 ) -> None:
        defaults = {**defaults, **self.fixed}
        self._backend_name, self._precision = backend, precision
        self._max_grad_norm = _checks.optional_positive(type(self).__name__, "max_grad_norm",
                                                        max_grad_norm)
        self._grad_norm: float | None = None
        self._cohorts: list[Cohort] = []
        self._version, self._state_cache = 0, (-1, None)
        self._scalars: list = []        # (0-d tensor in opt.state, the value it was given)
        self._built_from: tuple = ([], [])  # see _remember_structure
        self._orphans: dict = {}        # the state of params taken out of param_groups
        self._lane: Lane | None = None  # see _steady_step
        super().__init__(params, defaults)      # adds each group through add_param_group
        # rebuild from a loaded state before any hook of the user's sees it
        self.register_load_state_dict_post_hook(TorchOptimizer._after_load, prepend=True)

    def __copy__(self) -> TorchOptimizer:
        raise TypeError(f"{type(self).__name__}: a shallow copy would share the params but "
                        "not the state; use copy.deepcopy (new params and state) or "
                        "state_dict()")

    def __getstate__(self) -> dict[str, Any]:
        """torch's (defaults, state, param_groups) plus the backend: copies and pickles
        rebuild the kernels from them."""
        return {**super().__getstate__(), "state": _plain_state(self.state),
                "_backend_name": self._backend_name, "_precision": self._precision,
                "_max_grad_norm": self._max_grad_norm}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_backend_name" not in state:      # from load_state_dict: _after_load rebuilds
            super().__setstate__(state)
            return
        loaded = state.pop("state", {})
        super().__setstate__(state)
        self.__dict__.pop("state", None)
        self.__dict__.setdefault("_precision", Precision())   # (pickled before it existed)
        self.__dict__.setdefault("_max_grad_norm", None)
        self._grad_norm = None
        self._version, self._state_cache, self._scalars = 0, (-1, None), []
        self._lane = None
        self.register_load_state_dict_post_hook(TorchOptimizer._after_load, prepend=True)
        self._rebuild(loaded)

    # -- building ---------------------------------------------------------------------------
    def _views(self, j: int, members: list[int]) -> list:
        group = self.param_groups[j]
        for i in members:
            p = _local(group["params"][i])
            if not _dense(p):
                raise ValueError(f"{type(self).__name__}: {_label(j, i)} has gaps or overlaps "
                                 f"in its memory (shape {tuple(p.shape)}, strides {p.stride()});"
                                 " fastopt updates params that cover their memory densely, in "
                                 "any order (C order, channels_last, transposed)")
            if self.rule.whole is not None and (_is_dtensor(group["params"][i]) or
                                                not p.is_contiguous()):
                raise NotImplementedError(
                    f"{type(self).__name__}: {_label(j, i)} is "
                    + ("a DTensor shard" if _is_dtensor(group["params"][i]) else
                       f"laid out in another order than C's (strides {p.stride()})")
                    + f"; {type(self).__name__} updates each param whole, in C order: make "
                    "it a contiguous, unsharded tensor (p.data = p.data.contiguous())")
        views = [torch_view(_memory_order(_local(group["params"][i])),
                            f"{type(self).__name__}: {_label(j, i)}", sixteen_bit=True)
                 for i in members]
        devices = {str(p.device) for p in group["params"]}
        if len(devices) > 1:
            raise ValueError(f"{type(self).__name__}: param_groups[{j}] holds params on "
                             f"{sorted(devices)}; one group's params share one device")
        return views

    def _core_values(self, j: int) -> dict[str, Any]:
        group = self.param_groups[j]
        return {h.name: _number(group[h.name], self._key(j, h.name))
                for h in self.rule.hyperparams}

    @functools.cached_property
    def _synced_keys(self) -> tuple[str, ...]:
        """The group keys ``_sync`` follows: the rule's hyperparameters, then the keys
        torch's class fixes."""
        return tuple(h.name for h in self.rule.hyperparams) + tuple(self.fixed)

    def _key(self, j: int, name: str) -> str:
        """A group's hyperparameter as errors name it: "Adam: param_groups[0]['lr']"."""
        return f"{type(self).__name__}: param_groups[{j}]['{name}']"

    def _new_cohort(self, j: int, members: list[int]) -> Cohort:
        core_class = CLASSES[self.rule.class_name]
        group = self.param_groups[j]
        _refuse_torch_options(f"{type(self).__name__}: param_groups[{j}]",
                              {k: group.get(k) for k in ("differentiable", "capturable")})
        with self._named(j):                    # named as the torch user sees the group
            core = core_class([{"params": self._views(j, members), **self._core_values(j)}],
                              backend=self._backend_name,
                              max_grad_norm=self._max_grad_norm,
                              **dataclasses.asdict(self._precision))
        params = [group["params"][i] for i in members]
        self._version += 1
        sharded = any(map(_is_dtensor, params))
        memory = list(map(_local, params)) if sharded else params
        strides = None if all(map(torch.Tensor.is_contiguous, memory)) else \
            [None if p.is_contiguous() else p.stride() for p in memory]
        return Cohort(j, members, core, params, addresses=list(map(_data_ptr, memory)),
                      layouts=list(map(GRAD_LAYOUT, memory)), backend=core.backend,
                      strides=strides, sharded=sharded)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group`` (checks, defaults); the new group gets fresh state."""
        super().add_param_group(param_group)
        j = len(self.param_groups) - 1
        try:
            self._cohorts.append(self._new_cohort(j, list(range(len(self.param_groups[j]
                                                                    ["params"])))))
        except BaseException:
            self.param_groups.pop()
            raise
        self._remember_structure()

    # -- the step -----------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every param that has a grad; returns ``closure()``'s loss. (No
        ``torch.no_grad``: the kernels write through NumPy views, outside autograd.)"""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # torch.amp.GradScaler's protocol for optimizers that unscale in their kernels
        # (``_step_supports_amp_scaling``): it sets these two for the call
        scale, found_inf = getattr(self, "grad_scale", None), getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf):
            return loss             # an inf or NaN in the scaled grads: no step, as torch's
        scaled = scale is not None or self._max_grad_norm is not None
        if not scaled and self._lane is not None and self._steady_step(self._lane):
            return loss
        self._lane = None
        held = hold_signals()       # cohorts rebuilt, changes applied and every cohort
        try:                        # stepped, or (on an error before the kernels) none
            plans = self._plans()
            if scaled:
                self._step_scaled(plans, 1.0 if scale is None else 1.0 / float(scale))
            else:
                self._step_cohorts(plans)
        finally:
            release_signals(held)
        if not scaled:
            self._lane = self._lane_after(plans)
        return loss

    @property
    def max_grad_norm(self) -> float | None:
        """The global norm the grads are clipped to at each step (None: not clipped)."""
        return self._max_grad_norm

    @property
    def grad_norm(self) -> float | None:
        """With ``max_grad_norm``: the norm of the last step's grads (unscaled) before
        clipping, over every param with a grad (``clip_grad_norm_``'s result)."""
        return self._grad_norm

    def _step_scaled(self, plans: list, unscale: float) -> None:
        """Every cohort stepped with its grads read times one factor: ``unscale``
        (1/grad_scale under amp) times, with ``max_grad_norm``, the clip coefficient of
        the norm over all the cohorts' grads, taken first (kernels/_reduce.py)."""
        located = [(cohort, self._located(cohort, grads)) for cohort, grads in plans]
        gscale = unscale
        if self._max_grad_norm is not None:
            total = 0.0
            for cohort, resolved in located:
                total = cohort.core._sumsq(resolved, total)
            self._grad_norm = grad_norm(_summed_over_shards(total, plans)) * unscale
            gscale *= clip_coefficient(self._max_grad_norm, self._grad_norm)
        for cohort, resolved in located:
            increment_version(cohort.params)
            core = cohort.core
            with _torch_stream(cohort.params[0].device) if cohort.backend == "cupy" else \
                    contextlib.nullcontext():
                core._exclusive(lambda job: core._step_scaled(*job), (resolved, gscale),
                                "step", "a step cannot nest")

    @staticmethod
    def _located(cohort: Cohort, grads: list) -> Any:
        """The cohort's grads as its core's kernels take them (checked, located)."""
        core = cohort.core
        if cohort.backend == "numba":
            pointers = core._resolver.at(_addresses(grads))   # (its resolver's own buffer)
            if pointers is not None:
                return pointers
        return core._resolver.resolve([_view(_memory_order(g)) for g in grads])

    def _steady_step(self, lane: Lane) -> bool:
        """The step taken as the last one was, when nothing it rested on changed: the same
        cohorts and param_groups, each cohort's params at the same addresses with grads laid
        out as then (or all still without one), and no group change the core must check;
        False, with nothing done, otherwise (``_plans`` then looks at everything). ~0.6 us a
        tensor: reading its grad, checking it, both addresses and the autograd version."""
        if self._scalars:
            self._scalars_edited()
        cohorts = self._cohorts
        if len(cohorts) != len(lane.cohorts) or not all(map(operator.is_, cohorts,
                                                            lane.cohorts)):
            return False
        if not self._same_structure():
            return False
        plans = []
        for cohort, check in zip(cohorts, lane.checks):
            grads = list(map(_GRAD, cohort.params))
            if check is None:
                if any(map(operator.is_not, grads, itertools.repeat(None))):
                    return False
            elif not check(*grads) or list(map(_data_ptr, cohort.params)) != cohort.addresses:
                return False
            else:
                plans.append((cohort, grads))
        for cohort, _ in plans:
            self._sync(cohort)
            if cohort.core._changes.groups:     # applied by _plans, which names its errors
                return False
        self._version += 1
        if len(plans) == 1:                     # (the core's step holds the signals)
            self._step_cohorts(plans)
            return True
        held = hold_signals()
        try:
            self._step_cohorts(plans)
        finally:
            release_signals(held)
        return True

    def _lane_after(self, plans: list) -> Lane | None:
        """The lane of the step just taken: where every cohort runs on the numba backend
        over plain tensors, each stepped with all its grads or skipped with none."""
        if any(c.backend != "numba" or c.sharded for c, _ in plans):
            return None
        stepped = {id(c): grads for c, grads in plans}
        return Lane(tuple(self._cohorts),
                    tuple(None if id(c) not in stepped else _grad_check(stepped[id(c)], c)
                          for c in self._cohorts))

    def _plans(self) -> list:
        """(cohort, its grads) of every cohort with a grad, its changes checked and applied:
        everything that may raise, before any param moves."""
        if self._scalars:
            self._scalars_edited()
        if not self._same_structure():
            self._restructure()
        plans = []
        for cohort in list(self._cohorts):
            cohort = self._current(cohort)
            grads, whole = self._grads(cohort)
            if whole is None:       # p.data = p.data.t(): same address, another layout
                cohort = self._current(cohort, rebind=True)
                grads, whole = self._grads(cohort)
            if not whole:
                if all(g is None for g in grads):
                    continue
                cohort, grads = self._split(cohort, grads)
            self._sync(cohort)
            plans.append((cohort, grads))
        for cohort, _ in plans:
            if cohort.core._changes.groups:
                with self._named(cohort.group):
                    cohort.core._apply_changes()
        self._version += 1
        return plans

    @staticmethod
    def _step_cohorts(plans: list) -> None:
        """Each cohort's kernels, then autograd told that its params changed in place (a
        graph that saved them raises on backward, as after torch's own step)."""
        for cohort, grads in plans:
            increment_version(cohort.params)    # first: an interrupt after it leaves no
            if cohort.backend == "cupy":        # changed param with its old version
                with _torch_stream(cohort.params[0].device):
                    cohort.core.step([_view(_memory_order(g)) for g in grads])
            elif not (cohort.backend == "numba" and cohort.core._step_at(_addresses(grads))):
                cohort.core.step([_view(_memory_order(g)) for g in grads])

    def _current(self, cohort: Cohort, rebind: bool = False) -> Cohort:
        """``cohort``, rebuilt over its params' present memory if one was rebound since
        (``p.data = ...``, ``vector_to_parameters``, ``model.double()``; ``rebind``: one
        that kept its address), its state carried over; an error naming the param when
        that state no longer fits it."""
        memory = list(map(_local, cohort.params)) if cohort.sharded else cohort.params
        if not rebind and list(map(_data_ptr, memory)) == cohort.addresses:
            return cohort
        fresh = self._new_cohort(cohort.group, cohort.members)
        fresh.loaded = cohort.loaded
        try:
            if cohort.core.step_count or cohort.loaded:   # else there is no state to keep
                fresh.core.load_state_dict(_relaid(cohort, fresh))
        except (TypeError, ValueError):
            raise ValueError(f"{type(self).__name__}: a param of param_groups[{cohort.group}]"
                             f" changed shape or dtype since its state was made; build a "
                             f"new optimizer for it") from None
        self._cohorts[self._cohorts.index(cohort)] = fresh
        return fresh

    def _named(self, j: int) -> Any:
        """A context re-raising the core's errors under the torch group's name."""
        return _Named(f"{CLASSES[self.rule.class_name].__name__}: param_groups[0]",
                      f"{type(self).__name__}: param_groups[{j}]")

    def _grads(self, cohort: Cohort) -> tuple[list, bool]:
        """(the cohort's grads, None where a param has none; whether every param has one),
        each checked against its param's dtype, shape, layout and device in this step:
        torch checks ``p.grad = g`` but not ``p.grad.data = g``, and the compiled step
        reads every address it is given. A wrong grad takes the checks that name it."""
        grads = [p.grad for p in cohort.params]
        if cohort.sharded:                  # each rank steps its shards
            self._check_placements(cohort, grads)
            grads = [None if g is None else _local(g) for g in grads]
        if _laid_out_as(grads, cohort.layouts, cohort.strides):
            return grads, True
        strides = cohort.strides or [None] * len(grads)
        for g, (dtype, shape, on_cpu), stride in zip(grads, cohort.layouts, strides):
            if g is not None and (g.dtype is not dtype or g.shape != shape or g.is_sparse
                                  or g.is_cpu is not on_cpu or not _laid_out(g, stride)):
                self._refuse_grad(cohort, grads)
                if all(g is not None for g in grads):   # right for the params as they are
                    return grads, None                   # now: a view at the same address
        return grads, False

    def _check_placements(self, cohort: Cohort, grads: list) -> None:
        """A DTensor param's grad is sharded as the param (a Partial or Replicate grad
        would be stepped unreduced, or with the wrong elements)."""
        for i, p, g in zip(cohort.members, cohort.params, grads):
            if g is not None and getattr(g, "placements", None) != p.placements:
                raise ValueError(f"{type(self).__name__}: {_label(cohort.group, i)} has a "
                                 f"grad with placements {getattr(g, 'placements', None)}, "
                                 f"its param {p.placements}; redistribute the grad as the "
                                 "param (FSDP2's reduce-scatter gives it so)")

    def _refuse_grad(self, cohort: Cohort, grads: list) -> None:
        memory = map(_local, cohort.params) if cohort.sharded else cohort.params
        for i, p, g in zip(cohort.members, memory, grads):
            what = f"{type(self).__name__}: {_label(cohort.group, i)}"
            if g is None:
                continue
            if g.is_sparse:
                raise RuntimeError(f"{what} has a sparse grad; fastopt does not support "
                                   f"sparse gradients")
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(f"{what} has a grad of shape {tuple(g.shape)} and dtype "
                                 f"{g.dtype}, its param {tuple(p.shape)} {p.dtype} (was "
                                 "p.grad.data replaced?)")
            if g.device != p.device:
                raise ValueError(f"{what} has a grad on {g.device}, its param is on "
                                 f"{p.device}")
            if not _laid_out(g, None if p.is_contiguous() else p.stride()):   # (as now)
                raise ValueError(f"{what} has a grad with strides {g.stride()}, its param "
                                 f"{p.stride()}; give it a grad laid out like its param "
                                 "(torch.empty_like(p).copy_(g))")

    def _split(self, cohort: Cohort, grads: list) -> tuple[Cohort, list]:
        """Split ``cohort`` into the params with grads and those without (their state and
        step count carried over); returns the first and its grads."""
        have = [k for k, g in enumerate(grads) if g is not None]
        lack = [k for k, g in enumerate(grads) if g is None]
        parts = []
        sd = cohort.core.state_dict()
        for ks in (have, lack):
            part = self._new_cohort(cohort.group, [cohort.members[k] for k in ks])
            part.core.load_state_dict(_subset(sd, ks))
            part.loaded = cohort.loaded
            parts.append(part)
        at = self._cohorts.index(cohort)
        self._cohorts[at:at + 1] = parts       # (new cohorts renew the state's version)
        return parts[0], [grads[k] for k in have]

    def _sync(self, cohort: Cohort) -> None:
        """Give the core the torch group's hyperparameters where they differ from its own
        (an lr scheduler's change, a tensor lr filled in place, a user's); the core checks
        them before this step changes anything. Only values that are not the objects of
        the last step are looked at (~0.8 us when none is); a new float lr alone goes
        straight to the core (~1.5 us more, its step scalars made once)."""
        group = self.param_groups[cohort.group]
        try:
            values = self._synced_values(group)
        except KeyError:                    # (a key deleted: None, which the checks name)
            values = tuple(map(group.get, self._synced_keys))
        last = cohort.synced
        if last is None or not cohort.plain:
            changed: Any = range(len(values))
        else:
            if all(map(operator.is_, values, last)):
                return
            lr, at = values[self._lr_at], self._lr_at
            if type(lr) is float:           # a scheduler's step, if nothing else changed
                before, last[at] = last[at], lr
                if all(map(operator.is_, values, last)) and cohort.core._take_lr(0, lr):
                    return
                last[at] = before
            changed = list(itertools.compress(range(len(values)),
                                              map(operator.is_not, values, last)))
        hyper = self.rule.hyperparams
        core_group = cohort.core.param_groups[0]
        for k in changed:
            value = values[k]
            if k >= len(hyper):
                self._check_fixed(cohort.group, self._synced_keys[k], value)
                continue
            name = hyper[k].name
            if name == "lr" and type(value) is float and cohort.core._take_lr(0, value):
                continue
            number = _number(value, self._key(cohort.group, name))
            current = core_group[name]
            if number != current or type(number) is not type(current):   # 0.1+0j == 0.1
                core_group[name] = number
        cohort.plain = all(map(_plain, values))
        cohort.synced = list(values)

    @functools.cached_property
    def _synced_values(self) -> Callable[[dict], tuple]:
        """A group's values of the ``_synced_keys``, as a tuple (0.2 us)."""
        keys = self._synced_keys
        return operator.itemgetter(*keys) if len(keys) > 1 else lambda g: (g[keys[0]],)

    @functools.cached_property
    def _lr_at(self) -> int:
        return self._synced_keys.index("lr")

    def _check_fixed(self, j: int, key: str, value: Any) -> None:
        """A key torch's class fixes (AdamW's decoupled_weight_decay) keeps its value."""
        fixed = self.fixed[key]
        if value is not None and value != fixed:
            raise ValueError(f"{self._key(j, key)} is {value!r}; {type(self).__name__} always "
                             f"has {fixed!r} (torch's class sets it): use another class for "
                             "another value")

    # -- state, in torch's layout --------------------------------------------------------
    @property
    def state(self) -> Any:
        """Per param that has stepped, torch's state (read-only; ``load_state_dict``
        changes it): "step" (not for SGD), the rule's arrays under torch's names as
        tensors sharing fastopt's buffers, and scalar state (NAdam's "mu_product") as 0-d
        tensors. Built once per step."""
        version, cached = self._state_cache
        if version == self._version:
            return cached
        out = {p: ReadOnlyState(st, "opt.state[p]") for p, st in self._orphans.items()}
        self._scalars = []
        for cohort in self._cohorts:
            group = cohort.core._groups[0]
            if group.t == 0 and not cohort.loaded:
                continue
            scalars = {"step": float(group.t)} if self.rule.torch_step else {}
            scalars.update({self.rule.torch_state[k]: v for k, v in group.extra.items()})
            for p, arrays in zip(cohort.params, cohort.core.state):
                st = {key: torch.tensor(v, dtype=None if key == "step" else torch.float64)
                      for key, v in scalars.items()}    # (scalar state kept exactly)
                self._scalars += [(t, scalars[key]) for key, t in st.items()]
                st.update({self._torch_name(k): _as_tensor(a) if k.endswith(ABSMAX) else
                           _state_tensor(_as_tensor(a), p) for k, a in arrays.items()})
                if st:
                    out[p] = ReadOnlyState(st, "opt.state[p]")
        self._state_cache = (self._version, ReadOnlyState(out, "opt.state", missing=True))
        return self._state_cache[1]

    def _structure(self) -> list | None:
        """What the cohorts were built from: each group, its params list and its params
        (a group list reordered or appended to, a params list replaced or edited, by the
        user, differs); None if a group is not a dict with params."""
        try:
            return [(id(g), id(g["params"]), *map(id, g["params"])) for g in self.param_groups]
        except (TypeError, KeyError):
            return None

    def _same_structure(self) -> bool:
        """Whether ``param_groups`` holds the groups, params lists and params the cohorts
        were built from (identity, in one pass: ~0.03 us a param; else the full check)."""
        saved = self._built_from[1]
        groups = self.param_groups
        if len(groups) == len(saved) and all(
                g is g0 and type(g) is dict and g.get("params") is p0 and len(p0) == len(m0)
                and all(map(operator.is_, p0, m0)) for g, (g0, p0, m0) in zip(groups, saved)):
            return True
        return self._structure() == self._built_from[0]

    def _remember_structure(self) -> None:
        """Keep what the cohorts are built from (and the objects, so their ids stay theirs)."""
        self._built_from = (self._structure(),
                            [(g, g["params"], list(g["params"])) for g in self.param_groups])

    def _restructure(self) -> None:
        """The cohorts again after the user edited ``param_groups`` directly (reversed,
        appended a dict, replaced or edited a params list): each group checked as
        ``add_param_group`` checks it (defaults filled in), each param keeping its state."""
        name = type(self).__name__
        seen: set[int] = set()
        for j, group in enumerate(self.param_groups):
            if not isinstance(group, dict) or not isinstance(group.get("params"), list):
                raise TypeError(f"{name}: param_groups[{j}] must be a dict with a list of "
                                f"params, got {type(group).__name__}{_params_type(group)}; "
                                "add groups with add_param_group")
            for i, p in enumerate(group["params"]):
                what = "a param already in a group" if id(p) in seen else type(p).__name__
                if not isinstance(p, torch.Tensor) or id(p) in seen:
                    raise ValueError(f"{name}: {_label(j, i)} is {what}; each param appears "
                                     "once, as a tensor")
                seen.add(id(p))
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        self._rebuild(_plain_state(self.state))

    def _rebuild(self, state: dict) -> None:
        """Every cohort again from a per-param torch state (plain dicts), each param keeping
        its own step; the entries of params no group holds stay in ``opt.state``, as torch
        keeps them. Nothing changes when it raises."""
        self._cohorts = self._cohorts_of(state)
        present = {id(p) for group in self.param_groups for p in group["params"]}
        self._orphans = {p: st for p, st in state.items() if id(p) not in present}
        self._remember_structure()

    def _scalars_edited(self) -> None:
        """Follow a "step" or "mu_product" of ``opt.state[p]`` changed in place since the
        state was built (the arrays share fastopt's buffers; these 0-d tensors do not)."""
        version, cached = self._state_cache
        if version != self._version or not any(t.item() != v for t, v in self._scalars):
            return
        try:
            self._rebuild(_plain_state(cached))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc} (opt.state[p] was changed in place)") from None

    @state.setter
    def state(self, value: Any) -> None:
        """torch's base class assigns its own (empty) state; fastopt keeps the real one."""

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: {"state": {index: {...}}, "param_groups": [...]}, loadable by
        this class and by torch.optim's class of the same rule. A snapshot: its tensors are
        copies (torch's share the optimizer's; ``torch.save`` makes copies anyway)."""
        sd = super().state_dict()
        sd["state"] = _plain_state(sd["state"])
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict`` (a state_dict of this class or of torch.optim's same
        rule): the groups' hyperparameters and each param's state and step, rebuilt before
        the user's post hooks run. Nothing changes when it fails."""
        self._check_loaded_groups(state_dict)
        self._groups_before_load = [dict(g) for g in self.param_groups]
        self._loading = state_dict
        held = hold_signals()       # the groups and the cohorts change together
        try:
            super().load_state_dict(state_dict)
        finally:
            del self._groups_before_load, self._loading
            release_signals(held)

    def _check_loaded_groups(self, state_dict: Any) -> None:
        """A dict of another rule fails here, by name: its groups lack this rule's
        hyperparameters (a flag torch added later, e.g. maximize, takes this optimizer's
        default, as torch's own ``__setstate__`` gives it)."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, Mapping) else None
        for j, group in enumerate(groups if isinstance(groups, list) else []):
            missing = [h.name for h in self.rule.hyperparams
                       if h.kind != "flag" and isinstance(group, Mapping) and h.name not in group]
            if missing:
                raise ValueError(f"{type(self).__name__}.load_state_dict: param_groups[{j}] of "
                                 f"the state_dict lacks {missing}: is it another optimizer's? "
                                 f"(its keys: {sorted(k for k in group if k != 'params')})")
            for key, value in self.fixed.items():
                if isinstance(group, Mapping) and group.get(key, value) != value:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: param_groups[{j}]"
                                     f" of the state_dict has {key}={group[key]!r}, which "
                                     f"{type(self).__name__} never has: is it another class's "
                                     "(torch.optim.Adam's for AdamW)?")

    @staticmethod
    def _after_load(self: TorchOptimizer) -> None:
        loaded = self._as_saved(self.__dict__.pop("state", {}))
        for group in self.param_groups:         # flags torch added later: their defaults
            for name in [h.name for h in self.rule.hyperparams] + list(self.fixed):
                group.setdefault(name, self.defaults[name])
        try:
            self._rebuild(loaded)
        except BaseException:
            self.param_groups[:] = self._groups_before_load
            raise

    def _as_saved(self, loaded: dict) -> dict:
        """The state torch loaded with each tensor as the state_dict held it: torch casts
        a 16-bit param's state to the param's dtype, which would round fastopt's float32
        state (the params matched to the dict's indices as torch matches them)."""
        given = getattr(self, "_loading", None)
        if not isinstance(given, Mapping) or not isinstance(given.get("state"), Mapping):
            return loaded
        saved = [i for g in given.get("param_groups", []) for i in g.get("params", [])]
        params = [p for g in self.param_groups for p in g["params"]]
        raw = dict(zip(params, (_unwrapped(given["state"].get(i)) for i in saved)))
        return {p: {k: raw[p][k] if isinstance(raw.get(p), Mapping) and isinstance(
                    raw[p].get(k), torch.Tensor) and raw[p][k].dtype != v.dtype
                    and k != "step" else v for k, v in _unwrapped(st).items()}
                if isinstance(st, Mapping) else st for p, st in loaded.items()}

    def _cohorts_of(self, loaded: Any) -> list[Cohort]:
        """Every group's cohorts from a loaded per-param state."""
        return [c for j in range(len(self.param_groups)) for c in self._loaded_cohorts(j, loaded)]

    def _loaded_cohorts(self, j: int, loaded: Any) -> list[Cohort]:
        """Group j's params from a loaded state, one cohort per step count and scalar
        state (NAdam's mu_product, per param in torch)."""
        params = self.param_groups[j]["params"]
        scalars = [v for k, v in self.rule.torch_state.items() if k in self.rule.extra]
        by_step: dict[tuple, list[int]] = {}
        for i, p in enumerate(params):
            st = loaded.get(p, {})
            key = (self._loaded_step(st, j, i), _holds_state(st),
                   *(self._loaded_number(st, k, j, i) for k in scalars))
            by_step.setdefault(key, []).append(i)
        cohorts = []
        for (t, holds, *_), members in by_step.items():
            cohort = self._new_cohort(j, members)
            if t > 0 or holds:           # (a state at step 0 is kept, as torch keeps it)
                cohort.loaded = holds
                try:
                    cohort.core.load_state_dict(self._core_state(cohort, t, loaded))
                except (TypeError, ValueError) as exc:
                    raise type(exc)(self._torch_keys(str(exc), cohort)) from None
            cohorts.append(cohort)
        return cohorts

    def _torch_keys(self, message: str, cohort: Cohort) -> str:
        """A core's load error with its state keys ("0.m") and owner in torch's terms:
        ``state[3]['exp_avg']`` (the index in torch's state_dict), the param's group."""
        first = sum(len(g["params"]) for g in self.param_groups[:cohort.group])
        torch_names = self.rule.torch_state

        def torch_key(match: re.Match) -> str:
            i = cohort.members[int(match[1])]
            return (f"state[{first + i}][{torch_names.get(match[2], match[2])!r}] "
                    f"({_label(cohort.group, i)})")
        message = re.sub(r"(?<=: )(\d+)\.([A-Za-z_]\w*)(?= )", torch_key, message)
        core = CLASSES[self.rule.class_name].__name__
        return message.replace(f"{core}.load_state_dict: param_groups[0]",
                               f"{type(self).__name__}.load_state_dict: "
                               f"param_groups[{cohort.group}]").replace(
            f"{core}.load_state_dict", f"{type(self).__name__}.load_state_dict")

    def _loaded_number(self, st: dict, key: str, j: int, i: int) -> Any:
        """A number of a param's loaded state ("step", "mu_product"), named when it is not
        one; None where the state has no key."""
        return _number(st.get(key), f"{type(self).__name__}.load_state_dict: "
                                    f"{_label(j, i)}'s {key!r}")

    def _loaded_step(self, st: dict, j: int, i: int) -> int:
        if not st:
            return 0
        if not self.rule.torch_step:   # SGD keeps no step: a momentum buffer means t >= 1
            return 1 if _holds_state(st) else 0        # (None: torch starts it afresh)
        if "step" not in st:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state of "
                             f"{_label(j, i)} has {sorted(st)} but no 'step'")
        step = self._loaded_number(st, "step", j, i)
        if not float(step).is_integer() or step < 0:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {_label(j, i)} has "
                             f"step {step!r}; expected a whole number >= 0")
        return int(step)

    def _core_state(self, cohort: Cohort, t: int, loaded: Any) -> dict[str, Any]:
        """The fastopt state_dict of a cohort from torch's per-param state."""
        core = cohort.core
        sd = core.state_dict()
        sd.update({"step": t, "groups.0.step": t})
        if self.rule.switch_state:          # the mode the params were saved in
            sd["train_mode"] = bool(self.param_groups[cohort.group].get("train_mode", True))
        params = self.param_groups[cohort.group]["params"]
        names = {v: k for k, v in self.rule.torch_state.items()}
        first = loaded.get(params[cohort.members[0]], {})
        for key, value in first.items():
            if names.get(key) in self.rule.extra:
                sd[f"groups.0.{names[key]}"] = _number(value)
        for k, i in enumerate(cohort.members):
            st = loaded.get(params[i], {})
            if _BNB_KEYS[0] in st:
                st = self._from_bitsandbytes(st, core, k, cohort.group, i)
            arrays = [n for n in core._state_names(core._groups[0].hp, k)
                      if n != "master" or "master" in st]
            for name in (*arrays, *self.rule.extra):
                key = self._torch_name(name)
                if name in self.rule.extra and key in st:
                    continue                     # the cohort's, from its first member
                if key not in st:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: the state of "
                                     f"{_label(cohort.group, i)} lacks {key!r}")
                value = _to_numpy(_loaded_like(_local(st[key]), _local(params[i])))
                kept = sd.get(f"{k}.{name}")      # (torch keeps a bfloat16 param's state
                sd[f"{k}.{name}"] = value.astype(kept.dtype) if kept is not None and \
                    value.dtype != kept.dtype and value.dtype.name in _FLOATS else value
        return sd

    # -- names, and bitsandbytes' state ---------------------------------------------------
    def _torch_name(self, name: str) -> str:
        """A core state name as opt.state shows it: torch's ("exp_avg"), and for 8-bit state
        its absmaxes under torch's name too ("exp_avg_absmax")."""
        if name.endswith(ABSMAX):
            return self.rule.torch_state.get(name[:-len(ABSMAX)], name) + ABSMAX
        return self.rule.torch_state.get(name, name)

    def _bnb_names(self, hp: Mapping[str, Any]) -> list[str]:
        """The core state that bitsandbytes keeps as "state1", "state2": the rule's, in
        order (Adam, AdamW: m, v; Lion: m)."""
        return list(self.rule.state_used(hp))

    def _from_bitsandbytes(self, st: Mapping[str, Any], core: Optimizer, k: int, j: int,
                           i: int) -> dict[str, Any]:
        """A bitsandbytes optimizer's state of one param (the core's param k; "step",
        "state1", "absmax1", "qmap1", ...) in this optimizer's names: 8-bit state whose map
        is fastopt's as it is (codes and absmaxes), any other (another map, or the float32
        state bitsandbytes keeps for small params) as float32 values, quantized where this
        optimizer keeps 8-bit state for the param."""
        from .kernels._blockwise import QMAPS, dequantize, quantize

        owner = f"{type(self).__name__}.load_state_dict: {_label(j, i)}"
        out = {key: v for key, v in st.items() if key not in _BNB_KEYS}
        eight = core._eight(k)
        for n, name in enumerate(self._bnb_names(core._groups[0].hp), 1):
            if f"state{n}" not in st:
                raise ValueError(f"{owner}: its bitsandbytes state lacks 'state{n}' (for "
                                 f"{self._torch_name(name)!r})")
            value, signed = _to_numpy(st[f"state{n}"]), self.rule.signed(name)
            if value.dtype == np.uint8:
                qmap = _to_numpy(st.get(f"qmap{n}", np.zeros(0, np.float32)))
                absmax = _to_numpy(st.get(f"absmax{n}", np.zeros(0, np.float32)))
                if eight and np.array_equal(qmap, QMAPS[int(signed)]):
                    out[self._torch_name(name)] = torch.from_numpy(value)
                    out[self._torch_name(name + ABSMAX)] = torch.from_numpy(absmax)
                    continue
                if qmap.shape != (256,):
                    raise ValueError(f"{owner}: its bitsandbytes 'state{n}' is 8-bit without "
                                     f"a 256-value 'qmap{n}'")
                value = dequantize(value, absmax, signed, qmap)
            value = np.asarray(value, np.float32)
            if eight:
                codes, absmax = quantize(value, signed)
                out[self._torch_name(name)] = torch.from_numpy(codes)
                out[self._torch_name(name + ABSMAX)] = torch.from_numpy(absmax)
            else:
                out[self._torch_name(name)] = torch.from_numpy(value)
        return out

    def bitsandbytes_state_dict(self) -> dict[str, Any]:
        """``state_dict()`` in the layout of bitsandbytes' 8-bit optimizers (Adam8bit,
        AdamW8bit, Lion8bit) for one built with ``state_dtype="int8"``: per param "step",
        "state1"/"state2" (uint8 codes, or float32 state for params under min_8bit_size,
        as theirs), "absmax1"/"absmax2" and "qmap1"/"qmap2" (bitsandbytes' dynamic maps,
        the ones these codes use). Its ``load_state_dict`` takes it and goes on from there; this
        optimizer's ``load_state_dict`` takes theirs (docs/guide/precision.md)."""
        from .kernels._blockwise import QMAPS

        if self._precision.state_dtype != "int8":
            raise ValueError(f"{type(self).__name__}.bitsandbytes_state_dict: bitsandbytes' "
                             "8-bit layout holds 8-bit state; this optimizer keeps "
                             f"state_dtype={self._precision.state_dtype!r} (build it with "
                             "state_dtype='int8')")
        sd = self.state_dict()
        for group in sd["param_groups"]:   # (theirs all carry an eps, Lion's unused)
            group.setdefault("eps", 0.0)
        params = [p for g in self.param_groups for p in g["params"]]
        for index, st in list(sd["state"].items()):
            core = next(c.core for c in self._cohorts if any(p is params[index]
                                                            for p in c.params))
            mine = {"step": int(st["step"])} if "step" in st else {}   # (theirs: an int)
            for n, name in enumerate(self._bnb_names(core._groups[0].hp), 1):
                mine[f"state{n}"] = st[self._torch_name(name)]
                if self._torch_name(name + ABSMAX) in st:        # (else float32 state)
                    mine[f"absmax{n}"] = st[self._torch_name(name + ABSMAX)]
                    mine[f"qmap{n}"] = torch.from_numpy(QMAPS[int(self.rule.signed(name))].copy())
            sd["state"][index] = mine
        return sd


_BNB_KEYS = ("state1", "state2", "absmax1", "absmax2", "qmap1", "qmap2")
_BNB_WRAPPED = "__bnb_optimizer_quant_state__"   # where their state_dict() puts those keys


def _unwrapped(st: Any) -> Any:
    """A param's loaded state with bitsandbytes' wrapped 8-bit keys at the top level."""
    if not isinstance(st, Mapping) or not isinstance(st.get(_BNB_WRAPPED), Mapping):
        return st
    return {**{k: v for k, v in st.items() if k != _BNB_WRAPPED}, **st[_BNB_WRAPPED]}

TorchOptimizer.step = hooked_lightly(TorchOptimizer.step)  # type: ignore[method-assign]


def _holds_state(st: dict) -> bool:
    """Whether a param's loaded state holds more than its step (a momentum buffer of None
    does not: torch starts it afresh)."""
    return any(k != "step" and v is not None for k, v in st.items())


def _plain_state(state: Any) -> dict:
    """A state mapping as plain dicts of copied tensors (picklable, independent)."""
    return {k: {name: v.clone() if isinstance(v, torch.Tensor) else v for name, v in st.items()}
            for k, st in state.items()}


def _params_type(group: Any) -> str:
    return f" of params {type(group.get('params')).__name__}" if isinstance(group, dict) else ""


def _plain(value: Any) -> bool:
    """A value that cannot change in place: a number, flag, None, or a tuple of them."""
    if isinstance(value, tuple):
        return all(map(_plain, value))
    return value is None or isinstance(value, (bool, int, float))


def _relaid(old: Cohort, fresh: Cohort) -> dict[str, Any]:
    """``old``'s core state_dict for ``fresh``, built over the same params rebound to new
    memory: where a param's layout changed (``model.to(memory_format=...)``), its state
    arrays are laid out as the param now is."""
    sd = old.core.state_dict()
    if old.strides == fresh.strides:
        return sd
    for k, (p, (_, shape, _)) in enumerate(zip(map(_local, fresh.params), old.layouts)):
        was = old.strides[k] if old.strides else None
        for key in [key for key in sd if key.startswith(f"{k}.")]:
            value = _as_tensor(sd[key])
            if was is not None and value.numel() == math.prod(shape):
                value = value.as_strided(shape, was)    # the old memory order, as the param
            sd[key] = _to_numpy(_loaded_like(value, p))
    return sd


@functools.cache
def _dtensor_class() -> type | None:
    """torch.distributed's DTensor, or None in a torch built without distributed."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return None
    return DTensor


def _is_dtensor(t: Any) -> bool:
    cls = _dtensor_class()
    return cls is not None and isinstance(t, cls)


def _local(t: Any) -> Any:
    """A DTensor's shard on this rank, sharing its memory (FSDP2's params, grads and
    state); anything else as it is."""
    if not _is_dtensor(t):
        return t
    with torch.no_grad():                   # (no autograd function around the shard)
        return t.to_local()


def _state_tensor(state: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A state buffer as torch shows it for ``p``: laid out as the param, and for a
    DTensor param a DTensor of the same mesh and placements over this rank's shard."""
    if not _is_dtensor(p):
        return _like(state, p)
    return _dtensor_class().from_local(_like(state, _local(p)), p.device_mesh, p.placements,
                                       run_check=False, shape=p.shape, stride=p.stride())


def _memory_order(t: torch.Tensor) -> torch.Tensor:
    """A dense tensor's elements as one vector in the order they lie in memory (its own
    self where that is C order): what an elementwise update may run over in place, for a
    channels_last or transposed param as for any other. A tensor with gaps or overlaps is
    returned as it is (the views' checks then refuse it)."""
    if t.is_contiguous() or not _dense(t):
        return t
    return t.detach().as_strided((t.numel(),), (1,))


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t`` covers its span of memory exactly once (non-overlapping and dense,
    in any order of its dimensions)."""
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda d: d[1]):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def _laid_out_as(grads: Any, layouts: list, strides: list | None) -> bool:
    """Whether every grad is present and has its param's dtype, shape, device and layout
    (``layouts``: GRAD_LAYOUT, ``strides``: Cohort.strides): ~0.6 us a grad."""
    try:
        return list(map(GRAD_LAYOUT, grads)) == layouts and (
            all(map(torch.Tensor.is_contiguous, grads)) if strides is None
            else all(map(_laid_out, grads, strides)))
    except AttributeError:              # a None among them
        return False


def _grad_check(grads: list, cohort: Cohort) -> Callable[..., bool]:
    """A check that a step's grads (as arguments) are laid out as ``grads``: their type,
    dtype, device, shape and strides. torch.compile's own tensor guard where this torch
    has it (~0.1 us a tensor, in C++); else ``_laid_out_as``."""
    try:
        from torch._C._dynamo.guards import TensorGuards
        return TensorGuards(*grads, dynamic_dims_sizes=[list(g.shape) for g in grads],
                            dynamic_dims_strides=[list(g.stride()) for g in grads]).check
    except (ImportError, TypeError, RuntimeError, SystemError):
        return lambda *now: _laid_out_as(now, cohort.layouts, cohort.strides)


def _laid_out(g: torch.Tensor, stride: tuple | None) -> bool:
    """Whether a grad is laid out as its param: C-contiguous (``stride`` None) or with
    the param's strides (on every dimension longer than 1, as torch's layout contract
    for grads has it)."""
    if stride is None:
        return g.is_contiguous()
    return all(a == b for a, b, n in zip(g.stride(), stride, g.shape) if n != 1)


def _like(state: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A state buffer laid out as its param (torch makes state ``zeros_like(p)``): as it
    is for a C-ordered param (the core's array has the param's shape), the param's
    strides over the memory-order buffer for any other dense one."""
    return state if p.is_contiguous() else state.as_strided(p.shape, p.stride())


def _loaded_like(value: Any, p: torch.Tensor) -> Any:
    """A state tensor for ``p`` laid out as the param, as the core keeps it: C order for a
    C-ordered param, one vector in the param's memory order for any other dense one
    (anything else as given: the core's checks name what is wrong with it)."""
    if not isinstance(value, torch.Tensor) or value.shape != p.shape or not _dense(p):
        return value
    if p.is_contiguous():
        return value.contiguous()
    return _memory_order(torch.empty_like(p, dtype=value.dtype).copy_(value))


def _as_tensor(a: Any) -> torch.Tensor:
    """A tensor sharing the memory of a NumPy or CuPy array."""
    return tensor_of(a) if isinstance(a, np.ndarray) else torch.as_tensor(a, device="cuda")


def _to_numpy(t: Any) -> np.ndarray:
    return numpy_of(t.detach().cpu()) if isinstance(t, torch.Tensor) else np.asarray(t)


def _torch_stream(device: torch.device) -> Any:
    """A context running CuPy's work on torch's current stream of ``device``: the step
    is ordered after the backward pass that made the grads, without a host wait."""
    import cupy

    stack = contextlib.ExitStack()
    stack.enter_context(cupy.cuda.Device(device.index))
    stack.enter_context(cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream))
    return stack


def _addresses(grads: list) -> np.ndarray:
    """The grads' data addresses (0.08 us a grad, where a NumPy view costs 0.7 us)."""
    return np.fromiter(map(torch.Tensor.data_ptr, grads), np.intp, len(grads))


def _view(g: torch.Tensor) -> Any:
    """A NumPy (CPU) or CuPy (CUDA) array over a grad's memory."""
    if g.device.type == "cpu":
        return numpy_of(g)
    import cupy
    return cupy.from_dlpack(g)


def _number(value: Any, what: str = "a hyperparameter") -> Any:
    """A float from a one-element tensor (torch allows a tensor lr); other values as
    given; an error naming ``what`` for a tensor of several elements."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{what} must be a number or a one-element tensor, got a tensor "
                             f"of shape {tuple(value.shape)}")
        return value.item()
    if isinstance(value, tuple):
        return tuple(_number(v, what) for v in value)
    return value


def _subset(sd: dict[str, Any], ks: list[int]) -> dict[str, Any]:
    """The one-group fastopt state_dict of params ``ks`` of ``sd``."""
    out = {k: v for k, v in sd.items() if not k[0].isdigit()}
    out.update({"n_params": len(ks), "groups.0.params": np.arange(len(ks), dtype=np.int64)})
    for new, old in enumerate(ks):
        prefix = f"{old}."
        out.update({f"{new}.{k[len(prefix):]}": v for k, v in sd.items() if k.startswith(prefix)})
    return out


def _torch_signature(rule: Rule) -> inspect.Signature:
    """torch's constructor signature for ``rule`` (fastopt's for Lion), then ``backend``."""
    if rule.torch_class is not None:
        sig = inspect.signature(getattr(torch.optim, rule.torch_class).__init__)
        params = [p for name, p in sig.parameters.items() if name != "self"]
    else:
        params = [p for name, p in inspect.signature(CLASSES[rule.class_name]).parameters
                  .items() if name not in ("backend", "max_grad_norm", *PRECISION)]
    backend = inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default="auto")
    clip = inspect.Parameter("max_grad_norm", inspect.Parameter.KEYWORD_ONLY, default=None)
    precision = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                 for name, default in dataclasses.asdict(Precision()).items()]
    return inspect.Signature(params + [backend, clip] + precision)


def _summed_over_shards(total: float, plans: list) -> float:
    """``total``, the sum of squares of this process's grads, summed over the processes
    that shard the params (FSDP2's DTensors: their mesh's group), else as it is."""
    sharded = [p for cohort, _ in plans if cohort.sharded for p in cohort.params]
    if not sharded:
        return total
    summed = torch.tensor([total], dtype=torch.float64, device=_local(sharded[0]).device)
    torch.distributed.all_reduce(summed, group=sharded[0].device_mesh.get_group())
    return float(summed[0])


def _refuse_torch_options(name: str, options: dict[str, Any]) -> None:
    """torch's own options that change the result and fastopt does not do (yet)."""
    for key, value in options.items():
        if key in PATH_ONLY or not value:
            continue
        raise ValueError(f"{name}: {key}={value!r} is not supported by fastopt.torch")


def torch_class(rule: Rule) -> type[TorchOptimizer]:
    """The ``fastopt.torch`` class of ``rule``."""
    sig = _torch_signature(rule)
    name = rule.torch_class or rule.class_name
    hyper = {h.name for h in rule.hyperparams}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bound_arguments(name, sig, args, kwargs)
        params, backend = values.pop("params"), values.pop("backend")
        max_grad_norm = values.pop("max_grad_norm")
        precision = Precision(**{k: values.pop(k) for k in PRECISION})
        _refuse_torch_options(name, {k: v for k, v in values.items() if k not in hyper})
        TorchOptimizer.__init__(self, params, values, backend, precision, max_grad_norm)

    __init__.__signature__ = sig.replace(parameters=[
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *sig.parameters.values()])
    origin = f"``torch.optim.{name}``'s" if rule.torch_class else "fastopt's"
    doc = (f"{rule.summary}\n\nA torch optimizer with {origin} constructor and semantics, "
           f"running fastopt's fused kernels in ``step()``; after torch's keywords come "
           f"fastopt's (``backend``, ``max_grad_norm`` and the 16-bit options).\n\n"
           f"See Also\n--------\nfastopt.{rule.class_name} : the formula and each keyword.\n")
    methods = switch_methods(name, _switch) if rule.switch_state else {}
    return type(name, (TorchOptimizer,), {"rule": rule, "__init__": __init__, "__doc__": doc,
                                          "__module__": __name__, "__qualname__": name,
                                          "fixed": _torch_fixed(rule, sig), **methods})


def _switch(self: TorchOptimizer, to_eval: bool) -> None:
    """eval()/train() as the ``schedulefree`` package's classes have them: every cohort's
    params moved (every core checked first), their autograd versions bumped (the params
    changed in place), the mode kept in param_groups."""
    cores = [c.core for c in self._cohorts]
    for core in cores:
        core._moving(to_eval)
    for core in cores:
        core._exclusive(core._switch, to_eval, "eval" if to_eval else "train",
                        "switch between steps")
    increment_version([p for c in self._cohorts for p in c.params])
    for group in self.param_groups:
        group["train_mode"] = not to_eval
    self._version += 1


def _torch_fixed(rule: Rule, sig: inspect.Signature) -> dict[str, Any]:
    """The group keys torch's class of ``rule`` sets without a keyword (AdamW's
    ``decoupled_weight_decay=True``): read from one of its instances."""
    if rule.torch_class is None:
        return {}
    probe = getattr(torch.optim, rule.torch_class)([torch.zeros(1, 1, requires_grad=True)])
    return {k: v for k, v in probe.defaults.items() if k not in sig.parameters}


CLASSES_TORCH: dict[str, type[TorchOptimizer]] = {}
for _rule in REGISTRY:
    CLASSES_TORCH[_rule.torch_class or _rule.class_name] = torch_class(_rule)
del _rule
globals().update(CLASSES_TORCH)
__all__ = list(CLASSES_TORCH)


class LBFGS(torch.optim.Optimizer):
    """torch.optim.LBFGS's algorithm on fastopt's solver core: the two-loop recursion as
    fastopt's fused kernel (2m+1 passes over the params, each an axpy fused with the next
    dot product, where torch makes 4m; m = the pairs stored, up to ``history_size``) and
    torch's strong-Wolfe search on host scalars (``fastopt.solvers.linesearch.lswolfe``).
    What users see is torch's: the constructor, ``step(closure)`` (the closure zeroes the
    grads, computes the loss, calls backward and returns the loss), the fixed step or
    ``line_search_fn="strong_wolfe"``, the stopping tests and the state (``old_dirs`` and
    ``old_stps`` are rows of fastopt's ring buffers), so checkpoints cross with
    torch.optim.LBFGS.

    If the closure raises, the params are those of the last iterate taken (a trial point
    of the search is undone) and the state describes them.
    """

    def __init__(self, params: Any, lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None, *, backend: str = "auto") -> None:
        if max_eval is None and isinstance(max_iter, (int, np.integer)):
            max_eval = max_iter * 5 // 4          # torch's default
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        _lbfgs_settings(defaults)
        super().__init__(params, defaults)          # (a second group: add_param_group)
        self._params = self.param_groups[0]["params"]
        self._check_params()
        self._backend_name = backend
        self._running = False
        self._start_rings()

    def _start_rings(self) -> None:
        """Empty ring buffers (rows of _S and _Y hold the pairs, oldest first: _rows),
        grown as pairs arrive, and the kernels for the params."""
        first = self._params[0]
        self._ops = _lbfgs_ops(self._backend_name, self._numel(), first)
        self._S = torch.zeros(0, self._numel(), dtype=first.dtype, device=first.device)
        self._Y = torch.zeros_like(self._S)
        self._rows: list[int] = []
        self._rho = np.zeros(0)

    def _numel(self) -> int:
        return sum(p.numel() for p in self._params)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter "
                             "groups): it optimises one group")
        super().add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_backend_name": self._backend_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A copy or an unpickled optimizer: fresh rings, filled from the state's pairs
        at the next step."""
        super().__setstate__(state)
        self._params = self.param_groups[0]["params"]
        self._running = False
        self._start_rings()

    def _check_params(self) -> None:
        for i, p in enumerate(self._params):
            torch_view(p, f"LBFGS: {_label(0, i)}")       # the dtypes fastopt runs
        if len({(p.dtype, p.device) for p in self._params}) > 1:
            raise ValueError("LBFGS: params must share one dtype and device")

    def _follow_params(self, state: dict) -> None:
        """After ``model.double()`` (or ``.to(device)``): the history and the kernels in
        the params' new dtype and device (torch.optim.LBFGS fails in ``dot``); a change of
        size is an error naming it."""
        first = self._params[0]
        n = self._numel()
        if n != self._S.shape[1]:
            raise ValueError(f"LBFGS: the params now hold {n} elements, {self._S.shape[1]} "
                             "when the history was made; build a new optimizer for them")
        if {(p.dtype, p.device) for p in self._params} == {(self._S.dtype, self._S.device)}:
            return
        self._check_params()
        in_rings = self._in_rings(state)
        self._ops = _lbfgs_ops(self._backend_name, n, first)
        self._S, self._Y = self._S.to(first), self._Y.to(first)
        for key in ("d", "prev_flat_grad", "H_diag", "t"):
            if isinstance(state.get(key), torch.Tensor):
                state[key] = state[key].to(first)
        for key in ("ro", "al", "old_dirs", "old_stps"):
            if key in state:
                state[key] = [v.to(first) if isinstance(v, torch.Tensor) else v
                              for v in state[key]]
        if in_rings:
            state["old_dirs"] = [self._Y[r] for r in self._rows]
            state["old_stps"] = [self._S[r] for r in self._rows]

    # -- the history: torch's lists as rows of fastopt's ring buffers -------------------------
    def _direction(self, flat_grad: torch.Tensor, state: dict) -> torch.Tensor:
        """d = -H g from the stored pairs, by fastopt's two-loop kernel."""
        self._adopt(state)
        d = torch.empty_like(flat_grad)
        arrays = [_view(a) for a in (flat_grad, self._S, self._Y, d)]
        g, S, Y, out = arrays
        with _torch_stream(d.device) if d.is_cuda else contextlib.nullcontext():
            self._ops.two_loop(g, S, Y, self._rho, np.asarray(self._rows, np.int64),
                               float(state["H_diag"]), out)
        return d

    def _in_rings(self, state: dict) -> bool:
        """Whether the state's pairs are the ring buffers' rows (not a loaded state's)."""
        dirs = state.get("old_dirs", [])
        return len(dirs) == len(self._rows) and all(
            a.data_ptr() == self._Y[r].data_ptr() for a, r in zip(dirs, self._rows))

    def _adopt(self, state: dict) -> None:
        """Make the ring buffers hold the state's pairs: after load_state_dict or a copy
        the lists hold tensors of their own (and perhaps another history_size)."""
        if self._in_rings(state):
            return
        dirs, stps = state["old_dirs"], state["old_stps"]
        self._rows = []
        self._grow(len(dirs), state)
        self._rows = list(range(len(dirs)))
        for r, (y, s, ro) in enumerate(zip(dirs, stps, state["ro"])):
            self._Y[r].copy_(y)
            self._S[r].copy_(s)
            self._rho[r] = float(ro)
        state["old_dirs"] = [self._Y[r] for r in self._rows]
        state["old_stps"] = [self._S[r] for r in self._rows]

    def _grow(self, pairs: int, state: dict) -> None:
        """Room for ``pairs`` pairs, keeping the stored ones in their rows: the buffers
        double as the history fills (up to history_size rows), so memory follows the pairs
        stored, as torch's does."""
        have = self._S.shape[0]
        if have >= pairs:
            return
        m = min(max(pairs, 2 * have), max(self.param_groups[0]["history_size"], pairs))
        # rows are written before they are read (the kernel reads the stored rows only)
        S, Y = self._S.new_empty((m, self._numel())), self._Y.new_empty((m, self._numel()))
        S[:self._S.shape[0]], Y[:self._Y.shape[0]] = self._S, self._Y
        self._S, self._Y = S, Y
        self._rho = np.concatenate([self._rho, np.zeros(m - len(self._rho))])
        state["old_dirs"] = [self._Y[r] for r in self._rows]
        state["old_stps"] = [self._S[r] for r in self._rows]

    def _remember(self, y: torch.Tensor, s: torch.Tensor, state: dict) -> None:
        """Store the pair if y.s > 1e-10 (torch's memory update, into a free row of the
        ring; the oldest pair goes once history_size are stored)."""
        ys = y.dot(s)
        if not ys > 1e-10:
            return
        self._adopt(state)
        while len(self._rows) >= self.param_groups[0]["history_size"]:
            self._rows.pop(0)
            for key in ("old_dirs", "old_stps", "ro"):
                state[key].pop(0)
        self._grow(len(self._rows) + 1, state)
        row = min(set(range(self._S.shape[0])) - set(self._rows))
        self._Y[row].copy_(y)
        self._S[row].copy_(s)
        self._rho[row] = float(1.0 / ys)
        self._rows.append(row)
        state["old_dirs"].append(self._Y[row])
        state["old_stps"].append(self._S[row])
        state["ro"].append(1.0 / ys)
        state["H_diag"] = ys / y.dot(y)

    # -- the params as one flat vector ----------------------------------------------------------
    def _flat_grad(self) -> torch.Tensor:
        """The params' grads as one vector (zeros for a param without one), each checked
        against its param: the kernels read every address they are given."""
        parts = []
        for i, p in enumerate(self._params):
            g = p.grad
            if g is None:
                parts.append(p.new_zeros(p.numel()))
                continue
            if g.is_sparse:
                g = g.to_dense()
            if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
                raise ValueError(f"LBFGS: {_label(0, i)} has a grad of shape "
                                 f"{tuple(g.shape)}, dtype {g.dtype} on {g.device}, its param "
                                 f"{tuple(p.shape)}, {p.dtype} on {p.device} (was "
                                 "p.grad.data replaced?)")
            parts.append(g.reshape(-1))
        return torch.cat(parts)

    def _move(self, t: float, d: torch.Tensor) -> None:
        """params += t d."""
        offset = 0
        for p in self._params:
            p.add_(d[offset:offset + p.numel()].view_as(p), alpha=t)
            offset += p.numel()

    def _evaluate(self, closure: Callable[[], Any]) -> tuple[Any, float, torch.Tensor]:
        """The closure's loss (as returned and as a float) and the flat gradient."""
        loss = closure()
        return loss, checked_loss("LBFGS", "the closure's loss", loss), self._flat_grad()

    def _search(self, closure: Callable[[], Any], t: float, d: torch.Tensor, loss: float,
                g: torch.Tensor, gtd: float, max_evals: int, real: Callable[[Any], Any]
                ) -> tuple[float, torch.Tensor, float, int]:
        """torch's strong-Wolfe search from the params along d; the params end at the step
        it takes. Returns (loss, flat gradient, t, evaluations)."""
        x = [p.clone(memory_format=torch.contiguous_format) for p in self._params]

        def phi(step: float) -> tuple[float, float, torch.Tensor]:
            self._move(step, d)
            try:
                _, f, g_new = self._evaluate(closure)
            finally:
                for p, v in zip(self._params, x):
                    p.copy_(v)
            return f, real(g_new.dot(d)), g_new
        t, loss, g, evals = lswolfe(phi, loss, gtd, g, t, real(d.abs().max()),
                                    max_evals=max_evals)
        self._move(t, d)
        return loss, g, t, evals

    # -- the step ---------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` L-BFGS iterations (torch's); returns the closure's first
        loss, as the closure returned it."""
        if not callable(closure):
            raise TypeError("LBFGS.step: closure must be a function that zeroes the grads, "
                            f"computes the loss, calls backward and returns the loss; got "
                            f"{type(closure).__name__}")
        if self._running:
            raise RuntimeError("LBFGS.step was called from inside its own step (by the "
                               "closure?); a step cannot nest")
        self._running = True
        try:
            return self._step(torch.enable_grad()(closure))
        finally:
            self._running = False

    def _step(self, closure: Callable[[], Any]) -> Any:
        group = self.param_groups[0]
        o = _lbfgs_settings(group)
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        self._follow_params(state)
        real = _real(self._params[0])      # torch's 0-d tensors, as host scalars
        first_loss, loss, g = self._evaluate(closure)
        evals = 1
        state["func_evals"] += 1
        if real(g.abs().max()) <= o["tolerance_grad"]:
            return first_loss
        d, t = state.get("d"), _number(state.get("t"))
        g_prev, loss_prev = state.get("prev_flat_grad"), state.get("prev_loss")
        for n_iter in range(1, o["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = g.neg()
                state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
                self._rows = []
            else:
                self._remember(g.sub(g_prev), d.mul(t), state)
                state.setdefault("al", [None] * o["history_size"])   # torch's scratch
                d = self._direction(g, state)
            g_prev = g.clone() if g_prev is None else g_prev.copy_(g)
            loss_prev = loss
            t = min(1.0, 1.0 / real(g.abs().sum())) * o["lr"] if state["n_iter"] == 1 \
                else o["lr"]
            gtd = real(g.dot(d))
            if gtd > -o["tolerance_change"]:
                break
            try:
                if o["line_search_fn"] is not None:
                    loss, g, t, used = self._search(closure, t, d, loss, g, gtd,
                                                    o["max_eval"] - evals, real)
                else:                    # the fixed step, evaluated unless it is the last
                    self._move(t, d)
                    used = 0
                    if n_iter != o["max_iter"]:
                        _, loss, g = self._evaluate(closure)
                        used = 1
            except BaseException:        # the params are at x + t d, or at x after a search
                taken = float(t) if o["line_search_fn"] is None else 0.0
                state.update(d=d, t=taken, prev_flat_grad=g_prev, prev_loss=loss_prev)
                raise
            evals += used
            state["func_evals"] += used
            if n_iter == o["max_iter"] or evals >= o["max_eval"] or \
                    real(g.abs().max()) <= o["tolerance_grad"]:
                break
            if abs(t) * real(d.abs().max()) <= o["tolerance_change"] or \
                    abs(loss - loss_prev) < o["tolerance_change"]:
                break
        state.update(d=d, t=float(t), prev_flat_grad=g_prev, prev_loss=loss_prev)
        return first_loss


def _real(p: torch.Tensor) -> Callable[[Any], Any]:
    """A 0-d tensor's value as a host scalar of the params' precision: torch computes
    LBFGS's tests and its search in the params' dtype (a Python float meeting a float32
    tensor is computed in float32), and NumPy's float32 scalars promote the same way."""
    kind = np.float32 if p.dtype == torch.float32 else np.float64
    return lambda t: kind(t.item())


def _lbfgs_settings(group: dict[str, Any]) -> dict[str, Any]:
    """LBFGS's options from its group, checked (torch checks lr alone, and a wrong
    ``line_search_fn`` only when a step runs)."""
    o = {"lr": _number(group["lr"], "LBFGS: lr")}
    _checks.nonnegative("LBFGS", "lr", o["lr"])
    for key in ("max_iter", "max_eval", "history_size"):
        o[key] = _checks.count("LBFGS", key, group[key])
    for key in ("tolerance_grad", "tolerance_change"):
        o[key] = _checks.nonnegative("LBFGS", key, group[key])
    o["line_search_fn"] = group["line_search_fn"]
    if o["line_search_fn"] not in (None, "strong_wolfe"):
        raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                         f"{o['line_search_fn']!r}")
    return o


def _lbfgs_ops(backend: str, n: int, like: torch.Tensor) -> Any:
    """fastopt's L-BFGS kernels for n elements like ``like`` (numba or numpy on the CPU,
    cupy for CUDA tensors)."""
    from .backends import resolve_backend
    from .solvers.lbfgs import ops_for

    resolved = resolve_backend(backend, [like])
    return ops_for(resolved.name, n, np.dtype(str(like.dtype).removeprefix("torch.")),
                   lasting=True)


CLASSES_TORCH["LBFGS"] = LBFGS
__all__.append("LBFGS")
