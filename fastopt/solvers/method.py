"""What a ``minimize`` method is: one ``Method`` record per method module, listed once
in ``fastopt.solvers.METHODS``; ``minimize``, the tests, the benchmarks and the API
page derive from that list."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .problem import Problem


@dataclass(frozen=True)
class Option:
    """One option: its default, the check a given value gets (``check(name, value)``
    returns the value to use; None: checked where it is used, against x), and the default
    for x's dtype where that depends on it."""

    default: Any
    check: Callable[[str, Any], Any] | None = None
    for_dtype: Callable[[np.dtype], Any] | None = None


@dataclass
class Run:
    """What a method's runner gets besides the problem: the checked options, the
    callback ``report(x, f)``, x0's shape, and for Newton's methods the Hessian's sources
    and the gradient alone (``gradient(v, g_out)``), ``checked(array, what)`` checking
    what hess and hessp return like a gradient; ``nfev()``, evaluations so far (finite
    differences included)."""

    options: dict[str, Any]
    report: Callable[[Any, float], Any] | None
    shape: tuple
    nfev: Callable[[], int]
    args: tuple = ()
    hess: Any = None
    hessp: Any = None
    gradient: Callable[[Any, Any], None] | None = None
    checked: Callable[[Any, str], Any] | None = None


Outcome = tuple[int, str, dict]     # (iterations, the reason it stopped, extra result fields)


@dataclass(frozen=True)
class Method:
    """A method of ``minimize``: SciPy's name (case-insensitive; ``aliases`` too), a line
    for the API page, its options, the options ``tol`` sets, SciPy's message and status per
    stopping reason, and ``run(problem, run) -> (nit, reason, extra)``."""

    name: str
    summary: str
    options: Mapping[str, Option]
    tol: tuple[str, ...]
    messages: Mapping[str, str]
    statuses: Mapping[str, int]
    run: Callable[[Problem, Run], Outcome]
    aliases: tuple[str, ...] = ()
    option_aliases: Mapping[str, str] = field(default_factory=dict)  # SciPy's other names
    # options SciPy deprecated, accepted with a DeprecationWarning saying this
    deprecated: Mapping[str, str] = field(default_factory=dict)
    hessian: str = "unused"           # hess: "unused" (SciPy's warning), "optional", "required"
    uses_hessp: bool = False
    scipy: bool = True                # scipy.optimize.minimize has it (tests compare the two)
    # what the method needs of (the jac mode, hess, hessp): raises when it is not there
    needs: Callable[[str, Any, Any], None] | None = None
    warns: bool = True                # disp=True: an OptimizeWarning when it fails

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def uses_hess(self) -> bool:
        return self.hessian != "unused"

    def __str__(self) -> str:
        return self.name
