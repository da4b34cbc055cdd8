"""Training with fewer bytes a param still trains: the digits MLP in torch with AdamW,
8-bit state and bfloat16 params, against the same run in float32 (benchmarks/quality.py;
benchmarks/quick/test_quick_quality.py measures every rule and mode)."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("ml_dtypes")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.quality import digits_run  # noqa: E402


@pytest.mark.parametrize("mode", ["int8 state", "bfloat16 params, int8 state, stochastic"])
def test_digits_mlp_trains_as_well_as_in_float32(mode):
    base, ours = digits_run("AdamW", "float32"), digits_run("AdamW", mode)
    assert base["accuracy"] > 95
    assert ours["accuracy"] >= base["accuracy"] - 0.6        # two test images of 360
    assert ours["loss"] <= 1.1 * base["loss"]
