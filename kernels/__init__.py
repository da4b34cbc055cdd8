"""fastopt's kernels: one module per update rule, each the single description of its rule
(hyperparameters, state, host scalars, NumPy reference, Numba element body, CUDA body);
installed as ``fastopt.kernels``. The registry below is the one list of rules: the
optimizer classes, the command line, the benchmarks and the test tables derive from it.
"""
from . import (adadelta, adafactor, adagrad, adam, adamax, ademamix, asgd, lamb, lars, lion,
               muon, nadam, radam, rmsprop, rprop, schedulefree, sgd)
from ._blockwise import dequantize, quantize
from ._rule import Rule

REGISTRY: tuple[Rule, ...] = (
    sgd.RULE,
    adagrad.RULE,
    rmsprop.RULE,
    adadelta.RULE,
    adam.RULE,
    adam.ADAMW,
    adamax.RULE,
    nadam.RULE,
    lion.RULE,
    radam.RULE,
    rprop.RULE,
    asgd.RULE,
    ademamix.RULE,
    schedulefree.RULE,
    lamb.RULE,
    lars.RULE,
    adafactor.RULE,
    muon.RULE,
)
RULES: dict[str, Rule] = {rule.class_name: rule for rule in REGISTRY}

__all__ = ["REGISTRY", "RULES", "Rule", "dequantize", "quantize"]
