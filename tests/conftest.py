import numpy as np
import pytest

import fastopt


def make_optimizer(rule: str, params, hp: dict, backend: str = "numpy"):
    return getattr(fastopt, rule)(params, backend=backend, **hp)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run only where the cupy backend can (cupy and a CUDA device)."""
    if "cupy" in fastopt.available_backends():
        return
    skip = pytest.mark.skip(reason="needs cupy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
