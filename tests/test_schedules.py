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


# -- torch's schedulers, step by step ------------------------------------------------------
def torch_lrs(make, base, steps):
    """The lr each of ``steps`` optimizer steps takes under torch's scheduler ``make(opt)``
    (read before the step, scheduler.step() after it)."""
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    scheduler = make(opt, torch.optim.lr_scheduler)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return out


TORCH_SCHEDULES = {
    "cosine": (schedules.cosine(0.1, t_max=20, floor=1e-3), 0.1,
               lambda o, s: s.CosineAnnealingLR(o, T_max=20, eta_min=1e-3), 50),
    "cosine, no floor": (schedules.cosine(0.5, t_max=7), 0.5,
                         lambda o, s: s.CosineAnnealingLR(o, T_max=7), 30),
    "linear warmup": (schedules.linear_warmup(0.1, steps=10), 0.1,
                      lambda o, s: s.LinearLR(o, total_iters=10), 20),
    "linear decay": (schedules.linear_warmup(0.1, 8, start_factor=1.0, end_factor=0.1), 0.1,
                     lambda o, s: s.LinearLR(o, 1.0, 0.1, total_iters=8), 20),
    "warmup then cosine": (
        schedules.warmup(schedules.cosine(0.1, t_max=40, floor=1e-4), steps=10,
                         start_factor=0.01), 0.1,
        lambda o, s: s.SequentialLR(o, [s.LinearLR(o, 0.01, total_iters=10),
                                        s.CosineAnnealingLR(o, T_max=40, eta_min=1e-4)],
                                    milestones=[10]), 50),
    "sequence": (
        schedules.sequence((schedules.linear_warmup(0.2, 5, 0.1),
                            schedules.cosine(0.2, t_max=10), schedules.cosine(0.2, 4, 0.05)),
                           milestones=(5, 15)), 0.2,
        lambda o, s: s.SequentialLR(o, [s.LinearLR(o, 0.1, total_iters=5),
                                        s.CosineAnnealingLR(o, T_max=10),
                                        s.CosineAnnealingLR(o, T_max=4, eta_min=0.05)],
                                    milestones=[5, 15]), 25),
    "one cycle": (schedules.one_cycle(0.3, total_steps=100), 0.3,
                  lambda o, s: s.OneCycleLR(o, max_lr=0.3, total_steps=100,
                                            cycle_momentum=False), 100),
    "one cycle, linear, three phases": (
        schedules.one_cycle(1.0, 60, pct_start=0.25, anneal="linear", div_factor=10,
                            final_div_factor=100, three_phase=True), 1.0,
        lambda o, s: s.OneCycleLR(o, max_lr=1.0, total_steps=60, pct_start=0.25,
                                  anneal_strategy="linear", div_factor=10,
                                  final_div_factor=100, three_phase=True,
                                  cycle_momentum=False), 60),
}


@pytest.mark.parametrize("name", list(TORCH_SCHEDULES))
def test_schedules_torch_has_give_torchs_lr_at_every_step(name):
    """Step t of fastopt's schedule gives the lr torch's scheduler gives after t - 1
    scheduler steps (torch's chainable forms round differently: 1e-12 relative)."""
    schedule, base, make, steps = TORCH_SCHEDULES[name]
    expected = torch_lrs(make, base, steps)
    got = [schedule(t) for t in range(1, steps + 1)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_one_cycle_holds_its_last_lr_after_total_steps():
    s = schedules.one_cycle(0.3, total_steps=10)
    assert s(11) == s(1000) == s(10) == pytest.approx(0.3 / 25 / 1e4)


@pytest.mark.parametrize("make,match", [
    (lambda: schedules.cosine(0.1, t_max=0), "t_max must be"),
    (lambda: schedules.cosine(0.1, 10, floor=-1.0), "floor must be"),
    (lambda: schedules.linear_warmup(0.1, steps=5, start_factor=1.5), "start_factor must be"),
    (lambda: schedules.warmup(lambda t: 0.1, steps=5), "then must be fastopt.schedules"),
    (lambda: schedules.warmup(schedules.cosine(0.1, 5), steps=0), "steps must be"),
    (lambda: schedules.sequence((schedules.cosine(0.1, 5),), milestones=(3,)),
     "milestones must be 0 increasing"),
    (lambda: schedules.sequence((schedules.cosine(0.1, 5),) * 3, milestones=(5, 5)),
     "milestones must be 2 increasing"),
    (lambda: schedules.sequence([], ()), "schedules must be fastopt.schedules"),
    (lambda: schedules.one_cycle(0.1, 100, anneal="cosine"), "anneal must be"),
    (lambda: schedules.one_cycle(0.1, 100, pct_start=2.0), "pct_start must be"),
    (lambda: schedules.one_cycle(0.1, 0), "total_steps must be"),
])
def test_bad_arguments_of_the_composed_schedules(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- schedules as data ----------------------------------------------------------------------
EVERY_SCHEDULE = [
    schedules.step_decay(0.1, 0.5, 3), schedules.exponential(0.1, 0.01),
    schedules.inverse_time(0.1, 0.5), schedules.power(0.1, 0.7),
    schedules.linear(0.1, 0.01, 50), schedules.cosine(0.1, 30, 0.001),
    schedules.linear_warmup(0.1, 4, 0.2, 0.9),
    schedules.warmup(schedules.cosine(0.1, 30), 5, 0.1),
    schedules.one_cycle(0.1, 40, 0.2, "linear", 10.0, 100.0, True),
    schedules.sequence((schedules.linear_warmup(0.1, 3, 0.5),
                        schedules.warmup(schedules.exponential(0.1, 0.1), 2),
                        schedules.sequence((schedules.power(0.1), schedules.linear(0.1)), (4,))),
                       (3, 9)),
]


def test_every_kind_is_covered():
    assert {type(s).__name__ for s in EVERY_SCHEDULE} == set(schedules.Schedule.kinds)


@pytest.mark.parametrize("schedule", EVERY_SCHEDULE, ids=lambda s: type(s).__name__)
def test_a_schedule_round_trips_through_numbers_and_strings(schedule):
    """``to_state`` holds only numbers (or tuples of them) and strings; through np.savez and np.load (no
    pickle) ``from_state`` rebuilds an equal schedule giving the same lr at every step."""
    import io

    import numpy as np
    state = schedules.to_state(schedule)
    assert all(isinstance(v, (int, float, str, bool)) or isinstance(v, tuple) and all(
        isinstance(x, (int, float)) for x in v) for v in state.values()), state
    buffer = io.BytesIO()
    np.savez(buffer, **{f"lr.{k}" if k else "lr": v for k, v in state.items()})
    buffer.seek(0)
    loaded = dict(np.load(buffer))                      # allow_pickle=False
    back = schedules.from_state({k[3:]: v for k, v in loaded.items()})
    assert back == schedule and repr(back) == repr(schedule)
    assert [back(t) for t in range(1, 80)] == [schedule(t) for t in range(1, 80)]


def test_from_state_names_an_unknown_kind_and_a_bad_number():
    with pytest.raises(ValueError, match="unknown schedule kind 'cosinus'"):
        schedules.from_state({"": "cosinus", "lr0": 0.1})
    with pytest.raises(ValueError, match="cosine: t_max must be"):
        schedules.from_state({"": "cosine", "lr0": 0.1, "t_max": -3})
    with pytest.raises(ValueError, match="schedule cosine: .*t_max"):
        schedules.from_state({"": "cosine", "lr0": 0.1})
