"""The solvers behind ``minimize`` and ``fastopt.LBFGS``: the problem (x, f, g and the
trial buffers, ``problem``), the line searches (``linesearch``), the descent loop of the
direction methods (``descent``), and one module per method, each exporting one
``Method`` record (``method``). ``METHODS`` lists them: a new method is one module and one
line here. Solvers use the kernels (``fastopt.kernels``), never the optimizer layer.
"""
from __future__ import annotations

from . import bfgs, cg, lbfgs, newton, newton_cg
from .method import Method, Option, Run

METHODS: tuple[Method, ...] = (lbfgs.METHOD, cg.METHOD, bfgs.METHOD, newton_cg.METHOD,
                               newton.METHOD)
BY_NAME = {name.lower(): m for m in METHODS for name in (m.name, *m.aliases)}


def method_named(method: str | None) -> Method:
    """The method of that name (any case; None: L-BFGS-B), or an error listing them."""
    if method is None:
        return METHODS[0]
    found = BY_NAME.get(method.lower()) if isinstance(method, str) else None
    if found is None:
        raise ValueError(f"minimize: method must be one of {sorted(m.name for m in METHODS)} "
                         f"(any case) or None (L-BFGS-B), got {method!r}")
    return found


__all__ = ["METHODS", "Method", "Option", "Run", "method_named"]
