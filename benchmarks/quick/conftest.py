"""Quick local figures with pytest-benchmark (asv keeps the tracked history).

    pytest benchmarks/quick --benchmark-only                 # everything (4 min on 2 cores)
    pytest benchmarks/quick --benchmark-only -k "Adam and numba"
    pytest benchmarks/quick --benchmark-only -k fraction_of_copy

pytest-benchmark prints the timings, grouped so that each table's relative column compares
the members of a group (e.g. numba against the NumPy reference for one rule and size); the
derived figures (GB/s, fraction of the copy roofline, evaluations against SciPy) follow in
tables of their own. ``--smoke`` runs every benchmark once at a small size: the test suite runs it
with ``--benchmark-disable`` so a broken benchmark fails CI.

This folder has no __init__.py, so asv's discovery (which walks packages) never imports it.
"""
from __future__ import annotations

from collections import defaultdict

import pytest

FIGURES = pytest.StashKey[dict]()


def pytest_addoption(parser):
    parser.addoption("--smoke", action="store_true",
                     help="each benchmark once at a small size (a quick check that it runs)")


def pytest_configure(config):
    config.stash[FIGURES] = defaultdict(list)
    config.addinivalue_line("markers", "sizes(*n): the sizes to benchmark (--smoke: the first)")


def pytest_generate_tests(metafunc):
    """``n`` comes from the test's ``sizes`` marker: all of them, or with --smoke one small
    size (the first, at most 1e4)."""
    marker = metafunc.definition.get_closest_marker("sizes")
    if "n" in metafunc.fixturenames and marker:
        sizes = [int(n) for n in marker.args]
        if metafunc.config.getoption("smoke"):
            sizes = [min(sizes[0], 10_000)]
        metafunc.parametrize("n", sizes, ids=[f"{n:.0e}" for n in sizes])


@pytest.fixture
def smoke(request) -> bool:
    return request.config.getoption("smoke")


@pytest.fixture
def figures(request, benchmark):
    """``figures(table, **row)``: a row of derived figures printed after the timings (none
    with --benchmark-disable, where nothing is timed: ``row`` may then be a callable that
    is not called)."""
    def record(table: str, row) -> None:
        if not benchmark.disabled:
            request.config.stash[FIGURES][table].append(row())
    return record


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    for table, rows in config.stash[FIGURES].items():
        columns = list(dict.fromkeys(k for row in rows for k in row))
        cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        terminalreporter.section(table, sep="-")
        terminalreporter.write_line("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
        for r in cells:
            terminalreporter.write_line("  ".join(v.rjust(w) for v, w in zip(r, widths)))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)
