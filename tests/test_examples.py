"""The examples run as a user would run them."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_torch_adamw_example_trains():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, str(EXAMPLES / "torch_adamw.py")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    losses = [float(line.split()[3]) for line in out.stdout.splitlines()
              if line.startswith("step")]
    assert losses[-1] < losses[0] / 5, out.stdout


def test_zero_mpi_example_trains_on_two_ranks():
    from test_distributed import mpiexec

    out = subprocess.run([*mpiexec(), "-n", "2", sys.executable, str(EXAMPLES / "zero_mpi.py")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    losses = [float(line.split()[3]) for line in out.stdout.splitlines()
              if line.startswith("step")]
    assert losses[-1] < losses[0] * 1e-6, out.stdout
