"""The docs site: it builds with warnings as errors, its gallery's scripts run (at the
small sizes FASTOPT_DOCS_QUICK=1 picks), and its API pages list every rule and every
``minimize`` option from the registries."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
BUILD_NEEDS = ("sphinx", "pydata_sphinx_theme", "numpydoc", "sphinx_gallery", "myst_parser",
               "matplotlib", "scipy", "sklearn", "torch", "numba")


def missing_for_the_build() -> list[str]:
    return [m for m in BUILD_NEEDS if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The html site, built once from a copy-free source tree (the gallery writes its
    pages under docs/auto_examples, which git ignores)."""
    if missing_for_the_build():
        pytest.skip(f"the docs build needs {missing_for_the_build()} (the docs extra)")
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ, FASTOPT_DOCS_QUICK="1", MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                          "-b", "html", str(DOCS), str(out)], capture_output=True, text=True,
                         env=env, timeout=1200)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-8000:]
    return out


def test_the_docs_build_with_warnings_as_errors_and_run_the_gallery(built):
    from fastopt_docs import gallery_scripts

    for script in gallery_scripts():
        page = built / "auto_examples" / f"{script.stem}.html"
        assert page.is_file(), script
        assert "sphx-glr-script-out" in page.read_text(), script     # it ran and printed
    images = list((built / "_images").glob("sphx_glr_plot_*_001.png"))
    assert len(images) == sum(s.stem.startswith("plot_") for s in gallery_scripts())


def test_the_api_pages_show_every_rule_with_its_formula(built):
    from fastopt.kernels import REGISTRY

    core = (built / "api" / "optimizers.html").read_text()
    torch_page = (built / "api" / "torch.html").read_text()
    for rule in REGISTRY:
        assert f'id="fastopt.{rule.class_name}"' in core, rule.class_name
        assert f'id="fastopt.torch.{rule.torch_class or rule.class_name}"' in torch_page
    assert "b1*m + (1-b1)*g" in core            # a formula, in its literal block


def test_the_rule_table_and_method_tables_come_from_the_registries():
    pytest.importorskip("sphinx")          # (the extension is a Sphinx one)
    from fastopt_docs import methods, rule_rows

    from fastopt.kernels import REGISTRY
    from fastopt.solvers import METHODS

    assert [name for name, _, _ in rule_rows()] == [rule.class_name for rule in REGISTRY]
    text = "\n".join(methods())
    for method in METHODS:
        assert f'``method="{method.name}"``' in text
        for name, option in method.options.items():
            assert f"``{name}``" in text and repr(option.default) in text, (method, name)


def test_every_option_of_every_method_says_what_it_does():
    from fastopt.solvers import METHODS
    from fastopt.solvers.options import OPTION_DOCS

    for method in METHODS:
        for name in method.options:
            assert OPTION_DOCS.get(name, "").strip(), (method.name, name)


def test_rst_safe_shows_plain_text_as_written():
    pytest.importorskip("sphinx")          # (the extension is a Sphinx one)
    from fastopt_docs import rst_safe

    assert rst_safe("p *= 1 - lr*wd, |g|, clip_grad_norm_ and ``a*b_``") == \
        r"p \*= 1 - lr\*wd, \|g\|, clip_grad_norm\_ and ``a*b_``"


# the modules whose docstrings the API pages show (docs/api/*.rst)
API_MODULES = ("fastopt.optimizer", "fastopt.optimizers", "fastopt.schedules",
               "fastopt.training", "fastopt.gradcheck", "fastopt.lbfgs", "fastopt._minimize",
               "fastopt._result", "fastopt.backends", "fastopt.distributed",
               "fastopt.kernels._blockwise", "fastopt.torch")


def test_the_api_pages_examples_run_as_doctests():
    """A ``>>>`` example in a docstring the API pages show gives the output it says."""
    import doctest
    import importlib

    attempted = 0
    for name in API_MODULES:
        if name == "fastopt.torch":
            pytest.importorskip("torch")
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 3
