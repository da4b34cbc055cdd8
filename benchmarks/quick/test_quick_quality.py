"""Training quality with fewer bytes a param, per rule: the digits MLP's test accuracy
and loss, and a character model's held-out loss, in each precision mode against float32
(same seeds and batches; benchmarks/quality.py). The goal: within 0.5 points of float32's
accuracy and 2% of its loss. The row "float32, another seed" is the yardstick: how far
float32 itself moves with another seed (the digits' test loss, 360 images, moves by 10%
and more).

    pytest benchmarks/quick/test_quick_quality.py --benchmark-only

The time is the runs' (all modes of one rule), not a figure to compare.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from test_quick_rules import needs  # noqa: E402 (this folder is on sys.path)

NOISE = "float32, another seed"
RULE_NAMES = ["Adam", "AdamW", "Nadam", "Adamax", "RMSprop", "Adagrad", "Adadelta", "SGD",
              "Lion"]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_training_quality(benchmark, figures, rule, smoke):
    needs("numba")
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("ml_dtypes")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))    # the repository
    from benchmarks.quality import MODES, charlm_run, digits_run

    if smoke and rule != RULE_NAMES[0]:
        pytest.skip("--smoke: one rule")
    epochs, steps, held = (1, 20, 500) if smoke else (20, 1500, 0)
    runs = {}

    def train():
        for mode in MODES:
            runs[mode] = (digits_run(rule, mode, epochs),
                          charlm_run(rule, mode, steps, held=held))
        runs[NOISE] = (digits_run(rule, "float32", epochs, seed=1),      # the yardstick:
                       charlm_run(rule, "float32", steps, seed=1, held=held))  # reseeded
    benchmark.group = "training quality"
    benchmark.pedantic(train, rounds=1, iterations=1)
    base_digits, base_lm = runs["float32"]
    for mode, (digits, lm) in runs.items():
        if mode == "float32":
            continue
        points = digits["accuracy"] - base_digits["accuracy"]
        loss = digits["loss"] / base_digits["loss"] - 1
        lm_loss = lm["loss"] / base_lm["loss"] - 1
        figures("training quality against float32: digits MLP, character model",
                lambda: dict(rule=rule, mode=mode, accuracy=digits["accuracy"],
                             points=points, digits_loss=loss * 100, lm_loss=lm_loss * 100,
                             goal="" if mode == NOISE else "met" if points >= -0.5 and
                             loss <= 0.02 and lm_loss <= 0.02 else "missed"))
