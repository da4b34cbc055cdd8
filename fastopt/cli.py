"""``python -m fastopt``: train a network on handwritten digits with every rule, and more.

    python -m fastopt            # an MLP on scikit-learn's 8x8 digits: every rule, backend
    python -m fastopt classic    # the classic test functions, against their optima
    python -m fastopt bench      # time per step, GB/s, speedup over NumPy, % of copy
    python -m fastopt info       # versions, threads, GPU
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from typing import Any, Sequence

import numpy as np

from . import __version__, optimizers
from .backends import available_backends
from ._minimize import minimize
from ._result import host_array
from .problems import Problem, classic_problems, param_view

RULE_NAMES = tuple(optimizers.__all__)
# torch's spelling where it differs (NAdam), accepted wherever a rule is named
TORCH_SPELLINGS = {cls.rule.torch_class: name for name, cls in optimizers.CLASSES.items()
                   if cls.rule.torch_class not in (None, name)}


def _rule(text: str) -> str:
    """A rule's name as fastopt spells it (torch's spelling taken too)."""
    return TORCH_SPELLINGS.get(text, text)


def _run(problem: Problem, rule: str, backend: str, steps: int) -> tuple[float, float]:
    """(final loss, seconds per opt.step) of ``steps`` steps of ``rule`` on ``problem``.

    The problems compute on the host; on the cupy backend x lives on the GPU and each
    gradient is copied over before the step (the step alone is timed)."""
    if backend == "cupy":
        import cupy as xp
        sync = xp.cuda.Device().synchronize
    else:
        xp, sync = np, lambda: None
    x = xp.asarray(problem.x0.copy())
    view = param_view(rule, x)              # (a matrix of x for Muon)
    opt = getattr(optimizers, rule)(view, lr=problem.lr[rule], backend=backend)
    in_step = 0.0
    with np.errstate(all="ignore"):
        for _ in range(steps):
            _, g = problem.loss_and_grad(host_array(x))
            g = xp.asarray(g).reshape(view.shape)
            t0 = time.perf_counter()
            opt.step(g)
            sync()
            in_step += time.perf_counter() - t0
        f, _ = problem.loss_and_grad(host_array(x))
    return f, in_step / steps


def classic(rules: Sequence[str], backends: Sequence[str], steps: int | None) -> None:
    print(f"fastopt {__version__}: each rule on classic test functions, every available "
          f"backend\n")
    width = max([9] + [len(rule) for rule in rules])
    header = (f"{'problem':<11} {'optimum':>9} {'rule':<{width}} {'lr':>8} {'backend':<8} "
              f"{'final loss':>12} {'steps':>6} {'us/step':>9}")
    print(header)
    print("-" * len(header))
    for problem in classic_problems():
        n = steps or problem.steps
        optimum = problem.f_min if problem.f_min is not None else minimize(
            problem.loss_and_grad, problem.x0, jac=True, backend="numpy",
            options=dict(gtol=1e-10, ftol=0.0)).fun          # found by L-BFGS
        for rule in rules:
            for backend in backends:
                f, sec = _run(problem, rule, backend, n)
                print(f"{problem.name:<11} {optimum:>9.4g} {rule:<{width}} "
                      f"{problem.lr[rule]:>8.3g} {backend:<8} {f:>12.4g} {n:>6} "
                      f"{sec * 1e6:>9.1f}", flush=True)
    print("\nL-BFGS (fastopt.minimize) on the same problems\n")
    header = f"{'problem':<11} {'backend':<8} {'final loss':>12} {'nit':>5} {'nfev':>5} {'ms':>8}  message"
    print(header)
    print("-" * len(header))
    for problem in classic_problems():
        for backend in backends:
            xp = np
            if backend == "cupy":
                import cupy as xp

            def fun(x, problem=problem, xp=xp):
                f, g = problem.loss_and_grad(host_array(x))
                return f, xp.asarray(g)
            t0 = time.perf_counter()
            r = minimize(fun, xp.asarray(problem.x0), jac=True, backend=backend)
            ms = (time.perf_counter() - t0) * 1e3
            print(f"{problem.name:<11} {backend:<8} {r.fun:>12.4g} {r.nit:>5} {r.nfev:>5} "
                  f"{ms:>8.1f}  {r.message}", flush=True)
    print(f"\nx0: rosenbrock {classic_problems()[0].x0.size}-d from (-1.2, 1); quadratic "
          f"n={classic_problems()[1].x0.size}, condition 100; logistic regression, 50 features. "
          "us/step times opt.step alone;\nthe first numba rows after installing include numba's "
          "one-time compilation (cached on disk afterwards).")


def digits_demo(rules: Sequence[str], backends: Sequence[str], epochs: int, batch_size: int,
                seed: int, plot: str | None) -> list:
    """The main job: the digits MLP trained by every rule on every backend, then L-BFGS on
    full-batch softmax regression beside SciPy's."""
    from . import digits
    from .gradcheck import check_grad

    split = digits.load_split(seed)
    n_train, n_val, n_test = len(split.y_train), len(split.y_val), len(split.y_test)
    batch_size = min(batch_size, n_train)
    print(f"fastopt {__version__}: an MLP 64-{digits.HIDDEN}-10 (tanh, softmax, "
          f"cross-entropy) on scikit-learn's 8x8 digits\n{n_train} train / {n_val} "
          f"validation / {n_test} test images; mini-batches of {batch_size}; up to {epochs} "
          f"epochs, early stopping on the validation loss (best epoch kept); seed {seed}"
          + "".join(f"\n{r}: whole batches (a full-batch method)" for r in rules
                    if optimizers.CLASSES[r].rule.full_batch) + "\n")
    params = digits.init_params(seed)
    x, y = split.x_train[:50], split.y_train[:50]
    shapes = [p.shape for p in params]
    flat = np.concatenate([p.ravel() for p in params])

    def unflat(v):
        return [a.reshape(s) for a, s in zip(np.split(v, np.cumsum([np.prod(s) for s in
                                                                    shapes])[:-1]), shapes)]
    error = check_grad(lambda v: digits.loss(unflat(v), x, y),
                       lambda v: np.concatenate([g.ravel() for g in
                                                 digits.loss_and_grads(unflat(v), x, y)[1]]), flat)
    norm = np.linalg.norm(np.concatenate([g.ravel() for g in
                                          digits.loss_and_grads(params, x, y)[1]]))
    verdict = "right" if error < 1e-4 * max(norm, 1.0) else "WRONG"
    print(f"backprop checked against finite differences (fastopt.check_grad, 50 images): "
          f"|error| = {error:.1e} for a gradient of norm {norm:.2f}: {verdict}\n")
    runs = [(r, label, hp, b) for r, label, hp in digits.demo_runs(list(rules)) for b in backends]
    width = max([14] + [len(label) for _, label, _, _ in runs])
    header = (f"{'rule':<{width}} {'backend':<8} {'lr':>7} {'epochs':>6} {'best':>4} "
              f"{'train loss':>10} {'test acc':>8} {'us/step':>8} {'ms/epoch':>9}")
    progress = _progress(len(runs))
    results = []
    for rule, label, hp, backend in runs:
        progress.set_description(f"{label} {backend}")
        results.append(digits.train(rule, hp, split, backend, epochs, batch_size, seed,
                                    label=label))
        progress.update()
    progress.close()
    _table(header, (f"{r.label:<{width}} {r.backend:<8} {r.lr:>7.3g} {r.epochs:>6} "
                    f"{r.best_epoch:>4} "
                    f"{r.train_loss:>10.4f} {r.test_accuracy:>8.2%} "
                    f"{r.seconds_per_step * 1e6:>8.1f} {r.seconds_per_epoch * 1e3:>9.1f}"
                    for r in results))
    print("\nepochs: those run; best: the epoch of the lowest validation loss, whose params "
          "give the train loss and test accuracy;\nus/step: opt.step alone (the kernels were "
          "compiled when each optimizer was built).")
    _lbfgs_beside_scipy(split, backends)
    if plot:
        _plot_curves(results, plot)
        print(f"\nvalidation curves written to {plot}")
    return results


