"""ZeRO stage 1 over MPI: each rank keeps and updates one shard of the optimizer state.

    from mpi4py import MPI
    opt = fastopt.distributed.ShardedOptimizer(fastopt.Adam, params, lr=1e-3)
    opt.step(grads)          # every rank: its own grads; params end equal on every rank

Per (param group, dtype) the params are laid end to end, padded to a multiple of the
world size; rank r owns the r-th of ``world`` equal slices, and a plain fastopt optimizer
of the same rule (the fused kernels, param groups, live hyperparameters, schedules) steps
that slice: state memory per rank is 1/world of one process's, plus one host buffer the
size of the params for the exchanges. Every rank starts from rank 0's params (broadcast),
and a step takes the params as they are (the user may have changed them). A step:

    1. exchanges the grads' slices (``Alltoall`` in place: each rank sends every other
       rank that rank's slice, (world-1)/world of the buffer, what a reduce-scatter moves)
       and sums them in rank order, then divides by world: the average, in a fixed order;
    2. steps the rank's slice of params and state with the rule's kernel;
    3. ``Allgather``s the updated slices and copies them into the params, in place.

MPI fixes no order for the sums of its reductions, so a reduce-scatter's result could
differ in the last bit from any single-process reference; summing received slices in rank
order makes every run equal, bit for bit, to one optimizer stepped with
``(g_0 + g_1 + ... + g_{world-1}) / world`` summed in that order.

Errors: ranks that pass params of other shapes or dtypes, grads that do not fit, or a
step that raises on any rank (a live change or a schedule gone wrong on one rank) raise on
every rank, with every rank's params and state unchanged: each rank learns the others'
outcome before anything is modified, and none waits forever in a collective. An
exception in the user's own code on one rank, outside the optimizer, leaves the others
waiting in their next collective, as in any MPI program (catch it and ``comm.Abort()``).
A rank that dies (killed, out of memory) is MPI's business: MPICH and Open MPI end the
whole job.
"""
from __future__ import annotations

import math
import pickle
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._atomic import hold_signals, release_signals
from ._numdiff import namespace
from ._state_dict import STATE_KEY, decode, load, lr_entries
from ._result import host_array as host
from .backends import check_unchanged, resolve_backend
from .groups import group_specs
from .optimizer import Optimizer, checked_arrays


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("fastopt.distributed needs mpi4py and an MPI library: "
                          "pip install 'fastopt[mpi]' (mpi4py with MPICH)") from exc
    return MPI


def _portable(state_dict: Any) -> bytes:
    """Rank 0's dict pickled, with a function given as a group's lr (in a dict made by hand
    or by an older release) stored as ``state_dict()`` stores one: a "callable" entry,
    for which each rank keeps its own group's lr."""
    if isinstance(state_dict, dict):
        state_dict = dict(state_dict)
        for key, value in list(state_dict.items()):
            if callable(value) and re.fullmatch(r"groups\.\d+\.lr", str(key)):
                state_dict.update(lr_entries(key, value))
    return pickle.dumps(state_dict)


