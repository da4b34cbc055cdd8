"""Learning-rate schedules: small immutable objects ``t -> lr`` of the step number t = 1, 2, ...

Pass one as ``lr`` to any optimizer; it is evaluated once per step, on the host. A
schedule is data: ``state_dict()`` stores its kind and its numbers (no pickle), and
``load_state_dict`` rebuilds it.

==================  ==============================================================
``step_decay``      lr0 * drop ** floor(t / every)
``exponential``     lr0 * exp(-k * t)
``inverse_time``    lr0 / (1 + k * t)
``power``           lr0 / t ** d
``linear``          (1 - t/tau) * lr0 + (t/tau) * floor for t <= tau, floor after
``cosine``          floor + (lr0 - floor) * (1 + cos(pi * (t-1) / t_max)) / 2
``linear_warmup``   lr0 * (start + (end - start) * min(t-1, steps) / steps)
``warmup``          linear from start_factor * then(1) to then(1) over ``steps``, then
                    ``then`` from its first step
``one_cycle``       up from max_lr / div_factor to max_lr, then down to max_lr /
                    (div_factor * final_div_factor), by cosine or linearly
``sequence``        ``schedules[i]`` from step milestones[i-1] + 1, counted afresh
==================  ==============================================================

The last five are torch's ``CosineAnnealingLR`` (its closed form), ``LinearLR``,
``SequentialLR`` of a ``LinearLR`` and another scheduler, ``OneCycleLR`` (the lr only)
and ``SequentialLR``: step t of fastopt's takes the lr torch's scheduler gives after t - 1
calls of ``scheduler.step()``.
"""
from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from . import _checks as check

__all__ = ["step_decay", "exponential", "inverse_time", "power", "linear", "cosine",
           "linear_warmup", "warmup", "one_cycle", "sequence", "Schedule", "to_state",
           "from_state"]


@dataclass(frozen=True)
class Schedule:
    """Base class: a named, printable, immutable schedule. Subclasses are dataclasses of
    numbers, strings and other schedules, and implement ``__call__(t)`` and ``_checked``
    (their fields validated, returning the values to keep)."""

    kinds: ClassVar[dict[str, type[Schedule]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Schedule.kinds[cls.__name__] = cls

    def __post_init__(self) -> None:
        for name, value in self._checked().items():
            object.__setattr__(self, name, value)

    def _checked(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def _start(name: str, lr0: Any) -> float:
    return check.learning_rate(name, lr0)


@dataclass(frozen=True)
class step_decay(Schedule):
    """lr0 * drop ** floor(t / every): multiply by ``drop`` every ``every`` steps."""

    lr0: float
    drop: float = 0.5
    every: int = 1000

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("step_decay", self.lr0),
                    drop=check.in_unit_interval("step_decay", "drop", self.drop,
                                                include_one=True),
                    every=check.count("step_decay", "every", self.every))

    def __call__(self, t: int) -> float:
        return self.lr0 * self.drop ** (t // self.every)


@dataclass(frozen=True)
class exponential(Schedule):
    """lr0 * exp(-k t)."""

    lr0: float
    k: float = 1e-3

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("exponential", self.lr0),
                    k=check.nonnegative("exponential", "k", self.k))

    def __call__(self, t: int) -> float:
        return self.lr0 * math.exp(-self.k * t)


@dataclass(frozen=True)
class inverse_time(Schedule):
    """lr0 / (1 + k t)."""

    lr0: float
    k: float = 1e-3

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("inverse_time", self.lr0),
                    k=check.nonnegative("inverse_time", "k", self.k))

    def __call__(self, t: int) -> float:
        return self.lr0 / (1.0 + self.k * t)


@dataclass(frozen=True)
class power(Schedule):
    """lr0 / t^d (t >= 1; d = 0.5 is the classic 1/sqrt(t))."""

    lr0: float
    d: float = 0.5

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("power", self.lr0), d=check.nonnegative("power", "d", self.d))

    def __call__(self, t: int) -> float:
        return self.lr0 / max(t, 1) ** self.d


@dataclass(frozen=True)
class linear(Schedule):
    """Linear decay from lr0 to ``floor`` reached at step ``tau``, constant afterwards:
    lr = (1 - a) lr0 + a floor with a = min(t/tau, 1)."""

    lr0: float
    floor: float = 0.0
    tau: int = 1000

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("linear", self.lr0),
                    floor=check.nonnegative("linear", "floor", self.floor),
                    tau=check.count("linear", "tau", self.tau))

    def __call__(self, t: int) -> float:
        a = min(t / self.tau, 1.0)
        return (1.0 - a) * self.lr0 + a * self.floor


