"""asv: AdamW with fewer bytes a param (16-bit params and grads; bfloat16 or 8-bit state),
on numba at 1e5 (in cache) and 1e7, and on the GPU at 1e8 (float16 and 8-bit: CuPy has no
bfloat16). Batches of steps as bench_rules.RuleStep times them; ``track_time_over_float32``
is the step time over the float32 step's on the same backend (lower is better). Modes
this environment cannot run (no ml_dtypes, no GPU) raise NotImplementedError in setup,
which asv reports as skipped.
"""
from fastopt._bench import seconds_per_call, step_case

from . import bench_rules
from .bench_rules import TRACK_TIME, steps_per_sample, warm

# mode -> (params' dtype, precision keywords as (name, value) pairs)
MODES = {
    "bfloat16 params": ("bfloat16", ()),
    "float16 params, master": ("float16", (("master_weights", True),)),
    "bfloat16 state": ("float32", (("state_dtype", "bfloat16"),)),
    "int8 state": ("float32", (("state_dtype", "int8"),)),
    "bfloat16 params, int8 state, stochastic": ("bfloat16", (("state_dtype", "int8"),
                                                             ("stochastic_rounding", True))),
}


def precision_case(mode: str, backend: str, n: int):
    dtype, precision = MODES[mode]
    if "bfloat16" in mode:
        try:
            import ml_dtypes  # noqa: F401
        except ImportError:
            raise NotImplementedError("bfloat16 needs ml_dtypes") from None
        if backend == "cupy":
            raise NotImplementedError("CuPy has no bfloat16 arrays")
    return warm(step_case, "AdamW", backend, n, dtype, options=precision)


class PrecisionStep(bench_rules.RuleStep):     # (the module: asv lists a class imported here)
    """bench_rules.RuleStep's batches of warm steps, per precision mode (its own ratio: the
    time over float32's, not NumPy's)."""

    params = (list(MODES), ["numba", "cupy"], [100_000, 10_000_000, 100_000_000])
    param_names = ["mode", "backend", "n"]
    track_time_over_numpy = track_time_over_copy = None

    def setup(self, mode, backend, n):
        if (backend == "cupy") != (n == 100_000_000):
            raise NotImplementedError("1e8 on the GPU, 1e5 and 1e7 on the CPU")
        self.case = precision_case(mode, backend, n)
        self.steps = steps_per_sample(backend, n)

    def track_time_over_float32(self, mode, backend, n):
        plain = warm(step_case, "AdamW", backend, n, "float32")
        base = seconds_per_call(plain.step, TRACK_TIME, sync=plain.sync)
        ours = seconds_per_call(self.case.step, TRACK_TIME, sync=self.case.sync)
        return ours / base

    track_time_over_float32.unit = "x float32 time"
