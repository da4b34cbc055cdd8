"""The optimizers: PyTorch's keyword names, defaults and update semantics.

Every class takes ``params`` (one array or a list of arrays, updated in place), ``lr`` (a
float or a schedule from :mod:`fastopt.schedules`) and the keyword-only ``backend``
("auto", "numpy", "numba" or "cupy"); ``step(grads)`` applies one fused update.
The formulas are in each rule's module in ``fastopt.kernels``.
"""
from __future__ import annotations

from typing import Optional

from . import _checks as check
from .kernels import RULES
from .optimizer import Arrays, LearningRate, Optimizer

__all__ = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "Nadam"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; see kernels/sgd.py."""

    rule = RULES["sgd"]

    def __init__(self, params: Arrays, lr: LearningRate = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(momentum=check.nonnegative(n, "momentum", momentum),
                  dampening=check.in_unit_interval(n, "dampening", dampening, include_one=True),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay),
                  nesterov=check.boolean(n, "nesterov", nesterov))
        if hp["nesterov"] and (hp["momentum"] == 0 or hp["dampening"] != 0):
            raise ValueError(f"{n}: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        super().__init__(params, lr, backend, hp)


class Adagrad(Optimizer):
    """Adagrad with learning-rate decay; see kernels/adagrad.py."""

    rule = RULES["adagrad"]

    def __init__(self, params: Arrays, lr: LearningRate = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(lr_decay=check.nonnegative(n, "lr_decay", lr_decay),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay),
                  initial_accumulator_value=check.nonnegative(
                      n, "initial_accumulator_value", initial_accumulator_value),
                  eps=check.nonnegative(n, "eps", eps))
        super().__init__(params, lr, backend, hp)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum; see kernels/rmsprop.py."""

    rule = RULES["rmsprop"]

    def __init__(self, params: Arrays, lr: LearningRate = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(alpha=check.in_unit_interval(n, "alpha", alpha, include_one=True),
                  eps=check.nonnegative(n, "eps", eps),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay),
                  momentum=check.nonnegative(n, "momentum", momentum),
                  centered=check.boolean(n, "centered", centered))
        super().__init__(params, lr, backend, hp)


class Adadelta(Optimizer):
    """Adadelta; see kernels/adadelta.py."""

    rule = RULES["adadelta"]

    def __init__(self, params: Arrays, lr: LearningRate = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, *, backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(rho=check.in_unit_interval(n, "rho", rho, include_one=True),
                  eps=check.nonnegative(n, "eps", eps),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay))
        super().__init__(params, lr, backend, hp)


class Adam(Optimizer):
    """Adam (amsgrad optional) with coupled weight decay; see kernels/adam.py."""

    rule = RULES["adam"]
    _decoupled = False

    def __init__(self, params: Arrays, lr: LearningRate = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(betas=check.betas(n, betas), eps=check.nonnegative(n, "eps", eps),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay),
                  amsgrad=check.boolean(n, "amsgrad", amsgrad), decoupled=self._decoupled)
        super().__init__(params, lr, backend, hp)


class AdamW(Adam):
    """Adam with decoupled weight decay, p *= 1 - lr*weight_decay; see kernels/adam.py."""

    _decoupled = True

    def __init__(self, params: Arrays, lr: LearningRate = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 backend: str = "auto") -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, backend=backend)


class Adamax(Optimizer):
    """Adamax (infinity-norm Adam); see kernels/adamax.py."""

    rule = RULES["adamax"]

    def __init__(self, params: Arrays, lr: LearningRate = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(betas=check.betas(n, betas), eps=check.nonnegative(n, "eps", eps),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay))
        super().__init__(params, lr, backend, hp)


class Nadam(Optimizer):
    """Nadam; ``momentum_decay=None`` gives the textbook (optax) form; see kernels/nadam.py."""

    rule = RULES["nadam"]

    def __init__(self, params: Arrays, lr: LearningRate = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: Optional[float] = 4e-3, *,
                 backend: str = "auto") -> None:
        n = type(self).__name__
        hp = dict(betas=check.betas(n, betas), eps=check.nonnegative(n, "eps", eps),
                  weight_decay=check.nonnegative(n, "weight_decay", weight_decay),
                  momentum_decay=None if momentum_decay is None
                  else check.nonnegative(n, "momentum_decay", momentum_decay))
        super().__init__(params, lr, backend, hp)
