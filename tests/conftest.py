import numpy as np
import pytest

import fastopt


def make_optimizer(rule: str, params, hp: dict, backend: str = "numpy"):
    return getattr(fastopt, rule)(params, backend=backend, **hp)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
