"""The description every update rule module exports as ``RULE``.

A rule is one fused, elementwise update ``kernel(p, g, *state, scalars)`` over flat
arrays, written three times side by side in its module (NumPy reference, Numba CPU
kernel, CuPy kernel body) with one calling convention:

* ``p`` (updated in place) and ``g`` (read only);
* the state arrays named by ``state``, in that order, updated in place;
* ``scalars``: a small array in the parameter's dtype holding the per-step scalars named
  by ``scalars``, in that order (the CuPy kernel takes them as separate arguments).
  ``host_scalars`` computes them in float64 once per step, so the bias corrections and
  schedules live in one place for every backend; one array argument instead of ten keeps
  the per-call cost of a compiled kernel low.

Boolean hyperparameters that change which arrays a step touches (amsgrad, nesterov,
centered, momentum on/off) are compile-time ``flags``: each backend builds one kernel per
combination it meets (``variant(hp)``), so a disabled branch costs nothing and a state
slot the configuration does not use (still passed, aliased to ``p``) is never touched.
The NumPy reference takes the flags as keyword arguments.
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
    variant: Callable[[Mapping[str, Any]], dict[str, bool]] = lambda hp: {}
    numba_loop: Callable[..., Callable] | None = None
    cuda_body: str | None = None

    def bytes_per_element(self, hp: Mapping[str, Any], itemsize: int) -> int:
        """Bytes a step must move per element: read p, g, each used state; write p, each state."""
        return itemsize * (3 + 2 * len(self.state_used(hp)))

