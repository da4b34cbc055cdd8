"""Unconstrained test problems of Moré, Garbow & Hillstrom (1981), "Testing unconstrained
optimization software", ACM TOMS 7(1): residuals r(x), f = sum r^2, g = 2 J^T r, with their
standard starting points and the minimum values the paper reports."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class MGH:
    name: str
    residuals: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]   # (r, J)
    x0: np.ndarray
    f_min: float
    f_tol: float            # |f - f_min| allowed at the end

    def __call__(self, x):
        r, J = self.residuals(x)
        return float(r @ r), 2.0 * (J.T @ r)


def rosenbrock(n):
    def res(x):
        a, b = x[0::2], x[1::2]
        r = np.empty(n)
        r[0::2], r[1::2] = 10 * (b - a * a), 1 - a
        J = np.zeros((n, n))
        i = np.arange(0, n, 2)
        J[i, i], J[i, i + 1] = -20 * a, 10
        J[i + 1, i] = -1
        return r, J
    return MGH(f"extended rosenbrock n={n}", res, np.tile([-1.2, 1.0], n // 2), 0.0, 1e-10)


def powell_singular(n):
    def res(x):
        a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
        r = np.empty(n)
        r[0::4], r[1::4] = a + 10 * b, np.sqrt(5) * (c - d)
        r[2::4], r[3::4] = (b - 2 * c) ** 2, np.sqrt(10) * (a - d) ** 2
        J = np.zeros((n, n))
        i = np.arange(0, n, 4)
        J[i, i], J[i, i + 1] = 1, 10
        J[i + 1, i + 2], J[i + 1, i + 3] = np.sqrt(5), -np.sqrt(5)
        J[i + 2, i + 1], J[i + 2, i + 2] = 2 * (b - 2 * c), -4 * (b - 2 * c)
        J[i + 3, i], J[i + 3, i + 3] = 2 * np.sqrt(10) * (a - d), -2 * np.sqrt(10) * (a - d)
        return r, J
    return MGH(f"extended powell singular n={n}", res, np.tile([3.0, -1.0, 0.0, 1.0], n // 4),
               0.0, 1e-7)


def wood():
    s90, s10 = np.sqrt(90), np.sqrt(10)

    def res(x):
        x1, x2, x3, x4 = x
        r = np.array([10 * (x2 - x1 ** 2), 1 - x1, s90 * (x4 - x3 ** 2), 1 - x3,
                      s10 * (x2 + x4 - 2), (x2 - x4) / s10])
        J = np.array([[-20 * x1, 10, 0, 0], [-1, 0, 0, 0], [0, 0, -2 * s90 * x3, s90],
                      [0, 0, -1, 0], [0, s10, 0, s10], [0, 1 / s10, 0, -1 / s10]])
        return r, J
    return MGH("wood", res, np.array([-3.0, -1.0, -3.0, -1.0]), 0.0, 1e-10)


def beale():
    y = np.array([1.5, 2.25, 2.625])
    i = np.arange(1, 4)

    def res(x):
        x1, x2 = x
        r = y - x1 * (1 - x2 ** i)
        J = np.stack([-(1 - x2 ** i), x1 * i * x2 ** (i - 1)], axis=1)
        return r, J
    return MGH("beale", res, np.array([1.0, 1.0]), 0.0, 1e-10)


def helical_valley():
    def res(x):
        x1, x2, x3 = x
        theta = np.arctan(x2 / x1) / (2 * np.pi) + (0.5 if x1 < 0 else 0.0)
        rad = np.hypot(x1, x2)
        r = np.array([10 * (x3 - 10 * theta), 10 * (rad - 1), x3])
        dth = np.array([-x2, x1]) / (2 * np.pi * rad * rad)
        J = np.array([[-100 * dth[0], -100 * dth[1], 10], [10 * x1 / rad, 10 * x2 / rad, 0],
                      [0, 0, 1]])
        return r, J
    return MGH("helical valley", res, np.array([-1.0, 0.0, 0.0]), 0.0, 1e-10)


def brown_badly_scaled():
    def res(x):
        x1, x2 = x
        r = np.array([x1 - 1e6, x2 - 2e-6, x1 * x2 - 2])
        J = np.array([[1, 0], [0, 1], [x2, x1]])
        return r, J
    return MGH("brown badly scaled", res, np.array([1.0, 1.0]), 0.0, 1e-6)


def trigonometric(n):
    i = np.arange(1, n + 1)

    def res(x):
        c, s = np.cos(x), np.sin(x)
        r = n - c.sum() + i * (1 - c) - s
        J = np.tile(s, (n, 1)) + np.diag(i * s - c)
        return r, J
    # the global minimum is 0; from x0 = 1/n the usual result is the local 2.79506e-5
    return MGH(f"trigonometric n={n}", res, np.full(n, 1.0 / n), 2.79506e-5, 1e-9)


def penalty_one(n):
    a = 1e-5

    def res(x):
        r = np.append(np.sqrt(a) * (x - 1), x @ x - 0.25)
        J = np.vstack([np.sqrt(a) * np.eye(n), 2 * x])
        return r, J
    f_min = {4: 2.24997e-5, 10: 7.08765e-5}[n]
    return MGH(f"penalty I n={n}", res, np.arange(1.0, n + 1), f_min, 1e-9)


def variably_dimensioned(n):
    j = np.arange(1, n + 1)

    def res(x):
        u = j @ (x - 1)
        r = np.concatenate([x - 1, [u, u * u]])
        J = np.vstack([np.eye(n), j, 2 * u * j])
        return r, J
    return MGH(f"variably dimensioned n={n}", res, 1 - j / n, 0.0, 1e-10)


def watson(n):
    t = np.arange(1, 30) / 29.0
    j = np.arange(n)

    def res(x):
        p = t[:, None] ** j                           # t^(j), j = 0..n-1
        s1 = (p[:, :-1] * (j[1:] * x[1:])).sum(axis=1)  # sum (j-1) x_j t^(j-2)
        s2 = p @ x
        r = np.concatenate([s1 - s2 ** 2 - 1, [x[0], x[1] - x[0] ** 2 - 1]])
        J = np.zeros((31, n))
        J[:29, 1:] = j[1:] * p[:, :-1]
        J[:29] -= 2 * s2[:, None] * p
        J[29, 0] = 1
        J[30, 0], J[30, 1] = -2 * x[0], 1
        return r, J
    f_min = {6: 2.28767e-3, 9: 1.39976e-6}[n]
    return MGH(f"watson n={n}", res, np.zeros(n), f_min, 1e-8 if n == 6 else 1e-9)


def freudenstein_roth():
    def res(x):
        x1, x2 = x
        r = np.array([-13 + x1 + ((5 - x2) * x2 - 2) * x2, -29 + x1 + ((x2 + 1) * x2 - 14) * x2])
        J = np.array([[1, 10 * x2 - 3 * x2 ** 2 - 2], [1, 3 * x2 ** 2 + 2 * x2 - 14]])
        return r, J
    # the global minimum is 0 at (5, 4); from x0 every gradient method finds the local
    # minimum 48.9842 at (11.41, -0.8968), as the paper notes
    return MGH("freudenstein roth", res, np.array([0.5, -2.0]), 48.98425367924, 1e-8)


def box_3d(m=10):
    t = 0.1 * np.arange(1, m + 1)

    def res(x):
        x1, x2, x3 = x
        e1, e2 = np.exp(-t * x1), np.exp(-t * x2)
        c = np.exp(-t) - np.exp(-10 * t)
        r = e1 - e2 - x3 * c
        J = np.stack([-t * e1, t * e2, -c], axis=1)
        return r, J
    return MGH("box 3-d", res, np.array([0.0, 10.0, 20.0]), 0.0, 1e-10)


def problems():
    return [rosenbrock(10), powell_singular(8), wood(), beale(), helical_valley(),
            brown_badly_scaled(), trigonometric(10), penalty_one(4), penalty_one(10),
            variably_dimensioned(10), watson(6), watson(9), freudenstein_roth(), box_3d()]


def evaluations_to_reach(minimize, problem):
    """Calls of fun until f is within the problem's tolerance of its minimum (None: never)."""
    calls = []

    def fun(x):
        f, g = problem(x)
        calls.append(f)
        return f, g
    minimize(fun, problem.x0)
    return next((i for i, f in enumerate(calls, 1)
                 if abs(f - problem.f_min) <= problem.f_tol), None)
