"""``python -m fastopt`` works out of the box."""
import subprocess
import sys

import pytest

from fastopt import cli


def test_classic_prints_a_row_per_problem_rule_and_backend_with_the_optimum(capsys):
    assert cli.main(["classic", "--steps", "30", "--rules", "Adam", "SGD",
                     "--backends", "numpy"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    problems = ("rosenbrock", "quadratic", "logistic")
    rows = [w for w in lines if w[:1] and w[0] in problems and w[2] in ("Adam", "SGD")]
    assert len(rows) == 3 * 2
    assert all(w[4] == "numpy" and w[6] == "30" for w in rows)
    assert all(float(w[5]) == float(w[5]) for w in rows)          # no NaN
    lbfgs_rows = [w for w in lines if w[:1] and w[0] in problems and w[1] == "numpy"]
    assert len(lbfgs_rows) == 3 and all("CONVERGENCE" in " ".join(w) for w in lbfgs_rows)


def test_module_entry_point_runs_info():
    out = subprocess.run([sys.executable, "-m", "fastopt", "info"], capture_output=True,
                         text=True, check=True).stdout
    assert "fastopt" in out and "backends available: numpy" in out


def test_unavailable_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--backends", "nope"])
    assert exc.value.code == 2
    assert "not available here" in capsys.readouterr().err


@pytest.mark.parametrize("option,value,words", [
    ("--sizes", "2.5", "whole number from 1 to 1e10"),
    ("--sizes", "1e30", "whole number from 1 to 1e10"),
    ("--sizes", "inf", "whole number from 1 to 1e10"),
    ("--min-time", "-1", "seconds > 0"),
    ("--min-time", "nan", "seconds > 0"),
    ("--min-time", "soon", "seconds > 0"),
])
def test_bench_refuses_sizes_and_times_it_cannot_measure(option, value, words, capsys):
    """A usage error naming the option (2.5 was measured as 2, -1 ran single calls, 1e30
    and nan ended in tracebacks)."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--rules", "SGD", "--backends", "numpy", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and words in err


def test_rules_take_torchs_spelling_too(capsys):
    """One spelling per rule everywhere: NAdam (torch's, fastopt.torch's) is Nadam."""
    assert cli.TORCH_SPELLINGS["NAdam"] == "Nadam"
    assert cli.main(["classic", "--steps", "5", "--rules", "NAdam", "--backends",
                     "numpy"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert sum(1 for w in rows if w[2:3] == ["Nadam"]) == 3
    with pytest.raises(SystemExit):
        cli.main(["classic", "--rules", "Nadamw"])
    assert "invalid choice: 'Nadamw'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["--lr", "0.1"], "unknown option --lr (the demo trains each rule with its own tuned lr"),
    (["bench", "--size", "1e3"], "unknown option --size;"),
    (["classic", "--steps=3", "--epoch=4"], "unknown option --epoch;"),
])
def test_an_unknown_option_is_named(argv, words, capsys):
    """Not "argument command: invalid choice: '0.1'", as argparse said of --lr 0.1."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert words in capsys.readouterr().err


def test_bench_sizes_beyond_memory_are_refused_before_allocating(capsys, monkeypatch):
    """5e9 elements ended in NumPy's _ArrayMemoryError traceback; now a usage error with
    the memory needed and free, before any array exists (free memory set to 1 GiB)."""
    from fastopt import _bench
    monkeypatch.setattr(_bench, "memory_available", lambda backend: 2 ** 30)
    monkeypatch.setattr(_bench, "step_case", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--rules", "Adam", "SGD", "--backends", "numpy", "--sizes", "1e3",
                  "5e7"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Adam at --sizes 5e+07 in float32 needs about" in err and "1.0 GiB free" in err
    assert _bench.memory_needed("Adam", "numpy", 10 ** 6) >= 10 ** 6 * (4 * 4 + 8)


def test_bench_out_of_memory_all_the_same_is_a_usage_error(capsys, monkeypatch):
    from fastopt import _bench

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 37.3 GiB")
    monkeypatch.setattr(_bench, "copy_bandwidth", out_of_memory)
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--rules", "SGD", "--backends", "numpy", "--sizes", "1e3"])
    assert exc.value.code == 2
    assert "ran out of memory (Unable to allocate 37.3 GiB); give smaller" in \
        capsys.readouterr().err


def test_bench_measures_16bit_params_with_their_bytes(capsys):
    """--dtypes bfloat16 float16: rows for 16-bit params, their bytes a step counted with
    float32 state (AdamW: 3 * 2 + 2 * 2 * 4 = 22 bytes an element)."""
    pytest.importorskip("ml_dtypes")
    from fastopt._bench import step_case
    rows = cli.bench(["AdamW"], ["numpy"], [1000], ["bfloat16", "float16"], 0.01, None)
    assert [r["dtype"] for r in rows] == ["bfloat16", "float16"]
    assert step_case("AdamW", "numpy", 1000, "bfloat16").bytes_per_step == 22 * 1000
    assert "bfloat16" in capsys.readouterr().out
