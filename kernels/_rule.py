"""The description every update rule module exports as ``RULE``.

A rule is one fused, elementwise update ``kernel(p, g, *state, *scalars)`` over flat
arrays, written three times side by side in its module (NumPy reference, Numba CPU
kernel, CuPy kernel body) with one calling convention:

* ``p`` (updated in place) and ``g`` (read only);
* the state arrays named by ``state``, in that order, updated in place;
* the per-step scalars named by ``scalars``, in that order, already cast to the
  parameter's dtype. ``host_scalars`` computes them in float64 once per step, so the
  bias corrections, schedules and flags live in one place for every backend.

Boolean hyperparameters (amsgrad, nesterov, centered...) are passed as 0/1 scalars; a
state slot the configuration does not use is still passed (aliased to ``p``) and never
touched by the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

HostScalars = Callable[[Mapping[str, Any], int, float, Mapping[str, float]],
                       tuple[tuple[float, ...], dict[str, float]]]


@dataclass(frozen=True)
class Rule:
    name: str
    state: tuple[str, ...]
    scalars: tuple[str, ...]
    host_scalars: HostScalars
    reference: Callable[..., None]
    state_used: Callable[[Mapping[str, Any]], tuple[str, ...]]
    state_fill: Callable[[str, Mapping[str, Any]], float] = lambda name, hp: 0.0
    extra: Mapping[str, float] = field(default_factory=dict)
    numba: Any = None
    cuda_body: str | None = None

    def bytes_per_element(self, hp: Mapping[str, Any], itemsize: int) -> int:
        """Bytes a step must move per element: read p, g, each used state; write p, each state."""
        return itemsize * (3 + 2 * len(self.state_used(hp)))


def flag(value: bool) -> float:
    """A boolean hyperparameter as the 0/1 scalar the kernels take."""
    return 1.0 if value else 0.0
