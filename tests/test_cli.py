"""``python -m fastopt`` works out of the box."""
import subprocess
import sys

import pytest

from fastopt import cli


def test_demo_prints_a_row_per_problem_rule_and_backend(capsys):
    assert cli.main(["--steps", "30", "--rules", "Adam", "SGD", "--backends", "numpy"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.split()[:1] in
            (["rosenbrock"], ["quadratic"], ["logistic"])]
    assert len(rows) == 3 * 2
    assert all(row.split()[2] == "numpy" and row.split()[4] == "30" for row in rows)
    losses = [float(row.split()[3]) for row in rows]
    assert all(loss == loss for loss in losses)          # no NaN


def test_module_entry_point_runs_info():
    out = subprocess.run([sys.executable, "-m", "fastopt", "info"], capture_output=True,
                         text=True, check=True).stdout
    assert "fastopt" in out and "backends available: numpy" in out


def test_unavailable_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--backends", "nope"])
    assert exc.value.code == 2
    assert "not available here" in capsys.readouterr().err
