"""``numba.njit`` that never fails for want of a cache: compiled kernels are cached on disk
where numba finds a writable place (next to the sources, or the user's cache folder, or
``NUMBA_CACHE_DIR``) and compiled in memory otherwise (a read-only install run by a user
without a writable home), with one warning saying so."""
from __future__ import annotations

import warnings
from typing import Any, Callable

try:
    import numba
except Exception:   # the numba backend is optional, and a broken numba must not break us
    numba = None

_warned = False


def njit(fn: Callable | None = None, **options: Any) -> Any:
    """``numba.njit(**options)(fn)``; with ``cache=True`` and nowhere to write the cache,
    the same without the cache."""
    if fn is None:
        return lambda f: njit(f, **options)
    try:
        return numba.njit(**options)(fn)
    except RuntimeError as exc:
        if not options.get("cache") or "cannot cache" not in str(exc):
            raise
        _warn_once(exc)
        return numba.njit(**dict(options, cache=False))(fn)


def _warn_once(exc: Exception) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"fastopt: numba has nowhere to write its cache ({exc}); the kernels "
                      "are compiled in memory, each new process compiles them again. Set "
                      "NUMBA_CACHE_DIR to a writable folder to keep them.", RuntimeWarning,
                      stacklevel=3)
