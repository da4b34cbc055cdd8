"""fastopt.torch under FSDP2, DDP and ZeroRedundancyOptimizer: tests/torch_distributed_checks.py
on two gloo ranks (CPU)."""
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("needs torch.distributed with gloo", allow_module_level=True)

SCRIPT = Path(__file__).with_name("torch_distributed_checks.py")


def test_fsdp2_ddp_and_zero_redundancy_step_with_fastopts_kernels():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import torch_distributed_checks as checks
    finally:
        sys.path.pop(0)
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for check in checks.CHECKS:
        for rank in (0, 1):
            assert f"ok {check.__name__} (rank {rank})" in run.stdout, run.stdout + run.stderr