@dataclass(frozen=True)
class cosine(Schedule):
    """Cosine annealing from lr0 to ``floor`` over ``t_max`` steps (torch's
    CosineAnnealingLR, eta_min = floor): floor + (lr0 - floor) (1 + cos(pi (t-1)/t_max))/2;
    past t_max it rises again, as torch's does (set t_max to the run's length)."""

    lr0: float
    t_max: int
    floor: float = 0.0

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("cosine", self.lr0),
                    t_max=check.count("cosine", "t_max", self.t_max),
                    floor=check.nonnegative("cosine", "floor", self.floor))

    def __call__(self, t: int) -> float:
        return self.floor + (self.lr0 - self.floor) * (
            1 + math.cos(math.pi * (t - 1) / self.t_max)) / 2


@dataclass(frozen=True)
class linear_warmup(Schedule):
    """lr0 times a factor going linearly from ``start_factor`` at step 1 to
    ``end_factor`` at step steps + 1, constant after (torch's LinearLR, total_iters =
    steps): lr0 (start + (end - start) min(t-1, steps) / steps)."""

    lr0: float
    steps: int = 5
    start_factor: float = 1 / 3
    end_factor: float = 1.0

    def _checked(self) -> dict[str, Any]:
        return dict(lr0=_start("linear_warmup", self.lr0),
                    steps=check.count("linear_warmup", "steps", self.steps),
                    start_factor=check.unit_interval_closed("linear_warmup", "start_factor",
                                                            self.start_factor),
                    end_factor=check.unit_interval_closed("linear_warmup", "end_factor",
                                                          self.end_factor))

    def __call__(self, t: int) -> float:
        done = min(t - 1, self.steps) / self.steps
        return self.lr0 * (self.start_factor + (self.end_factor - self.start_factor) * done)


@dataclass(frozen=True)
class sequence(Schedule):
    """``schedules[0]`` until step milestones[0], then ``schedules[1]`` counted from its
    own step 1, and so on (torch's SequentialLR): at step t, schedule i = the number of
    milestones < t runs at step t - milestones[i-1]."""

    schedules: tuple[Schedule, ...]
    milestones: tuple[int, ...]

    def _checked(self) -> dict[str, Any]:
        schedules = _schedules("sequence", "schedules", _items("sequence", "schedules",
                                                               self.schedules))
        milestones = tuple(check.count("sequence", "milestones", m)
                           for m in _items("sequence", "milestones", self.milestones))
        if len(milestones) != len(schedules) - 1 or list(milestones) != sorted(set(milestones)):
            raise ValueError(f"sequence: milestones must be {len(schedules) - 1} increasing "
                             f"steps, one between each two schedules, got {self.milestones!r}")
        return dict(schedules=schedules, milestones=milestones)

    def __call__(self, t: int) -> float:
        i = bisect.bisect_left(self.milestones, t)     # milestones before t
        return self.schedules[i](t - (self.milestones[i - 1] if i else 0))


@dataclass(frozen=True)
class warmup(Schedule):
    """A linear warmup of ``steps`` steps into ``then``: from start_factor * then(1) at
    step 1 towards then(1), then ``then`` from its own step 1 (torch's SequentialLR of
    LinearLR(start_factor, total_iters=steps) and ``then``, milestones [steps])."""

    then: Schedule
    steps: int
    start_factor: float = 0.0

    def _checked(self) -> dict[str, Any]:
        _schedules("warmup", "then", [self.then])
        return dict(steps=check.count("warmup", "steps", self.steps),
                    start_factor=check.unit_interval_closed("warmup", "start_factor",
                                                            self.start_factor))

    def __call__(self, t: int) -> float:
        if t > self.steps:
            return self.then(t - self.steps)
        return self.then(1) * (self.start_factor + (1 - self.start_factor) * (t - 1) / self.steps)


