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
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, maximize=True)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01, maximize=True)),
    ("Adadelta", dict(weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01, maximize=True)),
    ("Adamax", dict(lr=0.01, weight_decay=0.01, maximize=True)),
    ("Nadam", dict(lr=0.01, weight_decay=0.01, maximize=True)),
    ("Nadam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Lion", dict(lr=0.01)),
    ("Lion", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.01, maximize=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2), maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=10, weight_decay=0.01, maximize=True)),
    ("AdEMAMix", dict(lr=0.01)),
    ("AdEMAMix", dict(lr=0.01, betas=(0.8, 0.99, 0.999), alpha=3.0, t_alpha=20, t_beta3=20,
                      weight_decay=0.0)),
    ("AdamWScheduleFree", dict(lr=0.01)),
    ("AdamWScheduleFree", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, warmup_steps=5,
                               r=0.5, weight_lr_power=1.0)),
    ("Lamb", dict(lr=0.01)),
    ("Lamb", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, clamp=2.0, maximize=True)),
    ("LARS", dict(lr=1.0)),
    ("LARS", dict(lr=1.0, weight_decay=0.01, momentum=0.9, nesterov=True, maximize=True)),
    ("LARS", dict(lr=0.5, momentum=0.0, weight_decay=0.1, trust_coefficient=0.01)),
    ("LARS", dict(lr=0.5, momentum=0.5, dampening=0.3)),
    ("Adafactor", dict(lr=0.01)),
    ("Adafactor", dict(lr=0.01, beta2_decay=-0.5, eps=(1e-30, 1e-3), d=1.5, weight_decay=0.1,
                       maximize=True)),
    ("Adafactor", dict(lr=0.05, eps=(0.0, 0.0), beta2_decay=0.0)),
]
# The rules that take matrices only (Muon): the tests above run on vectors and leave them
# out; tests/test_muon.py runs these on matrices.
MATRIX_CASES = [
    ("Muon", dict(lr=0.02)),
    ("Muon", dict(lr=0.02, weight_decay=0.0, momentum=0.8, nesterov=False, ns_steps=3,
                  adjust_lr_fn="match_rms_adamw")),
    ("Muon", dict(lr=0.02, ns_coefficients=(3.0, -3.2, 1.2), eps=1e-3,
                  adjust_lr_fn="original")),
]
ALL_CASES = CASES + MATRIX_CASES
MATRICES_ONLY = [name for name, rule in RULES.items() if not rule.takes_any_shape]

RULE_NAMES = list(RULES)
# the rules whose params may be 16-bit and state narrower (a PerTensor or whole-param
# rule's may not, yet)
STORED_NARROW = [name for name, rule in RULES.items() if not rule.passes]

