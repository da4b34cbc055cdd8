"""Learning-rate schedules: callables ``t -> lr`` of the step number t = 1, 2, ...

Pass one as ``lr`` to any optimizer; it is evaluated once per step, on the host.

==================  ==========================================================
``step_decay``      lr0 * drop ** floor(t / every)
``exponential``     lr0 * exp(-k * t)
``inverse_time``    lr0 / (1 + k * t)
``power``           lr0 / t ** d
``linear``          (1 - t/tau) * lr0 + (t/tau) * floor for t <= tau, floor after
==================  ==========================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import _checks as check

__all__ = ["step_decay", "exponential", "inverse_time", "power", "linear", "Schedule"]


@dataclass(frozen=True)
class Schedule:
    """Base class: a named, printable schedule. Subclasses implement ``__call__(t)``."""

    lr0: float

    def __post_init__(self) -> None:
        check.learning_rate(type(self).__name__, self.lr0)

    def __call__(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class step_decay(Schedule):
    """lr0 * drop ** floor(t / every): multiply by ``drop`` every ``every`` steps."""

    drop: float = 0.5
    every: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check.in_unit_interval("step_decay", "drop", self.drop, include_one=True)
        check.count("step_decay", "every", self.every)

    def __call__(self, t: int) -> float:
        return self.lr0 * self.drop ** (t // self.every)


@dataclass(frozen=True)
class exponential(Schedule):
    """lr0 * exp(-k t)."""

    k: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check.nonnegative("exponential", "k", self.k)

    def __call__(self, t: int) -> float:
        return self.lr0 * math.exp(-self.k * t)


@dataclass(frozen=True)
class inverse_time(Schedule):
    """lr0 / (1 + k t)."""

    k: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check.nonnegative("inverse_time", "k", self.k)

    def __call__(self, t: int) -> float:
        return self.lr0 / (1.0 + self.k * t)


@dataclass(frozen=True)
class power(Schedule):
    """lr0 / t^d (t >= 1; d = 0.5 is the classic 1/sqrt(t))."""

    d: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check.nonnegative("power", "d", self.d)

    def __call__(self, t: int) -> float:
        return self.lr0 / max(t, 1) ** self.d


@dataclass(frozen=True)
class linear(Schedule):
    """Linear decay from lr0 to ``floor`` reached at step ``tau``, constant afterwards:
    lr = (1 - a) lr0 + a floor with a = min(t/tau, 1)."""

    floor: float = 0.0
    tau: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check.nonnegative("linear", "floor", self.floor)
        check.count("linear", "tau", self.tau)

    def __call__(self, t: int) -> float:
        a = min(t / self.tau, 1.0)
        return (1.0 - a) * self.lr0 + a * self.floor
