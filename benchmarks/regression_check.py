"""The maintainers' performance regression check: asv, two commits, the warm-step benchmarks
of the numba backend, a fresh results folder.

    python benchmarks/regression_check.py [BASE [HEAD]]     # default: main HEAD
    python benchmarks/regression_check.py --self-test       # prove it on made-up commits

It runs ``asv continuous`` on ``RuleStep.time_steps`` for every rule on numba at 1e5, where
the loop body's own cost shows (the arrays sit in cache), with 4 rounds interleaved between
the two commits, and flags a benchmark when the head is more than ``--factor`` (default
1.15) slower and asv's statistics call the change significant. ``--sizes 1000 100000`` adds
the Python-bound 1e3 rows; they are left out by default because one of them once read 1.51x
on a commit that did not touch it, while the machine was busy. Exit status: 0 when nothing
got slower, 1 when something did (each flagged benchmark is named with its ratio), 2 when
the check could not compare (the message says why and what to run). Results go to a new
temporary folder every time, so earlier runs' results never enter the comparison; the
built environments in .asv/env are reused. numba runs on one thread here: on the 2-core
machine the two-thread loop's times were bimodal (thread wake-ups compete with asv's own
processes), and two identical commits differed by up to 1.41x at 1e5; the loop body the
check guards is the same code on one thread.

On a fresh machine it records the machine for asv (``asv machine --yes``) and asv builds its
environment from ``asv.conf.json`` on the first comparison (about a minute). Before that it
runs asv's discovery of the suite with every module that environment lacks made
unimportable, so a benchmark that imports an optional dependency at module level stops the
check at once, naming the import.

``--self-test`` makes two commits on top of HEAD without touching any branch or the work
tree (git plumbing): one that changes only the README, and one that slows one rule's numba
element body (``--slow-rule``, default Adam) with a redundant division whose result is
bit-identical, measures that slowdown directly, then runs the check three times on each and
prints the tally. A good check flags the slow commit three times out of three and the
documentation commit never.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASV = [sys.executable, "-m", "asv"]
SIZES = (100_000,)


def bench_regex(sizes=SIZES) -> str:
    """asv's --bench: exactly RuleStep.time_steps of every rule on numba at ``sizes``."""
    return rf"^bench_rules\.RuleStep\.time_steps\('\w+', 'numba', ({'|'.join(map(str, sizes))})\)$"
ASV_OPTIONS = ["-a", "rounds=4", "--interleave-rounds", "--no-only-changed", "--sort", "ratio"]
ROW = re.compile(r"^\|\s*(?P<mark>\S?)\s*\|[^|]*\|[^|]*\|\s*~?(?P<ratio>[\d.]+)\s*\|\s*(?P<name>.+?)\s*\|$")


class CheckFailed(Exception):
    """The check could not compare the commits; the message says why and what to do."""


# -- what a fresh machine needs: asv, a record of the machine, a suite asv's environment imports
def require_asv() -> None:
    """Stop at once, with the command to run, where asv is not installed."""
    if importlib.util.find_spec("asv") is None:
        raise CheckFailed("asv is not installed in this environment: pip install -e '.[bench]'")


def record_machine() -> None:
    """asv refuses to run on a machine it has no record of (~/.asv-machine.json): record this
    one's defaults once, as ``asv machine --yes`` does."""
    from asv.machine import Machine, MachineCollection
    from asv.util import UserError

    try:
        MachineCollection.load(Machine.get_unique_machine_name())
    except UserError:
        subprocess.run([*ASV, "machine", "--yes"], cwd=ROOT, check=True, capture_output=True)
        print("asv had no record of this machine: recorded its defaults (asv machine --yes)")


def asv_requirements(conf: dict) -> list[str]:
    """What ``install_command`` puts in asv's environment: fastopt with its extras, the
    packages it names, and what asv's virtualenv always has (asv's runner, pip, setuptools)."""
    found = []
    for command in conf["install_command"]:
        words = command.split()
        for word in words[words.index("install") + 1:]:
            if word.startswith("{wheel_file}"):
                found.append("fastopt" + word.removeprefix("{wheel_file}"))
            elif not word.startswith("-"):
                found.append(word)
    return found + ["asv_runner", "pip", "setuptools", "wheel"]


def distributions_of(requirements: list[str]) -> set[str]:
    """The distributions those requirements install, their own requirements included
    (extras and markers as pip evaluates them), read from this environment's metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo, seen = [Requirement(r) for r in requirements], set()
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(req.name).requires or []
        except metadata.PackageNotFoundError:
            continue                    # not here: nothing of it can be imported here either
        for spec in map(Requirement, requires):
            if spec.marker is None or any(spec.marker.evaluate({"extra": extra})
                                          for extra in req.extras or {""}):
                todo.append(spec)
    return {name for name, _ in seen}


def modules_asv_lacks(conf: dict) -> set[str]:
    """Top-level modules importable here that asv's environment does not install."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    needed = distributions_of(asv_requirements(conf))
    return {module for module, dists in metadata.packages_distributions().items()
            if not any(canonicalize_name(d) in needed for d in dists)}


