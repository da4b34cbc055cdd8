"""The type stub of fastopt/optimizers.py, written from the rule registry.

The optimizer classes are made at import time, so static tools (IDEs, type checkers) learn
their signatures and docstrings from ``optimizers.pyi`` beside the module. The test suite
fails when that file is stale; ``python -m fastopt._stubs`` rewrites it.
"""
from __future__ import annotations

import inspect
from pathlib import Path

from .kernels import REGISTRY, Rule
from .optimizers import optimizer_class, signature

STUB = Path(__file__).with_name("optimizers.pyi")
HEADER = '''\
# Written by `python -m fastopt._stubs` from the rule registry (fastopt/kernels); do not edit.
import inspect
from typing import Any

from .optimizer import Arrays, LearningRate, Optimizer

__all__ = {names!r}

CLASSES: dict[str, type[Optimizer]]

def signature(rule: Any) -> inspect.Signature: ...
def docstring(rule: Any) -> str: ...
def optimizer_class(rule: Any) -> type[Optimizer]: ...
'''


def _parameter(p: inspect.Parameter) -> str:
    annotation = (p.annotation if isinstance(p.annotation, str)
                  else inspect.formatannotation(p.annotation))
    return f"{p.name}: {annotation}" + ("" if p.default is p.empty else f" = {p.default!r}")


def class_stub(rule: Rule) -> str:
    params = list(signature(rule).parameters.values())
    first = next(i for i, p in enumerate(params) if p.kind is p.KEYWORD_ONLY)
    args = ", ".join(["self", *map(_parameter, params[:first]), "*",
                      *map(_parameter, params[first:])])
    doc = optimizer_class(rule).__doc__.replace("\\", "\\\\")
    body = "\n".join(("    " + line).rstrip() for line in doc.splitlines())
    base = rule.derived_from or "Optimizer"
    return (f"\nclass {rule.class_name}({base}):\n    \"\"\"\n{body}\n    \"\"\"\n"
            f"    def __init__({args}) -> None: ...\n")


def render() -> str:
    names = [rule.class_name for rule in REGISTRY]
    return HEADER.format(names=names) + "".join(class_stub(rule) for rule in REGISTRY)


if __name__ == "__main__":
    STUB.write_text(render())
    print(f"wrote {STUB}")