def _table(header: str, rows: Any) -> None:
    """A header, a rule under it, then the rows."""
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row, flush=True)


def _lbfgs_beside_scipy(split, backends: Sequence[str]) -> None:
    from . import digits

    fun = digits.softmax_regression(split)
    w0 = np.zeros((split.x_train.shape[1] + 1) * 10)
    print(f"\nL-BFGS, full-batch softmax regression of the training set ({w0.size} weights, "
          f"L2 1e-3)")
    header = f"{'solver':<24} {'f':>10} {'nit':>5} {'nfev':>5} {'test acc':>8} {'ms':>8}"
    print(header)
    print("-" * len(header))
    solvers = [(f"fastopt.minimize {b}", lambda b=b: minimize(fun, w0, jac=True, backend=b))
               for b in backends if b != "cupy"]
    try:
        import scipy.optimize
        solvers.append(("scipy L-BFGS-B", lambda: scipy.optimize.minimize(
            fun, w0, jac=True, method="L-BFGS-B")))
    except ImportError:
        pass
    for name, solve in solvers:     # each warmed up (numba compiles), then the best of 3
        r = solve()
        ms = 1e3 * min(_seconds(solve) for _ in range(3))
        acc = digits.softmax_accuracy(r.x, split.x_test, split.y_test)
        print(f"{name:<24} {r.fun:>10.6f} {r.nit:>5} {r.nfev:>5} {acc:>8.2%} {ms:>8.1f}")


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _plot_curves(results: list, path: str) -> None:
    """Validation loss per epoch, one line per rule (its first backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    seen: list = []
    for r in results:
        if r.label in seen:
            continue
        seen.append(r.label)
        k = len(seen) - 1                  # ten distinct colours, then dashed lines
        ax.plot(range(1, len(r.val_losses) + 1), r.val_losses, color=plt.cm.tab10(k % 10),
                ls="-" if k < 10 else "--", label=f"{r.label} (lr {r.lr:g})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (cross-entropy, log scale)")
    ax.set_title("fastopt: MLP on the 8x8 digits, one line per rule")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _checked_plot(parser: argparse.ArgumentParser, plot: str | None) -> str | None:
    """--plot's file checked before any work starts: matplotlib installed, the folder
    there, a format matplotlib writes (no extension: .png is added)."""
    if not plot:
        return plot
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        parser.error("--plot needs matplotlib: pip install matplotlib "
                     "(or the demo extra: pip install \"fastopt[demo]\")")
    import os

    root, ext = os.path.splitext(plot)
    if not ext:
        plot += ".png"
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if ext and ext[1:].lower() not in formats:
        parser.error(f"--plot {plot}: matplotlib writes {', '.join(sorted(formats))}, "
                     f"not {ext[1:]!r}")
    folder = os.path.dirname(os.path.abspath(plot))
    if not os.path.isdir(folder):
        parser.error(f"--plot {plot}: the folder {folder} does not exist")
    return plot


MAX_SIZE = 10 ** 10          # elements: 40 GB of float32 per array


def _parse_size(text: str) -> int:
    """A whole number of elements, written 1000 or 1e6, from 1 to MAX_SIZE."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be a number like 1e6, got {text!r}") from None
    if not (x.is_integer() and 1 <= x <= MAX_SIZE):
        raise argparse.ArgumentTypeError(f"size must be a whole number from 1 to 1e10, got "
                                         f"{text!r}")
    return int(x)


