"""Sphinx directives that write the API pages from fastopt's registries, so no page keeps a
hand-written list of rules or methods that can drift from the code:

* ``.. fastopt-rules::`` a table of every update rule (class, what it is, defaults);
* ``.. fastopt-optimizers:: fastopt`` (or ``fastopt.torch``) an ``autoclass`` of each
  rule's class, in the registry's order;
* ``.. fastopt-methods::`` each ``minimize`` method with its options, their defaults and
  what they do (``fastopt.solvers.METHODS`` and ``fastopt.solvers.options.OPTION_DOCS``).

Each expands to reStructuredText parsed in place (use them in ``.rst`` pages).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

LITERAL = re.compile(r"(``.*?``)")


def rst_safe(text: str) -> str:
    """Plain text (a hyperparameter's or an option's doc: ``p *= 1 - lr*wd``, ``|g|``,
    ``clip_grad_norm_``) as reStructuredText that shows it as written: ``*``, ``|`` and a
    word's trailing ``_`` escaped outside ````literals````."""
    parts = LITERAL.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"(\w)_(?=\W|$)", r"\1\\_", re.sub(r"([*|])", r"\\\1", parts[i]))
    return "".join(parts)


NOT_IN_GALLERY = ("zero_mpi.py",)     # needs mpiexec: tests/test_examples.py runs it


def gallery_scripts() -> list[Path]:
    """The examples the gallery runs: every script in examples/ but NOT_IN_GALLERY."""
    return sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.py")
                  if p.name not in NOT_IN_GALLERY)


def rule_rows() -> list[tuple[str, str, str]]:
    """(class, summary, defaults) of each registered rule, in the registry's order."""
    from fastopt.kernels import REGISTRY

    return [(rule.class_name, rule.summary,
             ", ".join(f"{h.name}={h.default!r}" for h in rule.hyperparams))
            for rule in REGISTRY]


def list_table(header: tuple[str, ...], rows: list[tuple[str, ...]],
               widths: str = "auto") -> list[str]:
    """An rST ``list-table`` of ``rows`` under ``header``."""
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in (header, *rows):
        lines += [f"   * - {row[0]}", *(f"     - {cell}" for cell in row[1:])]
    return lines + [""]


def rules_table() -> list[str]:
    rows = [(f":class:`~fastopt.{name}`", summary, f"``{defaults}``" if defaults else "")
            for name, summary, defaults in rule_rows()]
    return list_table(("class", "rule", "defaults"), rows, "15 45 40")


def optimizer_classes(module: str) -> list[str]:
    """An ``autoclass`` of ``module``'s class of each rule (fastopt or fastopt.torch)."""
    from fastopt.kernels import REGISTRY

    lines: list[str] = []
    for rule in REGISTRY:
        name = rule.class_name if module == "fastopt" else (rule.torch_class or
                                                             rule.class_name)
        lines += [name, "-" * len(name), "", f".. autoclass:: {module}.{name}"]
        if rule.switch_state:
            lines += ["   :members: train, eval"]
        lines += [""]
    return lines


def option_default(option: Any) -> str:
    if option.for_dtype is not None:
        return f"``{option.default!r}`` (float64; by x's dtype)"
    return f"``{option.default!r}``"


def methods() -> list[str]:
    """A section per ``minimize`` method: its summary and a table of its options."""
    from fastopt.solvers import METHODS
    from fastopt.solvers.options import OPTION_DOCS

    lines: list[str] = []
    for method in METHODS:
        title = f'``method="{method.name}"``'
        lines += [title, "-" * len(title), "", method.summary[:1].upper() + method.summary[1:]
                  + ".", ""]
        if method.tol:
            lines += [f"``tol`` sets {' and '.join(f'``{t}``' for t in method.tol)}.", ""]
        rows = [(f"``{name}``", option_default(option), rst_safe(OPTION_DOCS[name]))
                for name, option in method.options.items()]
        lines += list_table(("option", "default", "what it does"), rows, "18 22 60")
    return lines


class _Generated(SphinxDirective):
    """A directive whose body is reStructuredText written by ``lines()``."""

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.section()
        content = StringList(self.lines(), source=self.get_source_info()[0])
        nested_parse_with_titles(self.state, content, container, self.content_offset)
        return list(container.children)


class RulesTable(_Generated):
    def lines(self) -> list[str]:
        return rules_table()


class Optimizers(_Generated):
    required_arguments = 1

    def lines(self) -> list[str]:
        return optimizer_classes(self.arguments[0])


class Methods(_Generated):
    def lines(self) -> list[str]:
        return methods()


def escape_parameters(app: Any, what: str, name: str, obj: Any, options: Any,
                      lines: list[str]) -> None:
    """An optimizer class's generated docstring is plain text (``help()`` shows it as
    written): its Parameters entries are made rST-safe before numpydoc reads them."""
    if not (isinstance(obj, type) and hasattr(obj, "rule")):
        return
    inside = False
    for i, line in enumerate(lines):
        heading = i + 1 < len(lines) and set(lines[i + 1]) == {"-"} and line.strip()
        if heading:
            inside = line == "Parameters"
        elif inside and line.startswith("    "):
            lines[i] = rst_safe(line)


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", escape_parameters, priority=100)
    app.add_directive("fastopt-rules", RulesTable)
    app.add_directive("fastopt-optimizers", Optimizers)
    app.add_directive("fastopt-methods", Methods)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
