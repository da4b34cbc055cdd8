"""asv: the rules that update each param whole (kernels/_rule.py: WholeParam: Adafactor's
rows and columns) on a matrix, float32: batches of warm steps per backend
(``time_steps``), and numba's step against torch.optim's class of the same rule on the CPU
(``track_torch_over_fastopt``: torch's foreach step time over fastopt's, one process;
higher is better for fastopt, so asv flags a drop). Skipped where torch is not installed.
"""
from fastopt._bench import seconds_per_call, step_case, torch_case
from fastopt.kernels import REGISTRY

from .bench_rules import BACKENDS, TRACK_TIME, steps_per_sample, warm

RULES = [rule.class_name for rule in REGISTRY if rule.whole is not None]
SHAPES = {"1024x1024": (1024, 1024), "4096x1024": (4096, 1024)}


def warm_matrix(rule: str, backend: str, shape: str):
    m, n = SHAPES[shape]
    return warm(step_case, rule, backend, m * n, "float32", shape=(m, n))


class WholeStep:
    params = (RULES, BACKENDS, list(SHAPES))
    param_names = ["rule", "backend", "shape"]
    timeout = 300
    number = 1
    repeat = (5, 10, 5.0)
    warmup_time = 0.05

    def setup(self, rule, backend, shape):
        self.case = warm_matrix(rule, backend, shape)
        self.steps = steps_per_sample(backend, self.case.n)

    def time_steps(self, rule, backend, shape):
        for _ in range(self.steps):
            self.case.step()
        self.case.sync()


class WholeTorchRatio:
    params = (RULES, list(SHAPES))
    param_names = ["rule", "shape"]
    timeout = 300

    def setup(self, rule, shape):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        self.case = warm_matrix(rule, "numba", shape)
        self.torch = warm(torch_case, rule, shape, "foreach", shapes=(SHAPES[shape],))

    def track_torch_over_fastopt(self, rule, shape):
        ours = seconds_per_call(self.case.step, TRACK_TIME)
        return seconds_per_call(self.torch.step, TRACK_TIME) / ours

    track_torch_over_fastopt.unit = "x fastopt time"