# The public contract, written out: each class's keywords in positional order with their
# defaults and kinds (PyTorch's names, order and defaults; release 0.1.0's classes, then
# the rules added since). tests/test_registry.py checks the registry against it, so a
# swapped keyword, a changed default or a changed kind fails even where every test that
# passes keywords by name still passes.
UNIT, CLOSED, NONNEG = "unit_interval", "unit_interval_closed", "nonnegative"
SIGNATURES_0_1_0 = {
    "SGD": [("lr", 1e-3, "lr"), ("momentum", 0.0, NONNEG), ("dampening", 0.0, CLOSED),
            ("weight_decay", 0.0, NONNEG), ("nesterov", False, "flag")],
    "Adagrad": [("lr", 1e-2, "lr"), ("lr_decay", 0.0, NONNEG), ("weight_decay", 0.0, NONNEG),
                ("initial_accumulator_value", 0.0, NONNEG), ("eps", 1e-10, NONNEG)],
    "RMSprop": [("lr", 1e-2, "lr"), ("alpha", 0.99, CLOSED), ("eps", 1e-8, NONNEG),
                ("weight_decay", 0.0, NONNEG), ("momentum", 0.0, NONNEG),
                ("centered", False, "flag")],
    "Adadelta": [("lr", 1.0, "lr"), ("rho", 0.9, CLOSED), ("eps", 1e-6, NONNEG),
                 ("weight_decay", 0.0, NONNEG)],
    "Adam": [("lr", 1e-3, "lr"), ("betas", (0.9, 0.999), "betas"), ("eps", 1e-8, NONNEG),
             ("weight_decay", 0.0, NONNEG), ("amsgrad", False, "flag")],
    "AdamW": [("lr", 1e-3, "lr"), ("betas", (0.9, 0.999), "betas"), ("eps", 1e-8, NONNEG),
              ("weight_decay", 1e-2, NONNEG), ("amsgrad", False, "flag")],
    "Adamax": [("lr", 2e-3, "lr"), ("betas", (0.9, 0.999), "betas"), ("eps", 1e-8, NONNEG),
               ("weight_decay", 0.0, NONNEG)],
    "Nadam": [("lr", 2e-3, "lr"), ("betas", (0.9, 0.999), "betas"), ("eps", 1e-8, NONNEG),
              ("weight_decay", 0.0, NONNEG), ("momentum_decay", 4e-3, "optional_nonnegative")],
}
# torch's keywords added since, after 0.1.0's (so positional calls keep their meaning)
MAXIMIZE, DECOUPLED = ("maximize", False, "flag"), ("decoupled_weight_decay", False, "flag")
SIGNATURES = {
    **{rule: keywords + [MAXIMIZE] for rule, keywords in SIGNATURES_0_1_0.items()},
    "Adam": SIGNATURES_0_1_0["Adam"] + [MAXIMIZE, DECOUPLED],
    "Nadam": SIGNATURES_0_1_0["Nadam"] + [DECOUPLED, MAXIMIZE],
    "Lion": [("lr", 1e-4, "lr"), ("betas", (0.9, 0.99), "betas"), ("weight_decay", 0.0, NONNEG)],
    "RAdam": [("lr", 1e-3, "lr"), ("betas", (0.9, 0.999), "betas"), ("eps", 1e-8, NONNEG),
              ("weight_decay", 0.0, NONNEG), DECOUPLED, MAXIMIZE],
    "Rprop": [("lr", 1e-2, "lr"), ("etas", (0.5, 1.2), "etas"),
              ("step_sizes", (1e-6, 50.0), "step_sizes"), MAXIMIZE],
    "ASGD": [("lr", 1e-2, "lr"), ("lambd", 1e-4, NONNEG), ("alpha", 0.75, NONNEG),
             ("t0", 1e6, NONNEG), ("weight_decay", 0.0, NONNEG), MAXIMIZE],
    "AdEMAMix": [("lr", 1e-3, "lr"), ("betas", (0.9, 0.999, 0.9999), "betas3"),
                 ("alpha", 5.0, NONNEG), ("t_alpha", None, "optional_nonnegative"),
                 ("t_beta3", None, "optional_nonnegative"), ("eps", 1e-8, NONNEG),
                 ("weight_decay", 1e-2, NONNEG)],
    "AdamWScheduleFree": [("lr", 2.5e-3, "lr"), ("betas", (0.9, 0.999), "betas"),
                          ("eps", 1e-8, NONNEG), ("weight_decay", 0.0, NONNEG),
                          ("warmup_steps", 0, NONNEG), ("r", 0.0, NONNEG),
                          ("weight_lr_power", 2.0, NONNEG)],
    # pytorch-optimizer's keywords (torch has neither)
    "Lamb": [("lr", 1e-3, "lr"), ("betas", (0.9, 0.999), "betas"),
             ("weight_decay", 0.0, NONNEG), ("eps", 1e-6, NONNEG), ("clamp", 10.0, NONNEG),
             MAXIMIZE],
    "LARS": [("lr", 1e-3, "lr"), ("weight_decay", 0.0, NONNEG), ("momentum", 0.9, NONNEG),
             ("dampening", 0.0, CLOSED), ("trust_coefficient", 1e-3, NONNEG),
             ("nesterov", False, "flag"), MAXIMIZE],
    "Adafactor": [("lr", 1e-2, "lr"), ("beta2_decay", -0.8, "nonpositive"),
                  ("eps", (None, 1e-3), "eps_pair"), ("d", 1.0, "at_least_one"),
                  ("weight_decay", 0.0, NONNEG), MAXIMIZE],
    "Muon": [("lr", 1e-3, "lr"), ("weight_decay", 0.1, NONNEG), ("momentum", 0.95, NONNEG),
             ("nesterov", True, "flag"),
             ("ns_coefficients", (3.4445, -4.7750, 2.0315), "triple"), ("eps", 1e-7, NONNEG),
             ("ns_steps", 5, "iterations"), ("adjust_lr_fn", None, "choice")],
}


def case_id(case) -> str:
    rule, hp = case
    return rule + "".join(f"-{k}={v}" for k, v in hp.items() if k != "lr")


def parametrize_cases():
    return pytest.mark.parametrize("rule,hp", CASES, ids=[case_id(c) for c in CASES])
