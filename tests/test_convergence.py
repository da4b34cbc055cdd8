"""Every rule actually minimises: an ill-conditioned quadratic and Rosenbrock."""
import numpy as np
import pytest
from cases import RULE_NAMES
from conftest import make_optimizer

from fastopt.kernels import RULES
from fastopt.problems import make_quadratic, param_view, rosenbrock

def minimise(rule, fun, x0, steps, **hp):
    x = x0.copy()
    view = param_view(rule, x)          # (Muon takes matrices: a view of x)
    opt = make_optimizer(rule, view, hp)
    for _ in range(steps):
        _, g = fun(x)
        opt.step(g.reshape(view.shape))
    return fun(x)[0]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_quadratic(rule):
    fun = make_quadratic(50, condition=100.0)
    x0 = np.ones(50)
    f0 = fun(x0)[0]
    f = minimise(rule, fun, x0, 1500, lr=RULES[rule].tuned_lr["quadratic"])
    assert f < 1e-3 * f0, f


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rosenbrock(rule):
    x0 = np.array([-1.2, 1.0])
    f = minimise(rule, rosenbrock, x0, 6000, lr=RULES[rule].tuned_lr["rosenbrock"])
    assert f < 0.05, f          # from f(x0) = 24.2, through the curved valley


def test_sgd_momentum_beats_plain_sgd_on_rosenbrock():
    x0 = np.array([-1.2, 1.0])
    plain = minimise("SGD", rosenbrock, x0, 3000, lr=1e-3)
    heavy = minimise("SGD", rosenbrock, x0, 3000, lr=1e-3, momentum=0.9, nesterov=True)
    assert heavy < plain