def _refuse_unknown_options(parser: argparse.ArgumentParser, given: Sequence[str],
                            parsers: Sequence[argparse.ArgumentParser]) -> None:
    """An error naming an option no command has (argparse would take its value for the
    command: "invalid choice: '0.1'" for ``--lr 0.1``)."""
    known = {o for p in parsers for a in p._actions for o in a.option_strings}
    for token in given:
        name = token.split("=")[0]
        if name.startswith("--") and name != "--" and name not in known:
            hint = (" (the demo trains each rule with its own tuned lr, shown in its table "
                    "and recorded in the rule's description)" if name == "--lr" else "")
            parser.error(f"unknown option {name}{hint}; see python -m fastopt [demo|classic|"
                         "bench] --help")


def _check_memory(parser: argparse.ArgumentParser, rules: Sequence[str],
                  backends: Sequence[str], sizes: Sequence[int], dtypes: Sequence[str]) -> None:
    """An error before anything is allocated when the largest case would not fit in the
    memory its backend has free."""
    from ._bench import memory_available, memory_needed

    for backend in backends:
        free = memory_available(backend)
        cases = [(memory_needed(r, b, n, d), r, n, d) for r in rules for n in sizes
                 for d in dtypes for b in {backend, "numpy"}]
        need, rule, n, dtype = max(cases)
        if free is not None and need > free:
            where = "the GPU" if backend == "cupy" else "this machine"
            parser.error(f"bench: {rule} at --sizes {n:.3g} in {dtype} needs about "
                         f"{need / 2 ** 30:.1f} GiB (params, grad, state and the NumPy "
                         f"reference's temporaries); {where} has {free / 2 ** 30:.1f} GiB "
                         "free: give smaller sizes")


