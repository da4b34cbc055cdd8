"""asv: steps with ``max_grad_norm`` (the global norm taken first, then the update reading
each grad scaled: kernels/_reduce.py), AdamW and SGD, float32, on every backend at 1e5
and 1e7 (1e8 on the GPU). Batches of steps as bench_rules.RuleStep times them;
``track_time_over_step`` is the clipped step's time over the same step without clipping
(lower is better: at the memory bound 32/28 for AdamW, 16/12 for SGD).
"""
from fastopt._bench import seconds_per_call, step_case

from . import bench_rules
from .bench_rules import TRACK_TIME, steps_per_sample, warm

MAX_NORM = (("max_grad_norm", 0.1),)     # below the benchmark grads' norm: every step clips


class ClipStep(bench_rules.RuleStep):        # (the module: asv lists a class imported here)
    """bench_rules.RuleStep's batches of warm steps, clipped by the global norm."""

    params = (["AdamW", "SGD"], bench_rules.BACKENDS, [100_000, 10_000_000, 100_000_000])
    track_time_over_numpy = track_time_over_copy = None

    def setup(self, rule, backend, n):
        if (backend == "cupy") != (n == 100_000_000):
            raise NotImplementedError("1e8 on the GPU, 1e5 and 1e7 on the CPU")
        self.case = warm(step_case, rule, backend, n, "float32", options=MAX_NORM)
        self.steps = steps_per_sample(backend, n)

    def track_time_over_step(self, rule, backend, n):
        plain = warm(step_case, rule, backend, n, "float32")
        base = seconds_per_call(plain.step, TRACK_TIME, sync=plain.sync)
        ours = seconds_per_call(self.case.step, TRACK_TIME, sync=self.case.sync)
        return ours / base

    track_time_over_step.unit = "x step time"
