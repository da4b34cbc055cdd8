"""The benchmarks stay runnable: asv discovers them, and each benchmark's setup and bodies
run once at the smallest size (a broken benchmark fails here, quickly); the bench command
prints its table and draws its plot."""
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fastopt
from fastopt import cli

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import (bench_buckets, bench_clipping, bench_lbfgs,  # noqa: E402
                        bench_methods, bench_precision, bench_rules, bench_torch,
                        bench_whole)


def test_asv_discovers_every_benchmark():
    pytest.importorskip("asv")
    out = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout + out.stderr


def test_asv_own_environment_imports_every_benchmark_module():
    """asv's discovery, with every module that asv.conf.json's environment does not install
    made unimportable (mpi4py, scipy, matplotlib, ...): every bench_* module gives benchmarks."""
    pytest.importorskip("asv")
    from benchmarks import regression_check

    found = {b["name"].split(".")[0] for b in regression_check.discover_in_asv_environment()}
    assert found == {path.stem for path in (ROOT / "benchmarks").glob("bench_*.py")}


def test_asv_environment_check_names_a_module_level_import_it_lacks(tmp_path):
    pytest.importorskip("asv")
    pytest.importorskip("mpi4py")
    from benchmarks import regression_check

    conf = json.loads((ROOT / "asv.conf.json").read_text())
    lacks = regression_check.modules_asv_lacks(conf)
    assert "mpi4py" in lacks and {"numpy", "numba", "torch"}.isdisjoint(lacks)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "__init__.py").write_text("")
    (suite / "bench_mpi.py").write_text("from mpi4py import MPI\n\ndef time_x():\n    pass\n")
    with pytest.raises(regression_check.CheckFailed, match="No module named 'mpi4py'"):
        regression_check.discover_in_asv_environment(suite)


def test_mpi_benchmark_runs_under_mpiexec():
    from test_distributed import mpiexec

    out = subprocess.run([*mpiexec(), "-n", "2", sys.executable,
                          str(ROOT / "benchmarks" / "mpi" / "zero_mpi.py"), "--n", "1e4",
                          "--steps", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "fastopt ShardedOptimizer" in out.stdout and "fastopt/torch" in out.stdout


def smallest_params(cls):
    """cls.params cut to every backend and minimize method with the first rule and the
    smallest size (the benchmark bodies are the same for every rule)."""
    import itertools

    params = cls.params if isinstance(cls.params, tuple) else (cls.params,)
    cut = [p if name in ("backend", "method") else [min(p)] if name == "n" else p[:1]
           for name, p in zip(cls.param_names, params)]
    return list(itertools.product(*cut))


@pytest.mark.parametrize("cls", [bench_rules.RuleStep, bench_rules.RuleStepFloat64,
                                 bench_rules.RuleStepGPU, bench_buckets.ManyArrays,
                                 bench_lbfgs.TwoLoop, bench_lbfgs.Minimize,
                                 bench_methods.CGIteration, bench_methods.NewtonCGInnerStep,
                                 bench_methods.BFGSUpdate, bench_methods.SmallMinimize,
                                 bench_torch.TorchStep, bench_torch.TorchRatio,
                                 bench_precision.PrecisionStep, bench_clipping.ClipStep,
                                 bench_whole.WholeStep, bench_whole.WholeTorchRatio])
def test_benchmarks_run_once_at_the_smallest_size(cls, monkeypatch):
    import fastopt._bench

    monkeypatch.setattr(fastopt._bench, "seconds_per_call",
                        lambda fn, *a, sync=lambda: None, **k: (fn(), sync(), 1e-3)[2])
    ran = 0
    for params in smallest_params(cls):
        bench = cls()
        try:
            bench.setup(*params)
        except NotImplementedError:
            continue
        for name, method in inspect.getmembers(bench, inspect.ismethod):
            if name.startswith(("time_", "track_")):
                value = method(*params)
                assert name.startswith("time_") or value > 0, (name, params, value)
                ran += 1
    if cls is not bench_rules.RuleStepGPU or "cupy" in fastopt.available_backends():
        assert ran > 0


def test_bench_command_prints_the_table_and_plots(tmp_path, capsys):
    png = tmp_path / "bench.png"
    rows = cli.bench(["Adam", "SGD"], ["numpy"], [1000, 5000], ["float32"], 0.01, str(png))
    out = capsys.readouterr().out
    assert len(rows) == 4 and all(r["gbps"] > 0 and r["speedup"] > 0 for r in rows)
    assert "% copy" in out and out.count("Adam") == 2
    pytest.importorskip("matplotlib")
    assert png.stat().st_size > 1000


def test_bench_command_line(capsys):
    assert cli.main(["bench", "--rules", "Nadam", "--backends", "numpy", "--sizes", "1e3",
                     "--min-time", "0.01"]) == 0
    assert "Nadam" in capsys.readouterr().out


def test_quick_benchmarks_run_once():
    """The pytest-benchmark suite (benchmarks/quick, not collected by the default run):
    every benchmark once at a small size, untimed."""
    pytest.importorskip("pytest_benchmark")
    out = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/quick", "--smoke",
                          "--benchmark-disable", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout and " failed" not in out.stdout


def test_regression_check_slows_any_rule_module_and_keeps_it_valid():
    """The self-test's slowed commit is valid Python for every rule module, with one more
    division per store to p (the script itself runs asv: a procedure, not a test)."""
    import ast

    from benchmarks import regression_check

    from fastopt.kernels import REGISTRY

    modules = {rule.reference.__module__.rsplit(".", 1)[-1] for rule in REGISTRY
               if rule.whole is None}       # (a whole-param rule has no element loop)
    for path in sorted(ROOT / "kernels" / f"{name}.py" for name in modules):
        source = path.read_text()
        slowed = regression_check.slowed_element(source)
        ast.parse(slowed)
        assert slowed.count("slow_x / slow_x") == source.count("p[i] = ") >= 1, path.name


def test_regression_check_compares_in_a_fresh_results_folder(tmp_path):
    import json

    from benchmarks import regression_check

    conf = json.loads(regression_check.fresh_config(tmp_path).read_text())
    assert conf["results_dir"] == str(tmp_path / "results")
    assert conf["repo"] == str(ROOT) and conf["env_dir"].startswith(str(ROOT))
