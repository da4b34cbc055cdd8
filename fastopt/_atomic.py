"""A step is all or nothing as the user sees it, also under signals.

Python runs a signal's handler (Ctrl-C's ``KeyboardInterrupt``, a handler that raises)
between two bytecodes of the main thread: between two buckets' kernels, between a kernel
and the step count, inside the NumPy reference's sequence of array operations. While a step
writes, ``hold_signals()`` puts a recorder in place of every Python-level handler of the
asynchronous signals, and on leaving restores them and runs each handler whose signal
arrived, once: the interrupt then comes after the step, which is whole.

Only the main thread runs Python signal handlers, so only its steps hold them; a step in
another thread is never interrupted by one.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

# signal's getsignal and signal convert handlers to enums through a caught ValueError:
# 4-6 us a call, where its C module's take 0.02 and 0.2 us (measured here)
import _signal

ASYNCHRONOUS = tuple(int(getattr(signal, name)) for name in
                     ("SIGINT", "SIGTERM", "SIGHUP", "SIGALRM", "SIGUSR1", "SIGUSR2",
                      "SIGBREAK") if hasattr(signal, name))
_MAIN = threading.main_thread().ident
_arrived: list[int] = []    # signals recorded while held (one holder at a time: the main
_holding = [False]          # thread; a step nested in a step, as fastopt.torch's cohorts)


def _record(signum: int, frame: Any) -> None:
    _arrived.append(signum)


def hold_signals() -> list[tuple[int, Any]] | None:
    """Replace the Python handlers of the asynchronous signals by a recorder (see above);
    returns what ``release_signals`` restores (None where this call holds nothing: another
    thread, or a hold already in place). About 1 us with only SIGINT's handler set.

        held = hold_signals()
        try:
            ...                             # the writes of a step
        finally:
            release_signals(held)
    """
    if _holding[0] or threading.get_ident() != _MAIN:
        return None
    _holding[0] = True
    replaced: list[tuple[int, Any]] = []
    try:
        for signum in ASYNCHRONOUS:
            handler = _signal.getsignal(signum)
            if callable(handler):
                replaced.append((signum, handler))
                _signal.signal(signum, _record)
    except BaseException:               # a signal before the step began: nothing written
        _restore(replaced)
        raise
    return replaced


def release_signals(held: list[tuple[int, Any]] | None) -> None:
    """Restore the handlers ``hold_signals`` replaced, then run each whose signal arrived,
    once (Ctrl-C's raises KeyboardInterrupt here, after the step)."""
    if held is None:
        return
    _restore(held)
    if _arrived:
        handlers = dict(held)
        arrived = list(dict.fromkeys(_arrived))
        _arrived.clear()
        for signum in arrived:
            handlers[signum](signum, None)


def _restore(replaced: list[tuple[int, Any]]) -> None:
    for signum, handler in replaced:
        _signal.signal(signum, handler)
    _holding[0] = False
