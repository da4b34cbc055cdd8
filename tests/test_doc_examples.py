"""Every Python code block of the README and of the docs' pages (docs/**/*.md) runs as
written: each in a fresh interpreter, in an empty folder, skipped only where an optional
dependency it imports is missing. (The API pages are generated from the code and the
gallery's scripts run in the docs build: tests/test_docs.py.)"""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md")
                                    if not {"_build", "auto_examples"} & set(p.parts))]
FENCE = re.compile(r"^(?P<indent> *)```python\n(?P<body>.*?)^(?P=indent)```$", re.S | re.M)
OPTIONAL = {"torch": "torch", "fastopt.torch": "torch", "fastopt.distributed": "mpi4py",
            "scipy": "scipy", "sklearn": "sklearn", "ml_dtypes": "ml_dtypes"}


def blocks(page: Path) -> list[tuple[int, str]]:
    """(line of the fence, code) of each ```python block, indented ones included."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, textwrap.dedent(m["body"]))
            for m in FENCE.finditer(text)]


BLOCKS = [(page.relative_to(ROOT).as_posix(), line, code) for page in PAGES
          for line, code in blocks(page)
]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_python_fence_is_found(page):
    """No ```python block escapes the extraction (an unclosed or misindented fence)."""
    assert len(blocks(page)) == page.read_text(encoding="utf-8").count("```python")


def test_the_pages_show_code():
    assert len(BLOCKS) >= 12, [f"{p}:{line}" for p, line, _ in BLOCKS]


@pytest.mark.parametrize("page,line,code", BLOCKS, ids=[f"{p}:{line}" for p, line, _ in BLOCKS])
def test_a_code_block_runs_as_written(page, line, code, tmp_path):
    for module, needs in OPTIONAL.items():
        if re.search(rf"^\s*(import|from) {re.escape(module)}\b", code, re.M):
            pytest.importorskip(needs)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"{page} line {line}:\n{code}\n{out.stderr}"
