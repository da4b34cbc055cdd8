"""asv: the rules that update each param whole (kernels/_rule.py: WholeParam: Adafactor's
rows and columns, Muon's Newton-Schulz iteration) on one matrix, float32: batches of warm
steps per backend (``time_steps``), and numba's step against torch.optim's class of the
same rule with its defaults on the CPU (``track_torch_over_fastopt``: torch's step time
over fastopt's, one process; higher is better for fastopt, so asv flags a drop). torch's
Muon runs its iteration in bfloat16, which a CPU without bfloat16 arithmetic does slowly
(31 s a step at 1024 x 1024 on the 2-core machine): its side is one step, timed once.
Skipped where torch is not installed.
"""
import fastopt._bench as bench
from fastopt.kernels import REGISTRY

from .bench_rules import BACKENDS, TRACK_TIME, steps_per_sample, warm

RULES = [rule.class_name for rule in REGISTRY if rule.whole is not None]
SHAPES = {"256x256": (256, 256), "1024x1024": (1024, 1024), "4096x1024": (4096, 1024)}


def warm_matrix(rule: str, backend: str, shape: str):
    m, n = SHAPES[shape]
    return warm(bench.step_case, rule, backend, m * n, "float32", shape=(m, n))


class WholeStep:
    params = (RULES, BACKENDS, list(SHAPES))
    param_names = ["rule", "backend", "shape"]
    timeout = 300
    number = 1
    repeat = (3, 10, 5.0)
    warmup_time = 0.0

    def setup(self, rule, backend, shape):
        self.case = warm_matrix(rule, backend, shape)
        self.steps = max(1, steps_per_sample(backend, self.case.n) // 10)

    def time_steps(self, rule, backend, shape):
        for _ in range(self.steps):
            self.case.step()
        self.case.sync()


class WholeTorchRatio:
    params = (RULES, list(SHAPES))
    param_names = ["rule", "shape"]
    timeout = 900

    def setup(self, rule, shape):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        self.case = warm_matrix(rule, "numba", shape)
        self.torch = bench.torch_case(rule, shape, "default", shapes=(SHAPES[shape],))

    def track_torch_over_fastopt(self, rule, shape):
        ours = bench.seconds_per_call(self.case.step, TRACK_TIME)
        return bench.seconds_per_call(self.torch.step, TRACK_TIME, repeat=1) / ours

    track_torch_over_fastopt.unit = "x fastopt time"
