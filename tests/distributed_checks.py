"""Checks of fastopt.distributed run under ``mpiexec -n N`` (tests/test_distributed.py
launches them): ``python tests/distributed_checks.py CHECK``. Every rank runs the check;
a failed assertion on any rank makes mpiexec exit non-zero."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES  # noqa: E402

import fastopt  # noqa: E402
from fastopt.distributed import ShardedOptimizer  # noqa: E402

COMM = MPI.COMM_WORLD
SHAPES = [(7, 3), (5,), (2, 2, 2), (1,)]          # 43 elements: uneven shards, padding


def params_like(seed: int, dtype) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def averaged(grads: list) -> list:
    """Every rank's grads summed in rank order, divided by the world size."""
    everyone = COMM.allgather(grads)
    out = []
    for i in range(len(grads)):
        acc = everyone[0][i].copy()
        for theirs in everyone[1:]:
            acc += theirs[i]
        acc /= acc.dtype.type(COMM.size)
        out.append(acc)
    return out


def groups_of(arrays: list, hp: dict) -> list:
    """Two param groups, the second with its own lr (and the rule's other keywords)."""
    lr = hp.get("lr", 1.0)
    return [{"params": arrays[:2]}, {"params": arrays[2:], "lr": lr * 0.5}]


def check_every_rule_matches_one_process(steps: int = 4) -> None:
    """Bit for bit, every case of the parity table, float32 and float64, with groups (but
    the rules that read whole params: refused, tests/test_distributed.py)."""
    for name, hp in CASES:
        rule = getattr(fastopt, name)
        if rule.rule.passes:
            continue
        for dtype in (np.float32, np.float64):
            ours, ref = params_like(0, dtype), params_like(0, dtype)
            sharded = ShardedOptimizer(rule, groups_of(ours, hp), **hp)
            single = rule(groups_of(ref, hp), **hp, backend="numpy"
                          if "numba" not in fastopt.available_backends() else "numba")
            rng = np.random.default_rng(100 + COMM.rank)
            for _ in range(steps):
                grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
                sharded.step(grads)
                single.step(averaged(grads))
            for a, b in zip(ours, ref):
                assert np.array_equal(a, b), (name, hp, dtype, np.abs(a - b).max())
            assert sharded.step_count == single.step_count == steps


def check_max_grad_norm_is_the_norm_over_every_rank(steps: int = 4) -> None:
    """Clipped by the norm of the whole averaged grads: each rank's slices summed over the
    ranks, so the chunks (and the rounding of the sum) are not one process's: the norm
    within 1e-14 of it, the params within 1e-12."""
    for name, hp in [("AdamW", {"lr": 1e-2}), ("SGD", {"lr": 0.1, "momentum": 0.9})]:
        rule = getattr(fastopt, name)
        ours, ref = params_like(0, np.float64), params_like(0, np.float64)
        sharded = ShardedOptimizer(rule, groups_of(ours, hp), max_grad_norm=0.5, **hp)
        single = rule(groups_of(ref, hp), max_grad_norm=0.5, **hp)
        rng = np.random.default_rng(100 + COMM.rank)
        for _ in range(steps):
            grads = [rng.standard_normal(s) for s in SHAPES]
            sharded.step(grads)
            single.step(averaged(grads))
            assert abs(sharded.grad_norm - single.grad_norm) <= 1e-14 * single.grad_norm
            assert single.grad_norm > 0.5
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def check_live_hyperparameters_and_schedules() -> None:
    ours, ref = params_like(1, np.float32), params_like(1, np.float32)
    schedule = fastopt.schedules.step_decay(0.1, drop=0.5, every=2)
    sharded = ShardedOptimizer(fastopt.Adam, ours, lr=schedule)
    single = fastopt.Adam(ref, lr=schedule)
    rng = np.random.default_rng(7 + COMM.rank)
    for k in range(5):
        if k == 3:                                   # the same change on every rank
            sharded.param_groups[0]["weight_decay"] = 0.05
            single.param_groups[0]["weight_decay"] = 0.05
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        sharded.step(grads)
        single.step(averaged(grads))
    for a, b in zip(ours, ref):
        assert np.array_equal(a, b)
    assert sharded.param_groups[0]["weight_decay"] == 0.05


