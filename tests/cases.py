"""The one table of (rule, hyperparameters) cases every parity test runs.

tests/test_registry.py fails when a registered rule has no case here, or when a case list
leaves one of a rule's compile-time flags untried.
"""
from __future__ import annotations

import pytest

from fastopt.kernels import RULES

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1,
                     eps=1e-8)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.01)),
    ("Nadam", dict(lr=0.01)),
    ("Nadam", dict(lr=0.01, momentum_decay=0.01, weight_decay=0.01)),
    ("Nadam", dict(lr=0.01, momentum_decay=None)),
    ("Lion", dict(lr=0.01)),
    ("Lion", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)),
]

RULE_NAMES = list(RULES)


def case_id(case) -> str:
    rule, hp = case
    return rule + "".join(f"-{k}={v}" for k, v in hp.items() if k != "lr")


def parametrize_cases():
    return pytest.mark.parametrize("rule,hp", CASES, ids=[case_id(c) for c in CASES])