class Segment:
    """The params of one group and dtype laid end to end and padded to ``padded`` =
    world x ``shard`` elements: this rank's slice of them (``mine``, on the params' device,
    NumPy or CuPy: the inner optimizer's param), and one host buffer of ``padded``
    elements for the exchanges. For CuPy params the grads and the slice are staged
    through host memory (CUDA-aware MPI and NCCL are not used)."""

    def __init__(self, arrays: list, positions: list[int], world: int, rank: int) -> None:
        self.arrays, self.positions, self.world, self.rank = arrays, positions, world, rank
        self.dtype = np.dtype(arrays[0].dtype)
        self.xp = namespace(arrays[0])
        self.ends = np.cumsum([a.size for a in arrays]).tolist()
        self.size = self.ends[-1]
        self.shard = max(1, math.ceil(self.size / world))
        self.padded = self.shard * world
        self.buffer = np.zeros(self.padded, self.dtype)     # host: grads out, params in
        self.mine = self.xp.zeros(self.shard, self.dtype)   # this rank's slice of params
        self.average = np.zeros(self.shard, self.dtype)     # host: the average of its grads
        self.grad = self.average if self.xp is np else self.xp.zeros(self.shard, self.dtype)
        self.take_params()

    def take_params(self) -> None:
        """This rank's slice from the params as they are now (the user may have changed
        them since the last step: loaded weights, a clamp)."""
        lo, hi = self.rank * self.shard, (self.rank + 1) * self.shard
        for a, end in zip(self.arrays, self.ends):
            start, flat = end - a.size, a.reshape(-1)
            first, last = max(start, lo), min(end, hi)
            if first < last:
                self.mine[first - lo:last - lo] = flat[first - start:last - start]

    def exchange_grads(self, comm: Any, grads: list) -> None:
        """Each rank's slice of the grads to its owner (Alltoall, in place), summed in rank
        order and divided by the world size, into ``grad``."""
        for g, end in zip(grads, self.ends):
            self.buffer[end - g.size:end] = host(g).reshape(-1)
        self.buffer[self.size:] = 0
        comm.Alltoall(_mpi().IN_PLACE, self.buffer)
        parts = self.buffer.reshape(self.world, self.shard)
        np.copyto(self.average, parts[0])
        for k in range(1, self.world):
            self.average += parts[k]
        self.average /= self.dtype.type(self.world)
        if self.grad is not self.average:
            self.grad.set(self.average)

    def gather_params(self, comm: Any) -> None:
        """Every rank's updated slice into every rank's params (Allgather)."""
        comm.Allgather(host(self.mine), self.buffer)
        for a, end in zip(self.arrays, self.ends):
            part = self.buffer[end - a.size:end].reshape(a.shape)
            a[...] = part if self.xp is np else self.xp.asarray(part)

    def broadcast_params(self, comm: Any) -> None:
        """Rank 0's params on every rank (as DistributedDataParallel starts)."""
        for a, end in zip(self.arrays, self.ends):
            self.buffer[end - a.size:end] = host(a).reshape(-1)
        comm.Bcast(self.buffer, root=0)
        for a, end in zip(self.arrays, self.ends):
            part = self.buffer[end - a.size:end].reshape(a.shape)
            a[...] = part if self.xp is np else self.xp.asarray(part)
        self.take_params()


def _state_names(sd: dict, i: int) -> list[str]:
    """The state arrays of param i in a state_dict ("i.exp_avg", ...)."""
    return [key.split(".", 1)[1] for key in sd if key.startswith(f"{i}.")]