def check_checkpoints_cross_world_sizes() -> None:
    """state_dict() gathers the single-process optimizer's dict on rank 0; it resumes on
    one process, and on another world size (a sub-communicator of the first two ranks),
    bit for bit; shard_state_dict() round-trips on the same ranks."""
    hp = dict(lr=0.01, weight_decay=0.01)
    ours, ref = params_like(2, np.float32), params_like(2, np.float32)
    sharded = ShardedOptimizer(fastopt.Nadam, groups_of(ours, hp), **hp)
    single = fastopt.Nadam(groups_of(ref, hp), **hp)
    rng = np.random.default_rng(11 + COMM.rank)

    def grads():
        return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    for _ in range(3):
        g = grads()
        sharded.step(g)
        single.step(averaged(g))
    gathered = sharded.state_dict()
    if COMM.rank == 0:
        expected = single.state_dict()
        assert gathered.keys() == expected.keys(), set(gathered) ^ set(expected)
        for key, value in expected.items():
            assert np.array_equal(np.asarray(gathered[key]), np.asarray(value)), key
    else:
        assert gathered is None
    gathered = COMM.bcast(gathered, root=0)
    # resume on one process, and on two ranks, from the gathered form
    alone = fastopt.Nadam(groups_of([a.copy() for a in ours], hp), **hp)
    alone.load_state_dict(gathered)
    color = 0 if COMM.rank < 2 else MPI.UNDEFINED
    sub = COMM.Split(color, COMM.rank)
    g = averaged(grads())          # every rank's grads: the same average on every rank
    if sub != MPI.COMM_NULL:
        two = [a.copy() for a in ours]
        resumed = ShardedOptimizer(fastopt.Nadam, groups_of(two, hp), comm=sub, **hp)
        resumed.load_state_dict(gathered if sub.rank == 0 else None)
        resumed.step([x.copy() for x in g])   # both ranks pass the average: its average
        alone.step([x.copy() for x in g])
        for a, b in zip(two, alone.params):
            assert np.array_equal(a, b)
        assert resumed.step_count == alone.step_count == 4
        sub.Free()
    # the per-rank form, on the same ranks
    mine = sharded.shard_state_dict()
    sharded.step(grads())
    sharded.load_shard_state_dict(mine)
    again = sharded.shard_state_dict()
    assert again.keys() == mine.keys() and sharded.step_count == 3
    assert all(np.array_equal(np.asarray(again[k]), np.asarray(v)) for k, v in mine.items())


def check_cupy_params_match_one_process() -> None:
    """CuPy params (grads and slices staged through host memory): bit for bit the
    single-process cupy optimizer stepped with the average."""
    import cupy as cp

    ours = [cp.asarray(a) for a in params_like(3, np.float32)]
    ref = [cp.asarray(a) for a in params_like(3, np.float32)]
    sharded = ShardedOptimizer(fastopt.Adam, ours, lr=0.01, weight_decay=0.01)
    single = fastopt.Adam(ref, lr=0.01, weight_decay=0.01)
    rng = np.random.default_rng(5 + COMM.rank)
    for _ in range(3):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        sharded.step([cp.asarray(g) for g in grads])
        single.step([cp.asarray(g) for g in averaged(grads)])
    for a, b in zip(ours, ref):
        assert cp.array_equal(a, b)


def raises_everywhere(run, words: str) -> None:
    """run() raises on every rank (none hangs: mpiexec's timeout would fail the test)."""
    try:
        run()
    except (ValueError, TypeError, RuntimeError) as exc:
        assert words in str(exc) or "rank" in str(exc), exc
    else:
        raise AssertionError(f"no error ({words})")


def raises_named(run, words: str) -> None:
    """run() raises on every rank, with ``words`` in the message (no rank's own words)."""
    try:
        run()
    except (ValueError, TypeError, RuntimeError, AttributeError) as exc:
        assert words in str(exc), exc
    else:
        raise AssertionError(f"no error ({words})")


