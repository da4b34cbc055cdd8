"""Nonlinear conjugate gradients (``minimize(method="CG")``).

    d_0 = -g_0;   d_k+1 = -g_k+1 + beta_k d_k      after a strong-Wolfe step along d_k

    "PR+" (default)  beta = max(0, g+.(g+ - g) / g.g)        Polak-Ribiere, clipped
    "FR"             beta = g+.g+ / g.g                        Fletcher-Reeves
    "HS"             beta = g+.(g+ - g) / d.(g+ - g)           Hestenes-Stiefel

Restarts (beta = 0) every n iterations and whenever d_k+1 would not be a sufficient
descent direction, g+.d+ <= -0.01 g+.g+ (Gilbert & Nocedal's condition, as SciPy).
Every scalar these need comes from the fused trial pass (``kernels.cg.cg_trial``: the
gradient's copy into the solver's buffer with four sums, 4n words) at the accepted point,
and the new direction with g.d is one fused pass (3n): with the trial point x + t d (3n),
10n words an iteration with one trial, line search included (SciPy's CG: ~30n and five
temporaries).
"""
from __future__ import annotations

from typing import Any

from . import options as o
from .descent import MESSAGES, STATUS, descend, norm
from .method import Method, Option, Outcome, Run
from .problem import Problem

VARIANTS = ("PR+", "FR", "HS")
SUFFICIENT_DESCENT = 0.01


class CG:
    unit_step = False                         # SciPy's first trial step (_descent.first_trial)

    def __init__(self, problem: Problem, variant: str) -> None:
        self.ops, self.variant, self.n = problem.ops, variant, problem.x.size
        self.beta = 0.0                  # 0: the next direction is steepest descent
        self.gg = problem.ops.dot(problem.g, problem.g)
        self.since_restart = 0
        self.sums = (0.0, self.gg, 0.0, 0.0)   # the last trial's g_t.d, g_t.g_t, g_t.g, max|g_t|
        self.problem = problem
        problem.trial = self                    # its trials come in through absorb, measure

    def absorb(self, g_t: Any, g_src: Any) -> None:
        """The gradient at a trial point into g_t, and its dot products, in one pass."""
        if not (isinstance(g_src, type(g_t)) and g_src.dtype == g_t.dtype and
                g_src.flags.c_contiguous):
            g_t[...] = g_src
            g_src = g_t
        self.sums = self.ops.call("cg_trial", g_src, self.problem.d, self.problem.g, g_t)

    def measure(self, g_t: Any, d: Any) -> float:
        return self.sums[0]

    def direction(self, problem: Problem) -> float:
        if self.beta == 0.0:
            problem.d[...] = problem.g
            problem.d *= -1
            self.since_restart = 0
            return -self.gg
        self.since_restart += 1
        return self.ops.call("cg_direction", problem.g, problem.d, self.beta)

    def restart(self, problem: Problem) -> bool:
        """A failed search along a conjugate direction is retried along -g."""
        if self.beta == 0.0:
            return False
        self.beta = 0.0
        return True

    def accepted(self, problem: Problem, t: float, gtd: float, x_old: Any, g_old: Any
                 ) -> None:
        gd, gg, gq, _ = self.sums           # at the accepted point: g+.d, g+.g+, g+.g
        if self.variant == "FR":
            beta = gg / self.gg
        elif self.variant == "PR+":
            beta = max(0.0, (gg - gq) / self.gg)
        else:
            dy = gd - gtd
            beta = (gg - gq) / dy if dy != 0 else 0.0
        if beta * gd - gg > -SUFFICIENT_DESCENT * gg or self.since_restart + 1 >= self.n:
            beta = 0.0
        self.beta, self.gg = beta, gg

    def gnorm(self, problem: Problem, order: float) -> float:
        return self.sums[3] if order == float("inf") else norm(self.ops, problem.g, order)


def run(problem: Problem, run: Run) -> Outcome:
    nit, reason = descend(problem, CG(problem, run.options["variant"]), run)
    return nit, reason, {}


METHOD = Method(
    name="CG", summary="nonlinear conjugate gradients (PR+, FR or HS), SciPy's CG",
    options=dict(o.GRADIENT, c2=Option(0.1, o.fraction),        # SciPy: c2=0.4
                 variant=Option("PR+", o.one_of(VARIANTS))),
    tol=("gtol",), messages=MESSAGES, statuses=STATUS, run=run)