DISCOVER = """
import importlib.abc, json, sys
from asv_runner.discovery import _discover
lacks = set(json.loads(sys.argv[1]))
class AsvEnvironmentLacks(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in lacks:
            raise ModuleNotFoundError(f"No module named {name!r} (asv's environment lacks it)",
                                      name=name)
sys.meta_path.insert(0, AsvEnvironmentLacks())
_discover(sys.argv[2:4])
"""


def discover_in_asv_environment(benchmark_dir: Path | None = None) -> list[dict]:
    """asv's own discovery of the suite (asv_runner's, as ``asv run`` calls it), in this
    interpreter with every module asv's environment lacks made unimportable: the benchmarks
    it finds, or CheckFailed with the traceback of the import that failed."""
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        found = Path(folder) / "benchmarks.json"
        out = subprocess.run([sys.executable, "-c", DISCOVER,
                              json.dumps(sorted(modules_asv_lacks(conf))),
                              str(benchmark_dir or ROOT / conf["benchmark_dir"]), str(found)],
                             cwd=folder, capture_output=True, text=True)
        if out.returncode:
            raise CheckFailed(f"asv's environment ({' '.join(asv_requirements(conf)[:-4])}) "
                              f"cannot import the benchmark suite:\n{out.stderr[-3000:]}")
        return json.loads(found.read_text())


def git(*args: str, env: dict | None = None, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True,
                          env=env, input=input).stdout.strip()


def fresh_config(folder: Path) -> Path:
    """asv.conf.json with absolute paths and the results and HTML in ``folder``."""
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / conf["benchmark_dir"]),
                env_dir=str(ROOT / conf["env_dir"]), results_dir=str(folder / "results"),
                html_dir=str(folder / "html"))
    path = folder / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=2))
    return path


def ratios(output: str) -> dict[str, tuple[float, bool]]:
    """Benchmark -> (head time / base time, flagged) from asv's comparison table."""
    rows = (ROW.match(line) for line in output.splitlines())
    return {m["name"]: (float(m["ratio"]), m["mark"] == "+") for m in rows if m}


def check(base: str, head: str, factor: float, sizes=SIZES) -> tuple[int, str]:
    """(asv's exit status, its output) of one comparison in a fresh results folder."""
    with tempfile.TemporaryDirectory(prefix="fastopt-asv-") as folder:
        config = fresh_config(Path(folder))
        out = subprocess.run([*ASV, "continuous", "--config", str(config), *ASV_OPTIONS,
                              "--factor", str(factor), "--bench", bench_regex(sizes), base, head],
                             cwd=ROOT, capture_output=True, text=True,
                             env=dict(os.environ, NUMBA_NUM_THREADS="1"))
    output = out.stdout + out.stderr
    if out.returncode and not ratios(output):
        raise CheckFailed(f"asv stopped before comparing {base} and {head}:\n{output[-4000:]}")
    return out.returncode, output


def slower(output: str) -> list[str]:
    """The benchmarks asv flagged, with their ratios, slowest first."""
    rows = sorted(ratios(output).items(), key=lambda kv: -kv[1][0])
    return [f"{name} {ratio:.2f}x" for name, (ratio, flagged) in rows if flagged]


# -- the self-test: commits made with git plumbing, no branch or work tree touched ----------
def commit_with(changes: dict[str, str], message: str) -> str:
    """A commit on top of HEAD whose files are HEAD's with ``changes`` (path -> text)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(tmp) / "index"))
        git("read-tree", "HEAD", env=env)
        for path, text in changes.items():
            blob = git("hash-object", "-w", "--stdin", input=text)
            git("update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git("write-tree", env=env)
    author = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
              for what, value in (("NAME", "regression check"), ("EMAIL", "check@localhost"))}
    return git("commit-tree", tree, "-p", "HEAD", "-m", message, env=dict(os.environ, **author))


def slowed_element(source: str) -> str:
    """The rule module with every ``p[i] = X`` of its element body made ``p[i] = x*(x/x)``:
    one more division and multiplication per element, bit-identical for finite nonzero x."""
    slowed, count = re.subn(r"^(\s+)p\[i\] = (.+)$",
                            r"\1slow_x = \2\n\1p[i] = slow_x * (slow_x / slow_x)", source,
                            flags=re.M)
    assert count, "no 'p[i] = ...' line to slow down"
    return slowed


def measured_slowdown(rule: str, slowed_source: str, n: int = 100_000) -> float:
    """The slowed loop's time over the original's at n float32 elements, in one process,
    interleaved (the median of 11 rounds)."""
    code = f"""
