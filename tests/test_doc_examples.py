"""Every Python code block of the README runs as written: each in a fresh interpreter, in
an empty folder, skipped only where an optional dependency it imports is missing."""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^(?P<indent> *)```python\n(?P<body>.*?)^(?P=indent)```$", re.S | re.M)
OPTIONAL = {"torch": "torch", "fastopt.torch": "torch", "fastopt.distributed": "mpi4py",
            "scipy": "scipy", "sklearn": "sklearn"}


def readme_blocks() -> list[tuple[int, str]]:
    """(line of the fence, code) of each ```python block, indented ones included."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, textwrap.dedent(m["body"]))
            for m in FENCE.finditer(text)]


BLOCKS = readme_blocks()


def test_every_python_fence_is_found():
    """No ```python block escapes the extraction (an unclosed or misindented fence)."""
    opened = README.read_text(encoding="utf-8").count("```python")
    assert len(BLOCKS) == opened >= 6, [line for line, _ in BLOCKS]


@pytest.mark.parametrize("line,code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_a_readme_block_runs_as_written(line, code, tmp_path):
    for module, needs in OPTIONAL.items():
        if re.search(rf"^\s*(import|from) {re.escape(module)}\b", code, re.M):
            pytest.importorskip(needs)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"README.md line {line}:\n{code}\n{out.stderr}"
