"""Every rule actually minimises: an ill-conditioned quadratic and Rosenbrock."""
import numpy as np
import pytest
from cases import RULE_NAMES
from conftest import make_optimizer

from fastopt.problems import make_quadratic, rosenbrock

QUADRATIC_LR = dict(SGD=1.5e-2, Adagrad=0.5, RMSprop=1e-2, Adadelta=1.0, Adam=5e-2,
                    AdamW=5e-2, Adamax=5e-2, Nadam=5e-2)
ROSENBROCK_LR = dict(SGD=1e-3, Adagrad=0.5, RMSprop=1e-3, Adadelta=0.05, Adam=3e-2,
                     AdamW=3e-2, Adamax=3e-2, Nadam=1e-2)


def minimise(rule, fun, x0, steps, **hp):
    x = x0.copy()
    opt = make_optimizer(rule, x, hp)
    for _ in range(steps):
        _, g = fun(x)
        opt.step(g)
    return fun(x)[0]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_quadratic(rule):
    fun = make_quadratic(50, condition=100.0)
    x0 = np.ones(50)
    f0 = fun(x0)[0]
    f = minimise(rule, fun, x0, 1500, lr=QUADRATIC_LR[rule])
    assert f < 1e-3 * f0, f


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rosenbrock(rule):
    x0 = np.array([-1.2, 1.0])
    f = minimise(rule, rosenbrock, x0, 6000, lr=ROSENBROCK_LR[rule])
    assert f < 0.05, f          # from f(x0) = 24.2, through the curved valley


def test_sgd_momentum_beats_plain_sgd_on_rosenbrock():
    x0 = np.array([-1.2, 1.0])
    plain = minimise("SGD", rosenbrock, x0, 3000, lr=1e-3)
    heavy = minimise("SGD", rosenbrock, x0, 3000, lr=1e-3, momentum=0.9, nesterov=True)
    assert heavy < plain