def check_params_and_state_follow_the_user() -> None:
    """Params changed between steps are stepped from their new values; ranks start from
    rank 0's params; per-group state (momentum in one group only) is gathered and loaded."""
    a = np.full(5, float(COMM.rank))                 # different on each rank: rank 0's win
    b = np.zeros(3)
    groups = [{"params": [a], "momentum": 0.0}, {"params": [b], "momentum": 0.9}]
    opt = ShardedOptimizer(fastopt.SGD, groups, lr=0.1)
    assert (a == 0).all()
    ref_a, ref_b = a.copy(), b.copy()
    single = fastopt.SGD([{"params": [ref_a], "momentum": 0.0},
                          {"params": [ref_b], "momentum": 0.9}], lr=0.1)
    for k in range(3):
        grads = [np.full(5, 1.0 + COMM.rank), np.full(3, 2.0 - COMM.rank)]
        opt.step(grads)
        single.step(averaged(grads))
        if k == 1:                                   # the user loads new weights
            a[...] = 100.0
            ref_a[...] = 100.0
    assert np.array_equal(a, ref_a) and np.array_equal(b, ref_b)
    sd = opt.state_dict()
    if COMM.rank == 0:
        expected = single.state_dict()
        assert sd.keys() == expected.keys(), set(sd) ^ set(expected)
        assert all(np.array_equal(np.asarray(sd[k]), np.asarray(v)) for k, v in expected.items())
    opt.load_state_dict(sd)


def check_user_errors_raise_on_every_rank() -> None:
    last = COMM.size - 1
    read_only = np.zeros(4)
    if COMM.rank == last:
        read_only.flags.writeable = False
    raises_everywhere(lambda: ShardedOptimizer(fastopt.SGD, [read_only], lr=0.1), "writeable")
    raises_everywhere(lambda: ShardedOptimizer(fastopt.SGD, np.zeros(4),
                                               lr=0.1 if COMM.rank else 0.2), "hyperparameters")
    shared = np.zeros(6)
    raises_everywhere(lambda: ShardedOptimizer(fastopt.SGD, [shared, shared[2:]], lr=0.1),
                      "share memory")
    opt = ShardedOptimizer(fastopt.Adam, [{"params": [np.zeros(3)]},
                                          {"params": [np.zeros(2), np.zeros(2)]}], lr=0.1)
    other = fastopt.Adam([{"params": [np.zeros(3), np.zeros(2)]}, {"params": [np.zeros(2)]}],
                         lr=0.1).state_dict()
    raises_everywhere(lambda: opt.load_state_dict(other if COMM.rank == 0 else None),
                      "holds params")
    raises_everywhere(lambda: opt.load_state_dict(
        {**opt.inner.state_dict(), "n_params": 3} if COMM.rank == 0 else None), "params")
    if COMM.rank == last:
        opt.param_groups[0]["lr"] = -1.0
    raises_everywhere(opt.state_dict, "lr")


