"""The main command: an MLP on scikit-learn's digits with every rule."""
import sys

import numpy as np
import pytest

import fastopt
from fastopt import cli
from fastopt.kernels import RULES

digits = pytest.importorskip("fastopt.digits")
pytest.importorskip("sklearn")
BACKEND = "numba" if "numba" in fastopt.available_backends() else "numpy"


@pytest.fixture(scope="module")
def split():
    return digits.load_split(0)


def test_backprop_matches_finite_differences(split):
    params = digits.init_params(1)
    x, y = split.x_train[:20], split.y_train[:20]
    _, grads = digits.loss_and_grads([p.copy() for p in params], x, y)
    for k, (p, g) in enumerate(zip(params, grads)):
        def f(v, k=k):
            trial = [q.copy() for q in params]
            trial[k] = v.reshape(p.shape)
            return digits.loss(trial, x, y)
        np.testing.assert_allclose(fastopt.approx_fprime(p.ravel(), f, 1e-6).reshape(p.shape),
                                   g, atol=1e-6)


def test_the_split_is_stratified_and_disjoint(split):
    sizes = (len(split.y_train), len(split.y_val), len(split.y_test))
    assert sum(sizes) == 1797 and sizes == (1078, 359, 360)
    assert set(np.bincount(split.y_test)) <= {35, 36, 37}


@pytest.mark.parametrize("rule,label,hyper", digits.demo_runs(list(RULES)),
                         ids=[label for _, label, _ in digits.demo_runs(list(RULES))])
def test_every_rule_learns_with_its_tuned_lr(split, rule, label, hyper):
    """Five epochs each (forty for a full-batch rule: a step an epoch): the loss must fall
    well below chance (ln 10 = 2.3)."""
    run = digits.train(rule, hyper, split, BACKEND, epochs=40 if RULES[rule].full_batch else 5)
    assert run.train_loss < 0.6 and run.test_accuracy > 0.8, (label, run)
    assert run.val_losses[-1] < run.val_losses[0]


def test_early_stopping_keeps_the_best_epoch(split):
    run = digits.train("Adam", dict(lr=0.05), split, BACKEND, epochs=60, patience=3)
    assert run.epochs == run.best_epoch + 3 < 60
    assert min(run.val_losses) == run.val_losses[run.best_epoch - 1]
    # the params given back are the best epoch's, not the last one's
    assert digits.loss(run.params, split.x_val, split.y_val) == min(run.val_losses)


def test_main_command_prints_the_table_and_the_lbfgs_comparison(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    assert cli.main(["--rules", "SGD", "Adam", "--backends", BACKEND, "--epochs", "3",
                     "--batch-size", "64", "--seed", "1", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["SGD"], ["Adam"])]
    assert [r[0] for r in rows] == ["SGD", "SGD", "SGD", "Adam"]      # SGD's two variants
    assert all(r[-5] == "3" for r in rows if r[1] == BACKEND) or all("3" in r for r in rows)
    assert "backprop checked against finite differences" in out
    assert "fastopt.minimize" in out and plot.stat().st_size > 10_000


@pytest.mark.parametrize("argv", [["--plot", "x.png"], ["bench", "--plot", "x.png"]])
def test_plot_without_matplotlib_fails_before_any_work(argv, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(cli, "digits_demo", lambda *a: pytest.fail("work started"))
    monkeypatch.setattr(cli, "bench", lambda *a: pytest.fail("work started"))
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and "--plot needs matplotlib" in capsys.readouterr().err


@pytest.mark.parametrize("argv,match", [(["--epochs", "0"], "must be >= 1"),
                                        (["--batch-size", "x"], "must be a whole number"),
                                        (["--rules", "Adamm"], "invalid choice")])
def test_bad_options_are_usage_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and match in capsys.readouterr().err


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for option in ("--rules", "--backends", "--epochs", "--batch-size", "--seed", "--plot",
                   "classic", "bench", "info"):
        assert option in out


def test_options_before_demo_are_kept_and_before_other_commands_refused(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(cli, "digits_demo", lambda *a: seen.setdefault("args", a))
    assert cli.main(["--seed", "3", "--epochs", "2", "demo", "--rules", "Adam"]) == 0
    rules, _, epochs, _, seed, _ = seen["args"]
    assert (rules, epochs, seed) == (["Adam"], 2, 3)
    with pytest.raises(SystemExit):
        cli.main(["--plot", "x.png", "classic"])
    assert "options before 'classic' are the demo's" in capsys.readouterr().err


@pytest.mark.parametrize("argv,match", [
    (["--seed", "-1"], r"must be in \[0, 2\*\*32\)"),
    (["--plot", "/nonexistent-folder/x.png"], "does not exist"),
    (["--plot", "curves.foo"], "matplotlib writes"),
])
def test_bad_seeds_and_plot_files_fail_before_any_work(argv, match, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(cli, "digits_demo", lambda *a: pytest.fail("work started"))
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and __import__("re").search(match, capsys.readouterr().err)
