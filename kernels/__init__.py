"""fastopt's kernels: one module per update rule, each holding its NumPy reference, its
Numba CPU kernel and its CuPy kernel body side by side (installed as ``fastopt.kernels``)."""
from . import adadelta, adagrad, adam, adamax, nadam, rmsprop, sgd

RULES = {m.RULE.name: m.RULE for m in (sgd, adagrad, rmsprop, adadelta, adam, adamax, nadam)}

__all__ = ["RULES"]