def _comparable(value: Any) -> Any:
    """A value as ranks compare it: a callable (a schedule) by its type, an array as a
    list, a NumPy scalar as a Python number (np.float64(0.1) and 0.1, 1 and 1.0 agree)."""
    if callable(value):
        return f"a {type(value).__name__} schedule"
    if isinstance(value, (tuple, list)):
        return tuple(_comparable(v) for v in value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _settings(sd: dict) -> dict:
    """A state_dict's step counts and group values as ranks compare them (not arrays)."""
    return {k: _comparable(v) for k, v in sd.items()
            if not STATE_KEY.match(str(k)) and not k.endswith(".params")}


def _first_difference(everyone: list) -> tuple[int, str, Any, Any] | None:
    """(rank, key, its value, rank 0's) of the first value a rank holds otherwise than
    rank 0, in dicts of named values; None where all agree."""
    for r, theirs in enumerate(everyone):
        for key in dict.fromkeys([*everyone[0], *theirs]):
            if theirs.get(key) != everyone[0].get(key):
                return r, key, theirs.get(key), everyone[0].get(key)
    return None


class ShardedOptimizer:
    """A fastopt optimizer (``rule``: fastopt.Adam, fastopt.SGD, ...) whose state is
    sharded across the ranks of ``comm`` (default MPI.COMM_WORLD): ZeRO stage 1.

    ``params`` as the rule takes them (an array, a list, or param group dicts), the same
    shapes and dtypes on every rank; ``hyperparams`` as the rule's keywords. ``step(grads)``
    averages the ranks' grads, steps this rank's slice, and all-gathers the params."""

    def __init__(self, rule: type, params: Any, comm: Any = None, **hyperparams: Any) -> None:
        if not (isinstance(rule, type) and issubclass(rule, Optimizer)):
            raise TypeError(f"ShardedOptimizer: rule must be a fastopt optimizer class "
                            f"(fastopt.Adam, fastopt.SGD, ...), got {rule!r:.60}")
        if rule.rule.passes:
            raise NotImplementedError(f"ShardedOptimizer: {rule.__name__} reads whole params "
                                      "(their norms, rows or columns), which one rank's "
                                      "slices do not hold (for now)")
        self.comm = comm if comm is not None else _mpi().COMM_WORLD
        if not all(hasattr(self.comm, m) for m in ("Get_size", "Get_rank", "allgather")):
            raise TypeError(f"ShardedOptimizer: comm must be an mpi4py communicator (e.g. "
                            f"MPI.COMM_WORLD), got {type(comm).__name__}")
        self.world, self.rank = self.comm.Get_size(), self.comm.Get_rank()
        self.rule = rule
        owner = f"ShardedOptimizer({rule.__name__})"
        keys = tuple(h.name for h in rule.rule.hyperparams)
        form, specs, layout = self._agreed(lambda: self._parse(owner, params, keys))
        self._agree(owner, "params of shapes and dtypes", layout)
        self._single = form == "array"
        arrays = [a for spec_arrays, _ in specs for a in spec_arrays]
        self._arrays = arrays
        self.segments: list[Segment] = []
        self._group_positions: list[list[int]] = []      # each group's params, and
        self._group_segments: list[list[int]] = []       # its segments (inner params)
        inner_groups, start = [], 0
        for spec_arrays, overrides in specs:
            positions = list(range(start, start + len(spec_arrays)))
            start += len(spec_arrays)
            self._group_positions.append(positions)
            self._group_segments.append([])
            for dtype in dict.fromkeys(a.dtype for a in spec_arrays):
                chosen = [i for i in positions if arrays[i].dtype == dtype]
                self._group_segments[-1].append(len(self.segments))
                self.segments.append(Segment([arrays[i] for i in chosen], chosen, self.world,
                                             self.rank))
            inner_groups.append({"params": [self.segments[k].mine
                                            for k in self._group_segments[-1]], **overrides})
        self.inner = self._agreed(lambda: rule(inner_groups, **hyperparams),
                                  same=lambda inner: self._groups_named(inner), what=owner)
        self._layouts = [(a.shape, a.dtype) for a in arrays]
        self._labels = ["ShardedOptimizer.step: params"] if self._single else [
            f"ShardedOptimizer.step: params[{i}]" for i in range(len(arrays))]
        for segment in self.segments:           # rank 0's params, once nothing can fail
            segment.broadcast_params(self.comm)
        self._built = True

    def __setattr__(self, name: str, value: Any) -> None:
        """After construction, a public attribute set is an error (``opt.lr = 0.5`` did
        nothing): hyperparameters live in ``param_groups``."""
        if self.__dict__.get("_built") and not name.startswith("_"):
            raise AttributeError(f"ShardedOptimizer has no settable attribute {name!r}: "
                                 f"hyperparameters live in param_groups (e.g. "
                                 f"opt.param_groups[0][{name!r}] = {value!r}, on every rank, "
                                 "used from the next step)")
        object.__setattr__(self, name, value)

    @classmethod
    def _parse(cls, owner: str, params: Any, keys: tuple) -> tuple[str, list, list]:
        """(form, group specs, layout) of params, or the error saying what is wrong."""
        form, specs = group_specs(owner, params, keys)
        for j, (spec_arrays, _) in enumerate(specs):
            if not spec_arrays:
                raise ValueError(f"{owner}: param_groups[{j}] has no params")
        arrays = [a for spec_arrays, _ in specs for a in spec_arrays]
        layout = cls._layout(owner, arrays, specs)
        checked_arrays(owner, arrays, Optimizer._labels(form, [len(a) for a, _ in specs]),
                       resolve_backend("auto", arrays))    # dtypes, no shared memory
        return form, specs, layout

    # -- agreement between ranks -------------------------------------------------------------
    @staticmethod
    def _layout(owner: str, arrays: list, specs: list) -> list:
        """What must be equal on every rank: each param's shape and dtype, and the groups."""
        for i, a in enumerate(arrays):
            device = hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray)
            flags = getattr(a, "flags", None)
            why = ("a NumPy or CuPy array" if flags is None or not (
                isinstance(a, np.ndarray) or device) else
                "writeable" if not (device or flags.writeable) else
                f"C-contiguous (its strides are {a.strides})" if not flags.c_contiguous
                else None)
            if why is not None:
                raise TypeError(f"{owner}: params[{i}] must be a writeable C-contiguous NumPy "
                                f"or CuPy array; this {type(a).__name__} is not {why}")
        return [[(tuple(a.shape), str(a.dtype)) for a in spec_arrays]
                for spec_arrays, _ in specs]

    def _agree(self, owner: str, what: str, mine: Any) -> None:
        """Raise on every rank unless every rank has the same ``mine``."""
        everyone = self.comm.allgather(mine)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                raise ValueError(f"{owner}: rank {r} passed {what} {theirs!r:.200}, rank 0 "
                                 f"{everyone[0]!r:.200}; every rank must pass the same "
                                 f"shapes, dtypes and hyperparameters")

    def _agreed(self, run: Any, same: Any = None, what: str = "ShardedOptimizer") -> Any:
        """run() on every rank; if it raised on any rank, raise on every rank (the first
        failing rank's error, re-raised where it happened). With ``same``, ``same(result)``
        (a dict of named values) must be equal on every rank too (compared in the same
        collective), else an error naming the first value that differs, for ``what``, is
        raised on every rank."""
        try:
            result, error = run(), None
        except BaseException as exc:        # noqa: BLE001 - reported to every rank below
            result, error = None, exc       # (a KeyboardInterrupt too: none may wait alone)
        mine = same(result) if same is not None and error is None else None
        outcomes = self.comm.allgather((None if error is None else
                                        f"{type(error).__name__}: {error}", mine))
        failed = [(r, text) for r, (text, _) in enumerate(outcomes) if text is not None]
        if failed:
            if error is not None:
                raise error
            r, text = failed[0]
            raise RuntimeError(f"ShardedOptimizer: rank {r} failed: {text}")
        difference = _first_difference([theirs or {} for _, theirs in outcomes])
        if difference is not None:
            r, key, theirs, first = difference
            raise ValueError(f"{what}: rank {r} has {key} = {theirs!r}, rank 0 {first!r}: "
                             "set the same values on every rank (a live change or a schedule "
                             "on some ranks only?). Nothing was changed")
        return result

    def _groups_named(self, inner: Optimizer) -> dict[str, Any]:
        """The inner optimizer's group values (validated), named as the user sees them."""
        return {f"param_groups[{j}][{k!r}]": _comparable(v)
                for j, group in enumerate(inner.param_groups)
                for k, v in group.items() if k != "params"}

    def _step_named(self, casts: list) -> dict[str, Any]:
        """What a step is about to use, named: each group's flags and values, and the step
        scalars its lr (a schedule's, at this step) gives."""
        inner, out = self.inner, {}
        buckets = [(j, g) for j, g in enumerate(inner._groups) for _ in g.buckets]
        for j, group in enumerate(inner._groups):
            out.update({f"param_groups[{j}][{k!r}]": _comparable(v)
                        for k, v in group.hp.items()})
            out[f"param_groups[{j}]['lr']"] = _comparable(group.lr)
        for (j, group), c in zip(buckets, casts):
            out[f"the lr of param_groups[{j}] at step {group.t + 1} (its step scalars)"] = \
                c.tolist()
        return out

    # -- the step ---------------------------------------------------------------------------
    def _grads(self, grads: Any) -> list:
        check_unchanged(self._arrays, self._layouts, self._labels,
                        lambda a: getattr(a.flags, "writeable", True))
        if isinstance(grads, (Mapping, str, bytes)):
            raise TypeError(f"ShardedOptimizer.step: grads must be "
                            f"{'an array' if self._single else 'a list of arrays'} like "
                            f"params, got {type(grads).__name__}")
        glist = [grads] if self._single else list(grads)
        if len(glist) != len(self._arrays):
            raise ValueError(f"ShardedOptimizer.step: got {len(glist)} grads for "
                             f"{len(self._arrays)} params")
        for i, (g, a) in enumerate(zip(glist, self._arrays)):
            kind = np.ndarray if isinstance(a, np.ndarray) else type(a)     # memmaps too
            if not isinstance(g, kind) or g.shape != a.shape or g.dtype != a.dtype:
                raise ValueError(f"ShardedOptimizer.step: grads[{i}] must be a "
                                 f"{type(a).__name__} of shape {a.shape} and dtype {a.dtype} "
                                 f"like its param, got "
                                 f"{type(g).__name__} {getattr(g, 'shape', '')} "
                                 f"{getattr(g, 'dtype', '')}")
        return glist

    def step(self, grads: Any) -> None:
        """Average the ranks' grads, step this rank's slice, all-gather the params; all or
        nothing across ranks: the grads' checks and everything the inner step may raise
        on (live changes, schedules, hyperparameter checks) run first on every rank, in one
        agreement, and only when they passed everywhere does anything move."""
        inner = self.inner
        held = hold_signals()       # changes, the slice, the count and the params together
        try:
            with inner._lock:
                before = inner._settings()        # the changes a disagreement takes back
                try:
                    glist, (casts, extras) = self._agreed(
                        lambda: (self._grads(grads), inner._prepare()),
                        same=lambda prepared: self._step_named(prepared[1][0]),
                        what="ShardedOptimizer.step")
                except BaseException:
                    inner._restore_settings(before)
                    raise
                for segment in self.segments:
                    segment.take_params()
                    segment.exchange_grads(self.comm, [glist[i] for i in segment.positions])
                self._run(inner, casts)
                inner._advance(extras)
                for segment in self.segments:
                    segment.gather_params(self.comm)
        finally:
            release_signals(held)

    def _run(self, inner: Optimizer, casts: list) -> None:
        """The inner step on this rank's slices of the averaged grads; with max_grad_norm,
        clipped by the norm of the whole grads: the slices' sums of squares (kernels/
        _reduce.py) summed over the ranks."""
        local = [s.grad for s in self.segments]
        if inner.max_grad_norm is None:
            inner._run(local, casts)
            return
        inner._run_passes(inner._resolver.resolve(local), casts,
                          lambda total: self.comm.allreduce(total, op=_mpi().SUM))

    # -- what the single-process optimizer offers ---------------------------------------------
    @property
    def grad_norm(self) -> float | None:
        """With max_grad_norm: the norm of the last step's averaged grads (all ranks')."""
        return self.inner.grad_norm

    @property
    def param_groups(self) -> Any:
        """The inner optimizer's groups (live: set the same values on every rank)."""
        return self.inner.param_groups

    @property
    def step_count(self) -> int:
        return self.inner.step_count

    @property
    def params(self) -> Any:
        return self._arrays[0] if self._single else list(self._arrays)

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """The state gathered to rank 0 as the single-process optimizer's ``state_dict()``
        (so it resumes on one process, or on any number of ranks); None on the other
        ranks. Collective: every rank calls it."""
        inner = self._agreed(self.inner.state_dict, same=_settings,
                             what="ShardedOptimizer.state_dict")
        names = [_state_names(inner, k) for k in range(len(self.segments))]
        self._agree("ShardedOptimizer.state_dict", "state arrays", names)
        gathered = {}
        for k, segment in enumerate(self.segments):
            for name in names[k]:
                full = np.empty(segment.padded, segment.dtype) if self.rank == 0 else None
                self.comm.Gather(np.ascontiguousarray(inner[f"{k}.{name}"]), full, root=0)
                gathered[k, name] = full
        if self.rank != 0:
            return None
        sd: dict[str, Any] = {"rule": inner["rule"], "step": inner["step"],
                              "n_params": len(self._arrays), "n_groups": inner["n_groups"]}
        for j, positions in enumerate(self._group_positions):
            prefix = f"groups.{j}."
            sd.update({key: value for key, value in inner.items() if key.startswith(prefix)})
            sd[prefix + "params"] = np.array(positions, dtype=np.int64)
        for k, segment in enumerate(self.segments):
            for i, a, end in zip(segment.positions, segment.arrays, segment.ends):
                for name in names[k]:
                    sd[f"{i}.{name}"] = gathered[k, name][end - a.size:end].reshape(a.shape)
        return sd

    def load_state_dict(self, state_dict: Any) -> None:
        """Load a single-process ``state_dict()`` (rank 0's is used; the other ranks may
        pass None): each rank takes its slices. Collective; an invalid dict raises on every
        rank and changes nothing. Rank 0's dict is sent whole to every rank (pickled); for a
        function of the user's as a group's lr (a "callable" entry) each rank keeps its own
        group's, and each step checks that the ranks' values agree."""
        payload = self._agreed(lambda: _portable(state_dict) if self.rank == 0 else None)
        sd = pickle.loads(self.comm.bcast(payload, root=0))
        self._agreed(lambda: self.inner.load_state_dict(self._sliced(sd)))

    def _sliced(self, sd: Any) -> dict[str, Any]:
        """This rank's inner state_dict from a single-process one, or the error saying
        how it does not fit this optimizer."""
        where = "ShardedOptimizer.load_state_dict"
        if not isinstance(sd, dict):
            raise TypeError(f"{where}: rank 0 passed {type(sd).__name__}, not a "
                            f"state_dict() dict")
        if sd.get("rule") != self.inner.rule.class_name:
            raise ValueError(f"{where}: the state_dict is {sd.get('rule')!r}'s, this optimizer "
                             f"{self.inner.rule.class_name!r}'s")
        if sd.get("n_params") != len(self._arrays):
            raise ValueError(f"{where}: the state_dict has {sd.get('n_params')} params, this "
                             f"optimizer {len(self._arrays)}")
        out = {"rule": sd.get("rule"), "step": sd.get("step"), "n_params": len(self.segments),
               "n_groups": sd.get("n_groups")}
        expected: set[str] = set()
        for j, segments in enumerate(self._group_segments):
            prefix = f"groups.{j}."
            given = np.asarray(sd.get(prefix + "params", []), dtype=np.int64).tolist()
            if given != self._group_positions[j]:
                raise ValueError(f"{where}: group {j} of the state_dict holds params {given}, "
                                 f"this optimizer's {self._group_positions[j]}")
            out.update({k: v for k, v in sd.items() if k.startswith(prefix)})
            out[prefix + "params"] = np.array(segments, dtype=np.int64)
        for j, segments in enumerate(self._group_segments):   # every group's params first
            needed = self._state_needed(sd, j)
            for k in segments:
                out.update(self._sliced_state(sd, self.segments[k], k, needed))
            expected.update(f"{i}.{name}" for i in self._group_positions[j] for name in needed)
        unexpected = sorted(k for k in sd if STATE_KEY.match(str(k)) and k not in expected)
        if unexpected:
            raise ValueError(f"{where}: the state_dict has state this optimizer does not keep: "
                             f"{unexpected}")
        return out

    def _state_needed(self, sd: dict[str, Any], j: int) -> tuple[str, ...]:
        """The state arrays group j's params need under the dict's hyperparameters (this
        optimizer's where the dict has none; an invalid one is named by the inner load)."""
        rule, prefix = self.inner.rule, f"groups.{j}."
        hp = {h.name: decode(h.kind, sd[prefix + h.name]) if prefix + h.name in sd
              else self.inner.param_groups[j][h.name] for h in rule.hyperparams}
        try:
            return rule.state_used(rule.checked("ShardedOptimizer.load_state_dict", hp))
        except (TypeError, ValueError):
            return rule.state_used(self.inner._groups[j].hp)

    def _sliced_state(self, sd: dict[str, Any], segment: Any, k: int,
                      names: tuple[str, ...]) -> dict[str, Any]:
        """This rank's slices of segment k's state arrays ``names`` from a single-process
        dict, each param's key checked by the user's index."""
        where = "ShardedOptimizer.load_state_dict"
        out = {}
        for name in names:
            flat = np.zeros(segment.padded, segment.dtype)
            for i, a, end in zip(segment.positions, segment.arrays, segment.ends):
                key = f"{i}.{name}"
                if key not in sd:
                    raise ValueError(f"{where}: the state_dict has no '{key}' (param {i}'s "
                                     f"{name})")
                value = sd[key]
                if not isinstance(value, np.ndarray):
                    raise TypeError(f"{where}: '{key}' must be a numpy.ndarray, got "
                                    f"{type(value).__name__}")
                if value.shape != a.shape or value.dtype != a.dtype:
                    raise ValueError(f"{where}: '{key}' is {value.dtype} of shape "
                                     f"{value.shape}; param {i} is {a.dtype} of shape "
                                     f"{a.shape}")
                flat[end - a.size:end] = value.reshape(-1)
            out[f"{k}.{name}"] = flat[self.rank * segment.shard:
                                      (self.rank + 1) * segment.shard].copy()
        return out

    def shard_state_dict(self) -> dict[str, Any]:
        """This rank's own state (no communication), for states too large to gather:
        the inner optimizer's state_dict with the world size and rank."""
        return {"world": self.world, "rank": self.rank, **self.inner.state_dict()}

    def load_shard_state_dict(self, state_dict: dict[str, Any]) -> None:
        """This rank's ``shard_state_dict()`` back, on the same world size and rank.
        Collective: every rank's shard is checked first, and only when all fit does any
        rank load (one that does not fit raises on every rank)."""
        sd = dict(state_dict)

        def check() -> None:
            where = (sd.pop("world", None), sd.pop("rank", None))
            if None in where:
                raise ValueError("ShardedOptimizer.load_shard_state_dict: the dict has no "
                                 "'world' and 'rank': give what shard_state_dict() returned "
                                 "(state_dict()'s single-process form loads with "
                                 "load_state_dict)")
            if where != (self.world, self.rank):
                raise ValueError(f"ShardedOptimizer.load_shard_state_dict: this shard is "
                                 f"rank {where[1]} of {where[0]}, this optimizer rank "
                                 f"{self.rank} of {self.world}; resume on another world "
                                 "size from state_dict()")
            load(self.inner, sd, apply=False)
            return sd
        self._agreed(check, same=_settings, what="ShardedOptimizer.load_shard_state_dict")
        self.inner.load_state_dict(sd)

    @property
    def state_bytes(self) -> int:
        """This rank's optimizer state, in bytes (without the exchange buffer: the
        params' size, ``sum(s.buffer.nbytes for s in self.segments)``)."""
        return sum(v.nbytes for st in self.inner.state for v in st.values())