import dataclasses, sys, timeit
import numpy as np
from fastopt.kernels import RULES
from fastopt.kernels._cpu import CpuKernel
rule = RULES[{rule!r}]
namespace = dict(vars(sys.modules[rule.cpu_element.__module__]))
exec(compile({slowed_source!r}, "<slowed>", "exec"), namespace)
hp = rule.checked({rule!r}, rule.defaults)
fast = CpuKernel(rule, rule.variant(hp))
slow = CpuKernel(dataclasses.replace(rule, cpu_element=namespace["cpu_element"]), rule.variant(hp))
rng = np.random.default_rng(0)
p = rng.standard_normal({n}).astype(np.float32); g = p * np.float32(1e-3)
state = tuple(np.full({n}, 1e-3, np.float32) for _ in rule.state)
s = rule.kernel_scalars(rule.host_scalars(hp, 3, 1e-3, dict(rule.extra))[0], np.float32)
f, w = fast.for_array(p, g, 0), slow.for_array(p, g, 0)
ratios = []
for _ in range(11):
    a = min(timeit.repeat(lambda: f(state, s), number=200, repeat=3))
    b = min(timeit.repeat(lambda: w(state, s), number=200, repeat=3))
    ratios.append(b / a)
print(sorted(ratios)[5])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                         text=True)
    return float(out.stdout.split()[-1])


def self_test(rule: str, factor: float, tries: int, sizes=SIZES) -> int:
    from fastopt.kernels import RULES

    module_path = Path(sys.modules[RULES[rule].cpu_element.__module__].__file__)
    rel = f"kernels/{module_path.name}"
    slowed = slowed_element(git("show", f"HEAD:{rel}"))
    readme = git("show", "HEAD:README.md") + "\n\n<!-- a documentation-only change -->\n"
    docs = commit_with({"README.md": readme}, "regression check self-test: README only")
    slow = commit_with({rel: slowed}, f"regression check self-test: slower {rule} loop")
    print(f"{rule}'s numba loop slowed {measured_slowdown(rule, slowed):.2f}x at 1e5 float32 "
          f"(redundant division; measured in one process)")
    tally = {"docs": [], "slow": []}
    for attempt in range(tries):
        for kind, commit in (("docs", docs), ("slow", slow)):
            start = time.perf_counter()
            status, output = check("HEAD", commit, factor, sizes)
            rows = ratios(output)
            flagged = [name for name, (_, plus) in rows.items() if plus]
            slowest = max(rows.items(), key=lambda kv: kv[1][0], default=("none", (0.0, False)))
            target = next((r for name, (r, _) in rows.items() if f"'{rule}', 'numba', 100000"
                           in name), float("nan"))
            tally[kind].append(bool(status))
            print(f"[{attempt + 1}/{tries}] {kind}: exit {status}, flagged {flagged or 'nothing'}; "
                  f"{rule} 1e5 ratio {target:.2f}, highest {slowest[1][0]:.2f} "
                  f"({slowest[0]}); {time.perf_counter() - start:.0f} s", flush=True)
    print(f"slow commit flagged {sum(tally['slow'])}/{tries}; "
          f"documentation commit flagged {sum(tally['docs'])}/{tries}")
    return 0 if all(tally["slow"]) and not any(tally["docs"]) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", nargs="?", default="main")
    parser.add_argument("head", nargs="?", default="HEAD")
    parser.add_argument("--factor", type=float, default=1.15,
                        help="flag a benchmark this many times slower (default 1.15)")
    parser.add_argument("--self-test", action="store_true",
                        help="check the check on a documentation-only and a slowed commit")
    parser.add_argument("--slow-rule", default="Adam", help="the rule the self-test slows")
    parser.add_argument("--tries", type=int, default=3, help="self-test comparisons of each kind")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                        help="sizes to compare (default: 100000)")
    args = parser.parse_args()
    try:
        require_asv()
        record_machine()
        discover_in_asv_environment()
        if args.self_test:
            return self_test(args.slow_rule, args.factor, args.tries, args.sizes)
        start = time.perf_counter()
        status, output = check(args.base, args.head, args.factor, args.sizes)
    except CheckFailed as failure:
        print(f"regression check: {failure}", file=sys.stderr)
        return 2
    print(output)
    found = slower(output)
    print(f"{args.head} against {args.base}: " + (
        "slower: " + "; ".join(found) if found else
        f"nothing slower by more than {args.factor}x") +
        f" ({time.perf_counter() - start:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