def check_state_is_sharded() -> None:
    n = 1_000_003
    sharded = ShardedOptimizer(fastopt.Adam, np.zeros(n, np.float32), lr=0.1)
    shard = -(-n // COMM.size)
    assert sharded.state_bytes == 2 * shard * 4, sharded.state_bytes


def check_mismatched_shapes_raise_on_every_rank() -> None:
    shapes = [(4,), (3,)] if COMM.rank == 0 else [(4,), (2,)]
    try:
        ShardedOptimizer(fastopt.SGD, [np.zeros(s) for s in shapes], lr=0.1)
    except ValueError as exc:
        assert "every rank must pass the same shapes" in str(exc), exc
    else:
        raise AssertionError("no error")


def check_a_rank_failing_in_step_raises_on_every_rank() -> None:
    opt = ShardedOptimizer(fastopt.SGD, [np.zeros(4), np.zeros(3)], lr=0.1)
    bad = [np.zeros(4), np.zeros(2 if COMM.rank == COMM.size - 1 else 3)]
    try:
        opt.step(bad)
    except (ValueError, RuntimeError) as exc:
        assert "grads[1]" in str(exc) or f"rank {COMM.size - 1}" in str(exc), exc
    else:
        raise AssertionError("no error")
    opt.step([np.ones(4), np.ones(3)])               # the optimizer still works after it
    assert opt.step_count == 1
    # a bad live change on one rank only: every rank raises, nothing moves anywhere
    before = [p.copy() for p in opt.params]
    if COMM.rank == COMM.size - 1:
        opt.param_groups[0]["lr"] = -1.0
    try:
        opt.step([np.ones(4), np.ones(3)])
    except (ValueError, RuntimeError) as exc:
        assert "lr" in str(exc) or f"rank {COMM.size - 1}" in str(exc), exc
    else:
        raise AssertionError("no error")
    assert opt.step_count == 1
    assert all(np.array_equal(a, b) for a, b in zip(opt.params, before))


def check_ranks_stepping_with_other_hyperparameters_raise_everywhere() -> None:
    """A live lr change on one rank only, and schedules that differ across ranks, are
    refused on every rank before anything moves (the scalars each rank is about to use are
    compared at every step); a removed state key is named by the user's param index."""
    last = COMM.size - 1
    opt = ShardedOptimizer(fastopt.Adam, [np.zeros(4), np.zeros(3)], lr=0.1)
    opt.step([np.ones(4), np.ones(3)])
    before = [p.copy() for p in opt.params], opt.inner.state_dict()
    if COMM.rank == last:
        opt.param_groups[0]["lr"] = 0.2
    raises_named(lambda: opt.step([np.ones(4), np.ones(3)]),
                 f"rank {last} has param_groups[0]['lr'] = 0.2, rank 0 0.1")
    assert opt.step_count == 1
    assert all(np.array_equal(a, b) for a, b in zip(opt.params, before[0]))
    assert all(np.array_equal(np.asarray(v), np.asarray(before[1][k]))
               for k, v in opt.inner.state_dict().items() if k != "groups.0.lr")
    opt.param_groups[0]["lr"] = 0.1
    opt.step([np.ones(4), np.ones(3)])
    assert opt.step_count == 2
    schedule = (lambda t: 0.1) if COMM.rank == 0 else (lambda t: 0.1 / t)
    scheduled = ShardedOptimizer(fastopt.SGD, [np.zeros(5)], lr=schedule)
    scheduled.step([np.ones(5)])                     # step 1: both schedules give 0.1
    raises_named(lambda: scheduled.step([np.ones(5)]),
                 "the lr of param_groups[0] at step 2 (its step scalars)")
    assert scheduled.step_count == 1
    # a lambda schedule does not pickle: rank 0 sends the rest, each rank keeps its own
    decay = ShardedOptimizer(fastopt.SGD, [np.zeros(5)], lr=lambda t: 0.1 / t)
    alone = fastopt.SGD(np.zeros(5), lr=lambda t: 0.1 / t)
    for _ in range(2):
        decay.step([np.ones(5)])
        alone.step(np.ones(5))
    decay.load_state_dict(decay.state_dict())
    assert decay.step_count == 2 and callable(decay.param_groups[0]["lr"])
    decay.step([np.ones(5)])
    alone.step(np.ones(5))
    assert np.array_equal(decay.params[0], alone.params)
    grouped = ShardedOptimizer(fastopt.Adam, [{"params": [np.zeros(4), np.zeros(3)]},
                                              {"params": [np.zeros(2)]}], lr=0.1)
    sd = grouped.state_dict()
    if COMM.rank == 0:
        del sd["2.m"]                                # param 2 is the second group's segment 1
    raises_everywhere(lambda: grouped.load_state_dict(sd), "'2.m'")


def check_one_rank_faults_raise_everywhere_and_change_nothing() -> None:
    """Found by the second hostile hunt: a param re-typed or made read-only on one rank, a
    KeyboardInterrupt in one rank's schedule and a flag changed on one rank raise on every
    rank with nothing stepped; a failed constructor leaves every rank's params as given."""
    last = COMM.size - 1
    w = np.full(4, float(COMM.rank))
    raises_everywhere(lambda: ShardedOptimizer(fastopt.Adam, [w], lr=-1.0), "lr")
    assert (w == COMM.rank).all(), w
    for fault in ("retyped", "read-only", "flag"):
        ps = [np.zeros((5, 3)), np.zeros(4)]
        opt = ShardedOptimizer(fastopt.SGD, ps, lr=0.1, momentum=0.9)
        opt.step([np.ones((5, 3)), np.ones(4)])
        before = [p.copy() for p in ps]
        if COMM.rank == last:
            if fault == "retyped":
                ps[0].dtype = np.float32
            elif fault == "read-only":
                ps[1].flags.writeable = False
            else:
                opt.param_groups[0]["nesterov"] = True
        raises_everywhere(lambda: opt.step([np.ones(p.shape, p.dtype) for p in ps]),
                          {"retyped": "changed in place", "read-only": "read-only",
                           "flag": "param_groups[0]['nesterov'] = True"}[fault])
        assert opt.step_count == 1
        assert all(np.array_equal(a.view(b.dtype).reshape(b.shape), b)
                   for a, b in zip(ps, before))

    def lr(t):
        if COMM.rank == last and t == 2:
            raise KeyboardInterrupt
        return 0.01
    scheduled = ShardedOptimizer(fastopt.SGD, [np.zeros(4)], lr=lr)
    scheduled.step([np.ones(4)])
    try:
        scheduled.step([np.ones(4)])
    except KeyboardInterrupt:
        assert COMM.rank == last
    except RuntimeError as exc:
        assert COMM.rank != last and f"rank {last} failed" in str(exc), exc
    else:
        raise AssertionError("no error")
    assert scheduled.step_count == 1
    shard_opt = ShardedOptimizer(fastopt.Adam, [np.zeros(6)], lr=0.1)
    shard_opt.step([np.ones(6)])
    shard = shard_opt.shard_state_dict()
    shard_opt.step([np.ones(6)])
    if COMM.rank == last:
        shard["0.m"] = shard["0.m"][:-1]             # this rank's shard does not fit
    raises_everywhere(lambda: shard_opt.load_shard_state_dict(shard), "0.m")
    assert shard_opt.step_count == 2                 # on every rank: none loaded



def check_third_hunt_faults_are_named_and_change_nothing() -> None:
    """A flag switched on one rank is refused with every rank's state as it was (that rank
    had dropped its state); differences are named by the user's keys (not the kernels'
    scalars); equal values of other types agree; opt.lr = x, a diverged state_dict, a
    diverged shard, another rule's dict and dict grads are refused by name."""
    last = COMM.size - 1
    p = np.zeros(5)
    opt = ShardedOptimizer(fastopt.Adam, [p], lr=0.1, amsgrad=True)
    opt.step([np.ones(5)])
    before = p.copy(), opt.inner.state_dict()
    if COMM.rank == last:
        opt.param_groups[0]["amsgrad"] = False
    raises_named(lambda: opt.step([np.ones(5)]), f"rank {last} has param_groups[0]['amsgrad']"
                                                 " = False, rank 0 True")
    opt.param_groups[0]["amsgrad"] = True
    assert np.array_equal(p, before[0]) and opt.step_count == 1
    assert all(np.array_equal(np.asarray(v), np.asarray(before[1][k]))
               for k, v in opt.inner.state_dict().items())
    opt.step([np.ones(5)])                           # every rank goes on
    assert opt.step_count == 2
    sgd = ShardedOptimizer(fastopt.SGD, [np.zeros(3)], lr=0.1, momentum=0.9)
    if COMM.rank == last:
        sgd.param_groups[0]["dampening"] = 0.5
    raises_named(lambda: sgd.step([np.ones(3)]), "param_groups[0]['dampening'] = 0.5, rank 0 0.0")
    sgd.param_groups[0]["dampening"] = 0.0
    raises_named(lambda: setattr(sgd, "lr", 0.5), "no settable attribute 'lr'")
    lr = np.float64(0.1) if COMM.rank == 0 else 0.1
    same = ShardedOptimizer(fastopt.SGD, [np.zeros(3)], lr=lr, momentum=1 if COMM.rank else 1.0)
    same.step([np.ones(3)])
    if COMM.rank == last:
        same.param_groups[0]["lr"] = 0.2
    raises_named(same.state_dict, f"rank {last} has groups.0.lr = 0.2, rank 0 0.1")
    same.param_groups[0]["lr"] = 0.1
    shard = same.shard_state_dict()
    if COMM.rank == last:
        shard["groups.0.lr"] = 0.3
    raises_named(lambda: same.load_shard_state_dict(shard), "groups.0.lr = 0.3, rank 0 0.1")
    assert same.param_groups[0]["lr"] == 0.1
    adamax = ShardedOptimizer(fastopt.Adamax, [np.zeros(3)], lr=0.1).state_dict()
    raises_named(lambda: opt.load_state_dict(adamax), "the state_dict is 'Adamax''s, this "
                                                      "optimizer 'Adam''s")
    raises_named(lambda: opt.step({"w": np.ones(5)}), "grads must be a list of arrays like "
                                                      "params, got dict")
    shard = opt.shard_state_dict()
    if COMM.rank == last:
        del shard["world"]
    raises_everywhere(lambda: opt.load_shard_state_dict(shard), "no 'world' and 'rank'")


if __name__ == "__main__":
    globals()[f"check_{sys.argv[1]}"]()
    COMM.Barrier()
    if COMM.rank == 0:
        print(f"ok {sys.argv[1]} on {COMM.size} ranks")
