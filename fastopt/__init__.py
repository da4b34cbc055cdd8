"""fastopt: fused Numba (CPU) and CuPy (GPU) kernels for first-order optimizers and L-BFGS.

    import fastopt
    opt = fastopt.Adam(params, lr=1e-3)      # backend chosen here: numba, cupy or numpy
    for batch in data:
        opt.step(grads(params, batch))        # fused, in place
"""
from __future__ import annotations


def _source_tree_kernels() -> None:
    """Make ``fastopt.kernels`` importable when running from a source checkout.

    The kernels live in the top-level ``kernels/`` folder and are installed as
    ``fastopt.kernels``. Running from the repository root without an editable install
    (e.g. ``python -m fastopt`` after ``pip install .``) imports this folder's
    ``fastopt`` first, which has no ``kernels`` subfolder; load the sibling one then.
    """
    import importlib.util
    import sys
    from pathlib import Path

    if importlib.util.find_spec(__name__ + ".kernels") is not None:
        return
    init = Path(__file__).resolve().parent.parent / "kernels" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        __name__ + ".kernels", init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_source_tree_kernels()

from . import schedules  # noqa: E402
from .backends import BackendUnavailableError, available_backends  # noqa: E402
from ._minimize import minimize  # noqa: E402
from ._result import OptimizeResult  # noqa: E402
from .lbfgs import LBFGS  # noqa: E402
from .gradcheck import approx_fprime, check_grad  # noqa: E402
from .training import EarlyStopping  # noqa: E402
from .optimizer import Optimizer  # noqa: E402
from .optimizers import CLASSES  # noqa: E402
from .optimizers import *  # noqa: E402,F401,F403 (SGD, Adagrad, ...: one class per registered rule)

__version__ = "0.1.0"

__all__ = [*CLASSES, "LBFGS", "minimize", "OptimizeResult", "Optimizer", "schedules",
           "EarlyStopping", "check_grad", "approx_fprime",
           "available_backends", "BackendUnavailableError"]
