"""A step is all or nothing as the user sees it, also under signals.

Python runs a signal's handler (Ctrl-C's ``KeyboardInterrupt``, a handler that raises)
between two bytecodes of the main thread: between two buckets' kernels, between a kernel
and the step count, inside the NumPy reference's sequence of array operations. While a step
writes, ``hold_signals()`` puts a recorder in place of every Python-level handler of the
asynchronous signals, and on leaving restores them and runs each handler whose signal
arrived, once: the interrupt then comes after the step, which is whole.

Only the main thread runs Python signal handlers, so only its calls hold them; a call in
another thread is never interrupted by one. Optimizer calls that write (step,
load_state_dict, add_param_group) hold them from before their checks to after the
optimizer is marked idle again, so a handler may itself call the optimizer.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any

# signal's getsignal and signal convert handlers to enums through a caught ValueError:
# 4-6 us a call, where its C module's take 0.02 and 0.2 us (measured here)
import _signal

ASYNCHRONOUS = tuple(int(getattr(signal, name)) for name in
                     ("SIGINT", "SIGTERM", "SIGHUP", "SIGALRM", "SIGUSR1", "SIGUSR2",
                      "SIGBREAK") if hasattr(signal, name))
_main = [threading.main_thread().ident]     # a child forked from another thread: that one
_arrived: list[int] = []    # signals recorded while held (one holder at a time: the main
_holding = [False]          # thread; a call nested in a call, as fastopt.torch's cohorts)


def _record(signum: int, frame: Any) -> None:
    _arrived.append(signum)


def _after_fork_in_child() -> None:
    _main[0] = threading.get_ident()
    _holding[0] = False
    _arrived.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
    if _holding[0] or threading.get_ident() != _main[0]:
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
    """Restore the handlers ``hold_signals`` replaced, then run each whose signal arrived
    meanwhile, once and in order, every one of them even when one raises (the first
    exception is raised after the last handler: Ctrl-C's KeyboardInterrupt comes here,
    after the call that held them)."""
    if held is None:
        return
    _restore(held)
    if _arrived:
        handlers = dict(held)
        arrived = list(dict.fromkeys(_arrived))
        _arrived.clear()
        error = None
        for signum in arrived:
            try:
                handlers[signum](signum, None)
            except BaseException as exc:    # noqa: BLE001 - raised after the others ran
                error = error or exc
        if error is not None:
            raise error


def _restore(replaced: list[tuple[int, Any]]) -> None:
    for signum, handler in replaced:
        _signal.signal(signum, handler)
    _holding[0] = False
