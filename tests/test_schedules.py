"""Schedule values at known steps, and their argument checks."""
import math

import pytest

from fastopt import schedules


@pytest.mark.parametrize("schedule,t,expected", [
    (schedules.step_decay(0.1, drop=0.5, every=10), 1, 0.1),
    (schedules.step_decay(0.1, drop=0.5, every=10), 10, 0.05),
    (schedules.step_decay(0.1, drop=0.5, every=10), 25, 0.025),
    (schedules.exponential(0.1, k=0.01), 100, 0.1 * math.exp(-1.0)),
    (schedules.exponential(0.1, k=0.0), 7, 0.1),
    (schedules.inverse_time(0.1, k=0.5), 2, 0.05),
    (schedules.inverse_time(1.0, k=1.0), 9, 0.1),
    (schedules.power(1.0, d=0.5), 4, 0.5),
    (schedules.power(0.3, d=1.0), 3, 0.1),
    (schedules.linear(1.0, floor=0.1, tau=10), 5, 0.55),
    (schedules.linear(1.0, floor=0.1, tau=10), 10, 0.1),
    (schedules.linear(1.0, floor=0.1, tau=10), 1000, 0.1),
])
def test_values(schedule, t, expected):
    assert schedule(t) == pytest.approx(expected, rel=1e-14)


def test_monotone_decay():
    for s in (schedules.step_decay(1.0, 0.9, 3), schedules.exponential(1.0, 0.1),
              schedules.inverse_time(1.0, 0.1), schedules.power(1.0, 0.7),
              schedules.linear(1.0, 0.01, 50)):
        values = [s(t) for t in range(1, 200)]
        assert all(a >= b for a, b in zip(values, values[1:])), s
        assert values[-1] < values[0]


@pytest.mark.parametrize("make,match", [
    (lambda: schedules.exponential(-1.0), "lr must be"),
    (lambda: schedules.exponential(0.1, k=-1), "k must be"),
    (lambda: schedules.step_decay(0.1, drop=1.5), "drop must be"),
    (lambda: schedules.step_decay(0.1, every=0), "every must be"),
    (lambda: schedules.linear(0.1, tau=0), "tau must be"),
    (lambda: schedules.linear(0.1, floor=float("nan")), "floor must be"),
    (lambda: schedules.power(0.1, d=float("inf")), "d must be"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
