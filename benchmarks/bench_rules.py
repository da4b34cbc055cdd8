"""asv: every update rule x every backend x size (x float64 at 1e7; 1e8 on the GPU).

time_step is one opt.step (waiting for the GPU); track_speedup_over_numpy is the NumPy
reference's time over this backend's at the same size; track_fraction_of_copy is the
effective bandwidth (the bytes the rule must move / time) over the device's copy
bandwidth measured in the same process. Combinations that cannot run here raise
NotImplementedError in setup, which asv reports as skipped.
"""
from fastopt._bench import copy_bandwidth, seconds_per_call, step_case
from fastopt.kernels import RULES as REGISTERED

RULES = list(REGISTERED)
BACKENDS = ["numpy", "numba", "cupy"]


class RuleStep:
    """float32 at 1e3 (per-call overhead), 1e5 (caches) and 1e7 (memory bandwidth)."""

    params = (RULES, BACKENDS, [1_000, 100_000, 10_000_000])
    param_names = ["rule", "backend", "n"]
    dtype = "float32"
    timeout = 300

    def setup(self, rule, backend, n):
        self.case = step_case(rule, backend, n, self.dtype)  # NotImplementedError: skipped

    def time_step(self, *params):
        self.case.step()
        self.case.sync()

    def track_speedup_over_numpy(self, rule, backend, n):
        reference = step_case(rule, "numpy", n, self.dtype)
        slow = seconds_per_call(reference.step, 0.2)
        fast = seconds_per_call(self.case.step, 0.2, sync=self.case.sync)
        return slow / fast

    track_speedup_over_numpy.unit = "x"

    def track_fraction_of_copy(self, rule, backend, n):
        seconds = seconds_per_call(self.case.step, 0.2, sync=self.case.sync)
        copy = copy_bandwidth(backend, n, self.dtype)
        return self.case.bytes_per_step / seconds / 1e9 / copy

    track_fraction_of_copy.unit = "of copy"


class RuleStepFloat64(RuleStep):
    """float64 where it matters: at 1e7 it moves twice the bytes of float32."""

    params = (RULES, BACKENDS, [10_000_000])
    dtype = "float64"


class RuleStepGPU(RuleStep):
    """1e8 float32 on the GPU, where launch costs vanish against the bandwidth."""

    params = (RULES, ["cupy"], [100_000_000])
