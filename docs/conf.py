"""Sphinx configuration: the docs site (``python -m sphinx docs docs/_build``).

The API pages are generated from the code (autodoc, and the rule and method registries
through ``_ext/fastopt_docs.py``); the gallery runs the ``examples/plot_*.py`` scripts
(sphinx-gallery) at the sizes ``FASTOPT_DOCS_QUICK=1`` makes small for CI.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import fastopt  # noqa: E402 (after the path: the extension imports it too)
from fastopt_docs import NOT_IN_GALLERY  # noqa: E402

project = "fastopt"
author = "the fastopt developers"
copyright = "2026, the fastopt developers"
release = version = fastopt.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx_gallery.gen_gallery",
    "fastopt_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nitpicky = False
highlight_language = "none"          # "::" blocks are formulas, not Python
suppress_warnings = ["config.cache"]      # sphinx-gallery's callables in the config

autodoc_typehints = "signature"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",                   # every example runs in the build
    "ignore_pattern": "|".join(rf"{re.escape(name)}$" for name in NOT_IN_GALLERY),
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "plot_gallery": "True",
    "abort_on_example_error": True,
}
os.environ.setdefault("MPLBACKEND", "Agg")

html_theme = "pydata_sphinx_theme"
html_title = "fastopt"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
