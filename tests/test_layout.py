"""The layout: ``fastopt.kernels`` is always the one beside the ``fastopt`` imported."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOW_FILES = ("import fastopt, fastopt.kernels, fastopt.kernels.adam as adam; "
              "print(fastopt.__file__); print(fastopt.kernels.__file__); print(adam.__file__)")


def imported_files(cwd: Path, pythonpath: Path | None = None) -> list[Path]:
    """Where ``fastopt``, ``fastopt.kernels`` and a rule module come from, in a fresh
    interpreter of this environment (where fastopt is installed, editable in CI)."""
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(cwd)}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run([sys.executable, "-c", SHOW_FILES], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return [Path(line).resolve() for line in out.stdout.split()]


def copy_package(to: Path, kernels_inside: bool) -> None:
    """fastopt/ and kernels/ as a second checkout has them, or as a wheel installs them
    (kernels inside the package)."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "fastopt", to / "fastopt", ignore=ignore)
    kernels = to / "fastopt" / "kernels" if kernels_inside else to / "kernels"
    shutil.copytree(ROOT / "kernels", kernels, ignore=ignore)


def test_a_second_checkout_imports_its_own_kernels(tmp_path):
    """Run from the root of another checkout, beside this environment's install of
    fastopt: every file comes from that checkout (the install's finder maps the name
    fastopt.kernels to its own folder, and used to win)."""
    clone = tmp_path / "clone"
    copy_package(clone, kernels_inside=False)
    assert all(clone in f.parents for f in imported_files(clone))


def test_an_installed_layout_imports_the_kernels_inside_it(tmp_path):
    """The wheel's layout (fastopt/kernels) first on the path: its own kernels."""
    site = tmp_path / "site"
    copy_package(site, kernels_inside=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    files = imported_files(elsewhere, pythonpath=site)
    assert files[1] == site / "fastopt" / "kernels" / "__init__.py"
    assert all(site in f.parents for f in files)


def test_the_installed_fastopt_outside_any_checkout(tmp_path):
    """From a folder with no checkout, the environment's own install: its kernels are
    the ones beside it (``fastopt/kernels``, or ``../kernels`` for an editable one)."""
    package, kernels, adam = imported_files(tmp_path)
    assert kernels in (package.parent / "kernels" / "__init__.py",
                       package.parent.parent / "kernels" / "__init__.py")
    assert adam.parent == kernels.parent


@pytest.mark.parametrize("layout", ["checkout", "wheel"])
def test_a_package_without_kernels_says_so(tmp_path, layout):
    site = tmp_path / "site"
    copy_package(site, kernels_inside=layout == "wheel")
    shutil.rmtree(site / "fastopt" / "kernels" if layout == "wheel" else site / "kernels")
    out = subprocess.run([sys.executable, "-c", "import fastopt"], cwd=site,
                         capture_output=True, text=True, timeout=120)
    assert "fastopt: no kernels beside" in out.stderr
