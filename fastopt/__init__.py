"""fastopt: fused Numba (CPU) and CuPy (GPU) kernels for first-order optimizers and L-BFGS.

    import fastopt
    opt = fastopt.Adam(params, lr=1e-3)      # backend chosen here: numba, cupy or numpy
    for batch in data:
        opt.step(grads(params, batch))        # fused, in place
"""
from __future__ import annotations


def _own_kernels() -> None:
    """Import ``fastopt.kernels`` from this ``fastopt``'s own files.

    The kernels live in the top-level ``kernels/`` folder, installed as ``fastopt.kernels``
    (``fastopt/kernels/`` in a wheel). In a source checkout they are ``../kernels``: loaded
    from there by path, never looked up by name, since an editable install of another
    checkout maps the name ``fastopt.kernels`` to that checkout's folder.
    """
    import importlib.util
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for folder in (here / "kernels", here.parent / "kernels"):
        if (folder / "__init__.py").is_file():
            break
    else:
        raise ImportError(f"fastopt: no kernels beside {here} (fastopt/kernels or ../kernels); "
                          "reinstall fastopt")
    spec = importlib.util.spec_from_file_location(
        __name__ + ".kernels", folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    setattr(sys.modules[__name__], "kernels", module)


_own_kernels()

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