@dataclass(frozen=True)
class one_cycle(Schedule):
    """torch's OneCycleLR for the lr (momentum is not cycled): from max_lr / div_factor
    up to ``max_lr`` over the first pct_start of ``total_steps``, then down to
    max_lr / (div_factor * final_div_factor) at the last step (``three_phase``: back to
    the start first, as torch's), by cosine or linearly (``anneal``); held there after
    total_steps (torch raises)."""

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    anneal: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False

    def _checked(self) -> dict[str, Any]:
        if self.anneal not in ("cos", "linear"):
            raise ValueError(f"one_cycle: anneal must be 'cos' or 'linear', got "
                             f"{self.anneal!r}")
        return dict(max_lr=_start("one_cycle", self.max_lr),
                    total_steps=check.count("one_cycle", "total_steps", self.total_steps),
                    pct_start=check.unit_interval_closed("one_cycle", "pct_start",
                                                         self.pct_start),
                    div_factor=check.positive("one_cycle", "div_factor", self.div_factor),
                    final_div_factor=check.positive("one_cycle", "final_div_factor",
                                                    self.final_div_factor),
                    three_phase=check.boolean("one_cycle", "three_phase", self.three_phase))

    def _phases(self) -> list[tuple[float, float, float]]:
        """(last step of the phase, counted from 0; lr at its start; lr at its end)."""
        start = self.max_lr / self.div_factor
        low = start / self.final_div_factor
        up = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return [(up, start, self.max_lr),
                    (float(2 * self.pct_start * self.total_steps) - 2, self.max_lr, start),
                    (self.total_steps - 1, start, low)]
        return [(up, start, self.max_lr), (self.total_steps - 1, self.max_lr, low)]

    def __call__(self, t: int) -> float:
        step = min(t, self.total_steps) - 1
        begin = 0.0
        phases = self._phases()
        for k, (end, high, low) in enumerate(phases):
            if step <= end or k == len(phases) - 1:
                pct = (step - begin) / (end - begin) if end != begin else 1.0
                if self.anneal == "linear":
                    return (low - high) * pct + high
                return low + (high - low) / 2.0 * (math.cos(math.pi * pct) + 1)
            begin = end
        raise AssertionError("unreachable")  # pragma: no cover


def _schedules(owner: str, name: str, given: Any) -> tuple[Schedule, ...]:
    """Built-in schedules, at least one: what a state_dict can store (a function of the
    user's is taken as the whole lr, not inside one)."""
    given = tuple(given)
    if not given or not all(isinstance(s, Schedule) for s in given):
        raise ValueError(f"{owner}: {name} must be fastopt.schedules schedules (a state_dict "
                         f"stores them), got {given!r}; pass a function of your own as the "
                         "whole lr instead")
    return given


def _items(owner: str, name: str, value: Any) -> tuple:
    try:
        return tuple(value)
    except TypeError:
        raise ValueError(f"{owner}: {name} must be a sequence, got {value!r}") from None


# -- schedules as data ----------------------------------------------------------------------
def to_state(schedule: Schedule) -> dict[str, Any]:
    """A built-in schedule as flat entries of numbers and strings (what ``np.savez``
    stores without pickling): "" its kind, each field by name, a nested schedule's entries
    under "name." (a tuple of them under "name.0.", ... with "name" their count).

        >>> to_state(warmup(cosine(0.1, 100), steps=10))["then.t_max"]
        100
    """
    out: dict[str, Any] = {"": type(schedule).__name__}
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name)
        if isinstance(value, Schedule):
            out.update(_nested(f.name, value))
        elif isinstance(value, tuple) and value and all(isinstance(v, Schedule) for v in value):
            out[f.name] = len(value)
            for i, v in enumerate(value):
                out.update(_nested(f"{f.name}.{i}", v))
        else:
            out[f.name] = value
    return out


def _nested(prefix: str, schedule: Schedule) -> dict[str, Any]:
    return {f"{prefix}.{k}" if k else prefix: v for k, v in to_state(schedule).items()}


def from_state(entries: Mapping[str, Any]) -> Schedule:
    """The schedule ``to_state`` described (values may be 0-d or 1-d NumPy arrays, as
    ``np.load`` gives them); an unknown kind or a bad number raises ValueError naming it."""
    kind = _plain(entries.get(""))
    cls = Schedule.kinds.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown schedule kind {kind!r}; the built-in ones are "
                         f"{sorted(Schedule.kinds)}")
    given = {}
    for f in dataclasses.fields(cls):
        if f.name not in entries:
            continue                                    # its default
        value = _plain(entries[f.name])
        if str(f.type).startswith("tuple[Schedule"):
            value = tuple(from_state(_under(entries, f"{f.name}.{i}"))
                          for i in range(check.count(kind, f.name, value)))
        elif str(f.type) == "Schedule":
            value = from_state(_under(entries, f.name))
        given[f.name] = value
    try:
        return cls(**given)
    except TypeError as exc:
        raise ValueError(f"schedule {kind}: {exc}") from None


def _under(entries: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of the schedule stored under ``prefix`` (its kind under "")."""
    return {k[len(prefix) + 1:] if k != prefix else "": v for k, v in entries.items()
            if k == prefix or k.startswith(prefix + ".")}


def _plain(value: Any) -> Any:
    """A Python value from a 0-d or 1-d NumPy array or scalar (as ``np.load`` gives them)."""
    if hasattr(value, "ndim") and hasattr(value, "tolist"):
        value = value.tolist()
        return tuple(value) if isinstance(value, list) else value
    return value
