"""fastopt.distributed in real multi-process runs: ``mpiexec -n 2`` and ``-n 3`` (uneven
shards, padding) on the checks in tests/distributed_checks.py, each with a timeout so a
hang fails instead of stalling the suite."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
CHECKS = ["every_rule_matches_one_process", "live_hyperparameters_and_schedules",
          "checkpoints_cross_world_sizes", "state_is_sharded",
          "mismatched_shapes_raise_on_every_rank",
          "a_rank_failing_in_step_raises_on_every_rank", "params_and_state_follow_the_user",
          "user_errors_raise_on_every_rank",
          "ranks_stepping_with_other_hyperparameters_raise_everywhere",
          "one_rank_faults_raise_everywhere_and_change_nothing",
          "third_hunt_faults_are_named_and_change_nothing",
          "max_grad_norm_is_the_norm_over_every_rank"]
TIMEOUT = 300


def mpiexec() -> list[str]:
    """The launcher of the MPI mpi4py was built against (the venv's own first), with Open
    MPI's flags for running as root and on more ranks than cores."""
    pytest.importorskip("mpi4py")
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or \
        shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec")
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    return [found, "--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version \
        else [found]


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("check", CHECKS)
def test_check_under_mpiexec(check, ranks):
    command = [*mpiexec(), "-n", str(ranks), sys.executable,
               str(HERE / "distributed_checks.py"), check]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{check} on {ranks} ranks hung for {TIMEOUT} s")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"ok {check} on {ranks} ranks" in out.stdout


@pytest.mark.gpu
def test_cupy_params_under_mpiexec():
    import fastopt

    if "cupy" not in fastopt.available_backends():
        pytest.skip("needs cupy and a CUDA device")
    test_check_under_mpiexec("cupy_params_match_one_process", 2)


def test_one_process_is_a_world_of_one():
    """Without mpiexec, COMM_WORLD has one rank: the sharded optimizer is the plain one."""
    pytest.importorskip("mpi4py")
    import fastopt
    from fastopt.distributed import ShardedOptimizer

    a, b = np.linspace(-1, 1, 11), np.linspace(-1, 1, 11)
    sharded, single = ShardedOptimizer(fastopt.Adam, a, lr=0.1), fastopt.Adam(b, lr=0.1)
    for k in range(3):
        g = np.sin(a * (k + 1))
        sharded.step(g)
        single.step(g.copy())
    assert np.array_equal(a, b) and sharded.step_count == 3


def test_rules_reading_whole_params_are_refused_by_name():
    pytest.importorskip("mpi4py")
    import fastopt
    from fastopt.distributed import ShardedOptimizer

    for rule in (fastopt.Lamb, fastopt.LARS, fastopt.Adafactor):
        with pytest.raises(NotImplementedError, match=f"{rule.__name__} reads whole params"):
            ShardedOptimizer(rule, np.zeros((3, 3)))


def test_rule_must_be_an_optimizer_class():
    pytest.importorskip("mpi4py")
    from fastopt.distributed import ShardedOptimizer

    with pytest.raises(TypeError, match="rule must be a fastopt optimizer class"):
        ShardedOptimizer("Adam", np.zeros(3))


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    import builtins

    from fastopt import distributed

    real_import = builtins.__import__

    def no_mpi(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise ImportError("No module named 'mpi4py'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_mpi)
    with pytest.raises(ImportError, match=r"pip install 'fastopt\[mpi\]'"):
        distributed.ShardedOptimizer(__import__("fastopt").SGD, np.zeros(3), lr=0.1)
