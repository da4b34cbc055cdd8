"""Backend resolution: auto picks, explicit names never fall back silently."""
import numpy as np
import pytest

import fastopt
from fastopt import backends


def test_numpy_is_always_available():
    assert "numpy" in fastopt.available_backends()
    assert fastopt.Adam(np.ones(2), backend="numpy").backend == "numpy"


def test_auto_on_numpy_arrays_is_a_host_backend():
    opt = fastopt.Adam(np.ones(2))
    assert opt.backend == ("numba" if "numba" in fastopt.available_backends() else "numpy")


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backends, "_module_available", lambda name: False)
    with pytest.raises(fastopt.BackendUnavailableError, match="pip install numba"):
        fastopt.SGD(np.ones(2), backend="numba")
    with pytest.raises(fastopt.BackendUnavailableError, match="pip install cupy"):
        fastopt.SGD(np.ones(2), backend="cupy")
    assert fastopt.available_backends() == ["numpy"]
    assert fastopt.SGD(np.ones(2)).backend == "numpy"     # auto: numpy when numba is absent


def test_backend_must_be_a_string():
    with pytest.raises(TypeError, match="backend must be a string"):
        fastopt.SGD(np.ones(2), backend=None)