def _duration(text: str) -> float:
    """A time in seconds: a finite number > 0."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return x


def _progress(total: int):
    """tqdm's bar where installed (the demo and bench extras), else a plain counter; both
    on stderr, and silent when stderr is not a terminal (a log stays readable)."""
    import sys

    try:
        from tqdm import tqdm
        return tqdm(total=total, unit="case", leave=False, disable=None)
    except ImportError:
        class Counter:
            done = 0

            def set_description(self, text: str) -> None:
                if sys.stderr.isatty():
                    sys.stderr.write(f"\r[{self.done}/{total}] {text:<40}")

            def update(self, k: int = 1) -> None:
                self.done += k

            def close(self) -> None:
                if sys.stderr.isatty():
                    sys.stderr.write("\r" + " " * 60 + "\r")
        return Counter()


def bench(rules: Sequence[str], backends: Sequence[str], sizes: Sequence[int],
          dtypes: Sequence[str], min_time: float, plot: str | None) -> list[dict]:
    """Time one opt.step per (rule, backend, size, dtype) and print the table."""
    from ._bench import copy_bandwidth, measure_step

    cases = [(r, b, n, d) for n in sizes for d in dtypes for r in rules for b in backends]
    refs = {(r, n, d) for r, _, n, d in cases}
    extra_refs = refs - {(r, n, d) for r, b, n, d in cases if b == "numpy"}
    progress = _progress(len(cases) + len(extra_refs))
    numpy_seconds, rows = {}, []

    def timed(rule, backend, n, dtype):
        progress.set_description(f"{rule} {backend} {n:.0e} {dtype}")
        t = measure_step(rule, backend, n, dtype, min_time)
        progress.update()
        return t

    for rule, backend, n, dtype in cases:
        # the roofline right before each case: a shared machine's bandwidth drifts
        copy = copy_bandwidth(backend, n, dtype, min_time)
        t = timed(rule, backend, n, dtype)
        if backend == "numpy":
            numpy_seconds[rule, n, dtype] = t.seconds
        elif (rule, n, dtype) not in numpy_seconds:
            numpy_seconds[rule, n, dtype] = timed(rule, "numpy", n, dtype).seconds
        rows.append(dict(rule=rule, backend=backend, n=n, dtype=dtype, us=t.seconds * 1e6,
                         gbps=t.gbps, speedup=numpy_seconds[rule, n, dtype] / t.seconds,
                         of_copy=t.gbps / copy, copy=copy))
    progress.close()
    width = max([9] + [len(r["rule"]) for r in rows])
    header = (f"{'rule':<{width}} {'backend':<8} {'n':>7} {'dtype':<8} {'us/step':>10} "
              f"{'GB/s':>7} {'x NumPy':>8} {'% copy':>7} {'copy GB/s':>10}")
    _table(header, (f"{r['rule']:<{width}} {r['backend']:<8} {r['n']:>7.0e} {r['dtype']:<8} "
                    f"{r['us']:>10.1f} {r['gbps']:>7.1f} {r['speedup']:>8.1f} "
                    f"{100 * r['of_copy']:>6.0f}% {r['copy']:>10.1f}" for r in rows))
    print("\ncopy: an in-place read-modify-write of one array on the host, a device copy on "
          "the GPU, timed right before each row (read + write counted)")
    if plot:
        _plot(rows, plot)
        print(f"plot written to {plot}")
    return rows


def _plot(rows: list[dict], path: str) -> None:
    """Throughput against size, one panel per rule, one line per backend (and dtype)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = list(dict.fromkeys(r["rule"] for r in rows))
    cols = min(4, len(rules))
    nrows = (len(rules) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.0 * nrows), squeeze=False,
                             sharex=True, sharey=True)
    for ax, rule in zip(axes.flat, rules):
        mine = [r for r in rows if r["rule"] == rule]
        for key in dict.fromkeys((r["backend"], r["dtype"]) for r in mine):
            line = sorted((r["n"], r["gbps"]) for r in mine if (r["backend"], r["dtype"]) == key)
            ax.plot(*zip(*line), marker="o", label=f"{key[0]} {key[1]}")
        copy = {}
        for r in mine:
            if r["backend"] != "cupy":
                copy[r["n"]] = max(copy.get(r["n"], 0.0), r["copy"])
        if copy:
            ax.plot(*zip(*sorted(copy.items())), ls="--", color="gray", label="host copy")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(rule)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("elements")
    for ax in axes[:, 0]:
        ax.set_ylabel("effective GB/s")
    for ax in list(axes.flat)[len(rules):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("fastopt: bytes a step must move / time per step")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def info() -> None:
    import os

    print(f"fastopt {__version__}")
    print(f"python  {platform.python_version()} ({platform.machine()}, {os.cpu_count()} cpus)")
    print(f"numpy   {np.__version__}")
    try:
        import numba
        print(f"numba   {numba.__version__} ({numba.get_num_threads()} threads, "
              f"layer {numba.config.THREADING_LAYER})")
    except ImportError:
        print("numba   not installed (pip install numba)")
    try:
        import cupy
        dev = cupy.cuda.Device()
        name = cupy.cuda.runtime.getDeviceProperties(dev.id)["name"].decode()
        print(f"cupy    {cupy.__version__} (GPU {dev.id}: {name})")
    except ImportError:
        print("cupy    not installed (pip install cupy-cuda12x for the GPU backend)")
    except Exception as exc:  # cupy present but no usable device
        print(f"cupy    installed, no usable GPU ({exc})")
    print(f"backends available: {', '.join(available_backends())}")


def _seed(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= n < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {text!r}")
    return n


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastopt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train an MLP on the digits with every rule (default)")
    demo_defaults = dict(rules=list(RULE_NAMES), backends=None, epochs=60, batch_size=32,
                         seed=0, plot=None)
    for p, top in ((parser, True), (d, False)):
        def default(name, top=top):      # the subcommand keeps what came before it
            return demo_defaults[name] if top else argparse.SUPPRESS
        p.add_argument("--rules", nargs="+", type=_rule, choices=RULE_NAMES,
                       default=default("rules"), help="rules to run (default: all); torch's "
                       f"spellings too ({', '.join(TORCH_SPELLINGS)})")
        p.add_argument("--backends", nargs="+", default=default("backends"),
                       help="host backends to run (default: every available one)")
        p.add_argument("--epochs", type=_positive_int, default=default("epochs"),
                       help="most epochs per run (default 60; early stopping may end sooner)")
        p.add_argument("--batch-size", type=_positive_int, default=default("batch_size"),
                       help="default 32")
        p.add_argument("--seed", type=_seed, default=default("seed"),
                       help="data split, init and batches (default 0)")
        p.add_argument("--plot", metavar="FILE.png", default=default("plot"),
                       help="draw the validation loss per epoch of every rule (matplotlib)")
    c = sub.add_parser("classic", help="minimise classic test functions with every rule")
    c.add_argument("--rules", nargs="+", type=_rule, choices=RULE_NAMES,
                   default=argparse.SUPPRESS)
    c.add_argument("--backends", nargs="+", default=argparse.SUPPRESS)
    c.add_argument("--steps", type=_positive_int, default=None,
                   help="steps per run (default: each problem's own)")
    i = sub.add_parser("info", help="versions, threads and the GPU")
    b = sub.add_parser("bench", help="time per step, GB/s, x over NumPy, %% of copy bandwidth")
    b.add_argument("--rules", nargs="+", type=_rule, choices=RULE_NAMES,
                   default=argparse.SUPPRESS)
    b.add_argument("--backends", nargs="+", default=argparse.SUPPRESS,
                   help="default: every available backend")
    b.add_argument("--sizes", nargs="+", type=_parse_size, default=None,
                   help="elements per param (default: 1e3 1e5 1e7, and 1e8 with cupy)")
    b.add_argument("--dtypes", nargs="+", choices=["float32", "float64", "bfloat16", "float16"],
                   default=["float32"], help="params' and grads' dtypes (16-bit ones keep "
                   "float32 state; bfloat16 needs ml_dtypes)")
    b.add_argument("--min-time", type=_duration, default=0.2, help="seconds per measurement")
    b.add_argument("--plot", metavar="FILE.png", help="draw GB/s against size (matplotlib)")
    given = sys.argv[1:] if argv is None else list(argv)
    _refuse_unknown_options(parser, given, [parser, d, c, i, b])
    command_at = next((i for i, a in enumerate(given) if a in ("classic", "bench", "info")),
                      None)
    args = parser.parse_args(argv)
    if command_at is not None and args.command != "demo" and command_at > 0 and \
            any(a.split("=")[0] in ("--epochs", "--batch-size", "--seed", "--plot")
                for a in given[:command_at]):
        parser.error(f"the options before '{args.command}' are the demo's; put "
                     f"{args.command}'s own after it")
    if args.command == "info":
        info()
        return 0
    backends = args.backends or available_backends()
    unknown = sorted(set(backends) - set(available_backends()))
    if unknown:
        parser.error(f"backend(s) {', '.join(unknown)} not available here; available: "
                     f"{', '.join(available_backends())}")
    if args.command == "bench":
        args.plot = _checked_plot(parser, args.plot)
        sizes = args.sizes or [1_000, 100_000, 10_000_000] + (
            [100_000_000] if "cupy" in backends else [])
        _check_memory(parser, args.rules, backends, sizes, args.dtypes)
        try:
            bench(args.rules, backends, sizes, args.dtypes, args.min_time, args.plot)
        except MemoryError as exc:      # what the estimate did not foresee
            parser.error(f"bench ran out of memory ({exc}); give smaller --sizes")
        return 0
    if args.command == "classic":
        classic(args.rules, backends, args.steps)
        return 0
    plot = _checked_plot(parser, args.plot)
    if args.backends and "cupy" in args.backends:
        parser.error("the demo's network computes on the host; the GPU backend is timed by "
                     "'python -m fastopt bench --backends cupy'")
    digits_demo(args.rules, [b for b in backends if b != "cupy"], args.epochs,
                args.batch_size, args.seed, plot)
    return 0
