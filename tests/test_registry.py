"""The registry is the one list of rules: everything public derives from it, and every
registered rule is covered by the test tables and has an independent scalar oracle."""
import inspect

import numpy as np
import pytest
from cases import ALL_CASES, SIGNATURES
from conftest import make_optimizer
from scalar_rules import ScalarRule

import fastopt
from fastopt import cli
from fastopt.kernels import REGISTRY, RULES

RULE_IDS = [rule.class_name for rule in REGISTRY]


@pytest.mark.parametrize("rule", REGISTRY, ids=RULE_IDS)
def test_every_rule_has_parity_cases_covering_its_flags(rule):
    cases = [hp for name, hp in ALL_CASES if name == rule.class_name]
    assert cases, f"{rule.class_name} has no row in tests/cases.py"
    seen = {}
    for hp in cases:
        opt = make_optimizer(rule.class_name, np.zeros((1, 1)), hp)
        for flag, on in rule.variant(opt._groups[0].hp).items():
            seen.setdefault(flag, set()).add(on)
    for flag in rule.flags:
        assert seen.get(flag) == {False, True}, f"{rule.class_name}: cases never set {flag}={{}}"


def test_every_rule_has_its_public_signature_written_out():
    assert list(SIGNATURES) == list(RULES), "tests/cases.py SIGNATURES: one entry per rule"


@pytest.mark.parametrize("rule", REGISTRY, ids=RULE_IDS)
def test_keywords_defaults_and_kinds_match_the_written_contract(rule):
    assert [(h.name, h.default, h.kind) for h in rule.hyperparams] == SIGNATURES[rule.class_name]


@pytest.mark.parametrize("rule", REGISTRY, ids=RULE_IDS)
def test_flags_come_in_declared_order(rule):
    for name, hp in ALL_CASES:
        if name == rule.class_name:
            opt = make_optimizer(name, np.zeros((1, 1)), hp)
            assert tuple(rule.variant(opt._groups[0].hp)) == rule.flags


def test_adamw_is_an_adam():
    assert issubclass(fastopt.AdamW, fastopt.Adam)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_optimizers_pickle(backend):
    """(Whether a copy then updates the copied params is the reliability issue's to settle.)"""
    import pickle

    if backend not in fastopt.available_backends():
        pytest.skip(f"{backend} is not available")
    opt = fastopt.Adam(np.zeros(3), backend=backend)
    assert type(pickle.loads(pickle.dumps(opt))) is fastopt.Adam


@pytest.mark.parametrize("rule", REGISTRY, ids=RULE_IDS)
def test_every_rule_has_an_independent_scalar_oracle(rule):
    assert callable(getattr(ScalarRule, "_" + rule.class_name.lower(), None)), (
        f"tests/scalar_rules.py has no _{rule.class_name.lower()} for {rule.class_name}")


@pytest.mark.parametrize("rule", REGISTRY, ids=RULE_IDS)
def test_public_class_signature_and_docstring_come_from_the_rule(rule):
    cls = getattr(fastopt, rule.class_name)
    assert cls.rule is rule and cls.__name__ == rule.class_name
    params = inspect.signature(cls).parameters
    assert list(params) == ["params", *(h.name for h in rule.hyperparams), "backend",
                            "max_grad_norm", "master_weights", "stochastic_rounding", "seed",
                            "state_dtype", "min_8bit_size"]
    for h in rule.hyperparams:
        assert params[h.name].default == h.default
        assert f"{h.name} : " in cls.__doc__ and f"default {h.default!r}\n" in cls.__doc__
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY
               for k in ("backend", "max_grad_norm", "master_weights", "stochastic_rounding",
                         "seed", "state_dtype", "min_8bit_size"))
    assert rule.summary in cls.__doc__ and "Parameters\n----------\n" in cls.__doc__


@pytest.mark.parametrize("rule", REGISTRY, ids=RULE_IDS)
def test_defaults_and_positional_order_follow_the_declaration(rule):
    values = [h.default for h in rule.hyperparams]
    by_position = getattr(fastopt, rule.class_name)(np.zeros((2, 2)), *values, backend="numpy")
    assert by_position.hyperparams == {h.name: h.default for h in rule.hyperparams}


def test_every_class_is_exported_and_listed():
    assert [name for name in fastopt.__all__ if name in RULES] == list(RULES)
    assert list(cli.RULE_NAMES) == list(RULES)


def test_unknown_keyword_names_the_class():
    with pytest.raises(TypeError, match="Adam: .*'momentum'"):
        fastopt.Adam(np.zeros(2), momentum=0.9)
    with pytest.raises(TypeError, match="SGD: .*params"):
        fastopt.SGD()


def test_copy_and_pickle_find_the_generated_classes():
    import pickle

    for name in RULES:
        assert pickle.loads(pickle.dumps(getattr(fastopt, name))) is getattr(fastopt, name)


def test_type_stub_is_current():
    """fastopt/optimizers.pyi tells IDEs the generated classes' signatures and docstrings;
    regenerate it with `python -m fastopt._stubs` after changing a rule's description."""
    from fastopt import _stubs

    assert _stubs.STUB.read_text() == _stubs.render(), "run: python -m fastopt._stubs"


# -- a rule that is incomplete fails at import, by name ----------------------------------
def test_a_rule_without_torch_names_for_its_state_fails_when_made():
    """fastopt.torch's state_dict raised KeyError after a step while the tests passed."""
    adam = RULES["Adam"]
    with pytest.raises(TypeError, match=r"rule Adam2: torch_state has no torch name for "
                                        r"\['vmax'\]"):
        adam.derive("adam2", "Adam2", "Adam again.",
                    torch_state={"m": "exp_avg", "v": "exp_avg_sq"})


def test_a_rule_whose_host_scalars_miss_one_fails_when_made():
    """(It was a numba TypingError at the first step.)"""
    sgd = RULES["SGD"]

    def fewer(hp, t, lr, extra):
        scalars, extra = sgd.host_scalars(hp, t, lr, extra)
        return scalars[:-1], extra
    with pytest.raises(TypeError, match=rf"rule SGD2: host_scalars gives "
                                        rf"{len(sgd.scalars) - 1} scalars for the "
                                        rf"{len(sgd.scalars)} of SCALARS"):
        sgd.derive("sgd2", "SGD2", "SGD again.", host_scalars=fewer)


def test_the_cached_loops_name_covers_helpers_in_any_module(tmp_path, monkeypatch):
    """An element body calling a helper from a third module: a change to that module
    changes the compiled loop's cache name (numba's own cache sees only the loop's file,
    and served the stale loop)."""
    from fastopt.kernels import _cpu

    (tmp_path / "third_helper.py").write_text("def helper(x):\n    return x + 1.0\n")
    (tmp_path / "third_rule.py").write_text(
        "from third_helper import helper\n\n"
        "def element(i, p, g, state, s, flags):\n    p[i] = helper(g[i])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import third_rule

    before = _cpu._fingerprint(third_rule.element)
    (tmp_path / "third_helper.py").write_text("def helper(x):\n    return x + 2.0\n")
    assert _cpu._fingerprint(third_rule.element) != before
