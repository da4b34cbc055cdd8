"""asv: every registered rule x backend x size, float32 (float64 at 1e7; 1e8 on the GPU).

``time_steps`` times warm steps: setup builds the optimizer once per process (state
allocated, kernels compiled or loaded from numba's cache) and takes a few steps; each
sample is then one call running a fixed batch of ``steps_per_sample(backend, n)`` steps
(10-100 ms of work on the 2-core machine, long enough to beat timer and Python noise) and
one device sync. asv reports seconds per batch; the batch size depends only on the
parameters, so two commits are always compared on the same work. 1e3 is Python-bound,
1e5 compute-bound (in cache: a slower loop body shows here) and 1e7 bandwidth-bound.

``track_time_over_numpy`` (this backend's step time over the NumPy reference's) and
``track_time_over_copy`` (step time over the time a copy moving the same bytes takes; 1 is
the roofline) are ratios where lower is better, as asv assumes. They are single values
without a spread, so they chart history (``asv publish``) and the regression check
(benchmarks/regression_check.py) leaves them out. Combinations that cannot run here raise
NotImplementedError in setup, which asv reports as skipped.
"""
from fastopt._bench import copy_bandwidth, seconds_per_call, step_case
from fastopt.kernels import RULES as REGISTERED

RULES = [name for name, rule in REGISTERED.items() if rule.takes_any_shape]  # (bench_whole:
#                                                                      Muon's matrices)
BACKENDS = ["numpy", "numba", "cupy"]
WARM_STEPS = 2
TRACK_TIME = 0.1            # seconds each side of a track_* ratio is timed for
# elements processed per sample: each backend's batch lasts ~10-100 ms on the host
ELEMENTS_PER_SAMPLE = {"numpy": 3e6, "numba": 3e7, "cupy": 3e9}
_cases: dict = {}


def steps_per_sample(backend: str, n: int) -> int:
    """How many steps one timed call runs: a function of the parameters only."""
    return int(min(10_000, max(2, ELEMENTS_PER_SAMPLE[backend] // n)))


def warm_case(rule: str, backend: str, n: int, dtype: str):
    """The optimizer of these parameters, built once per process and stepped WARM_STEPS
    times (NotImplementedError where the backend cannot run)."""
    return warm(step_case, rule, backend, n, dtype)


def warm(build, *args, **kwargs):
    """``build(*args, **kwargs)``, a StepCase, built once per process and stepped
    WARM_STEPS times."""
    key = (build, args, tuple(kwargs.items()))
    if key not in _cases:
        case = build(*args, **kwargs)
        for _ in range(WARM_STEPS):
            case.step()
        case.sync()
        _cases[key] = case
    return _cases[key]


class RuleStep:
    """float32 at 1e3 (per-call overhead), 1e5 (compute) and 1e7 (memory bandwidth)."""

    params = (RULES, BACKENDS, [1_000, 100_000, 10_000_000])
    param_names = ["rule", "backend", "n"]
    dtype = "float32"
    timeout = 300
    number = 1                  # one call per sample; the call runs a batch of steps
    repeat = (10, 20, 5.0)      # samples: at least 10, at most 20, for at most 5 s
    warmup_time = 0.05

    def setup(self, rule, backend, n):
        self.case = warm_case(rule, backend, n, self.dtype)
        self.steps = steps_per_sample(backend, n)

    def time_steps(self, rule, backend, n):
        step = self.case.step
        for _ in range(self.steps):
            step()
        self.case.sync()

    def track_time_over_numpy(self, rule, backend, n):
        reference = warm_case(rule, "numpy", n, self.dtype)
        slow = seconds_per_call(reference.step, TRACK_TIME)
        fast = seconds_per_call(self.case.step, TRACK_TIME, sync=self.case.sync)
        return fast / slow

    track_time_over_numpy.unit = "x NumPy time"

    def track_time_over_copy(self, rule, backend, n):
        seconds = seconds_per_call(self.case.step, TRACK_TIME, sync=self.case.sync)
        copy = copy_bandwidth(backend, n, self.dtype, TRACK_TIME)
        return seconds / (self.case.bytes_per_step / 1e9 / copy)

    track_time_over_copy.unit = "x copy time"


class RuleStepFloat64(RuleStep):
    """float64 where it matters: at 1e7 it moves twice the bytes of float32 (step times only:
    the float32 ratios already chart the speedup and the roofline)."""

    params = (RULES, BACKENDS, [10_000_000])
    dtype = "float64"
    track_time_over_numpy = track_time_over_copy = None


class RuleStepGPU(RuleStep):
    """1e8 float32 on the GPU, where launch costs vanish against the bandwidth."""

    params = (RULES, ["cupy"], [100_000_000])
