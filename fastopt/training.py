"""Helpers for training loops: early stopping."""
from __future__ import annotations

import math
from typing import Any

from . import _checks


class EarlyStopping:
    """Stop training when a monitored value (a validation loss) has stopped improving.

    A value improves on the best one when it is lower by more than ``min_delta`` (higher,
    with ``mode="max"``); ``update`` returns True once ``patience`` values in a row have
    not. NaN never improves. ``best``, ``best_epoch`` (1 for the first update), ``epoch``,
    ``wait`` and ``improved`` (the last update's) say where it stands. In a training loop,
    call ``update(validation_loss)`` after each epoch, stop when it returns True, and keep a
    copy of the params whenever ``improved``:

    >>> stopper = EarlyStopping(patience=2)
    >>> [stopper.update(loss) for loss in (3.0, 2.0, 2.5, 2.4)]
    [False, False, False, True]
    >>> stopper.best, stopper.best_epoch, stopper.improved
    (2.0, 2, False)
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min") -> None:
        self.patience = _checks.count("EarlyStopping", "patience", patience)
        self.min_delta = _checks.nonnegative("EarlyStopping", "min_delta", min_delta)
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.epoch = 0
        self.wait = 0
        self.improved = False

    def update(self, value: Any) -> bool:
        """Record this epoch's value; True when training should stop."""
        if isinstance(value, bool) or not hasattr(value, "__float__"):
            raise TypeError(f"EarlyStopping.update: value must be a real number, got "
                            f"{type(value).__name__}")
        value = float(value)
        self.epoch += 1
        if self.mode == "min":
            self.improved = value < self.best - self.min_delta
        else:
            self.improved = value > self.best + self.min_delta
        if self.improved:
            self.best, self.best_epoch, self.wait = value, self.epoch, 0
        else:
            self.wait += 1
        return self.wait >= self.patience

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"mode={self.mode!r}, best={self.best!r} at epoch {self.best_epoch}, "
                f"wait={self.wait})")
