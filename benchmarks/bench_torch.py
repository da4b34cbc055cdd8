"""asv: fastopt.torch against torch.optim on the CPU, float32 (skipped where torch is not
installed; asv.conf.json installs it).

``time_step`` times a fixed batch of ``opt.step()`` calls (grads set once) for each
implementation: "fastopt" (fastopt.torch's class), "fused" and "foreach" (torch.optim's
class with that option, where torch has it). ``track_torch_over_fastopt`` is the step
time of torch's implementation over fastopt's, measured in one process (higher is better
for fastopt; asv flags a drop).
"""
from fastopt._bench import LAYOUTS, seconds_per_call, torch_case
from fastopt.kernels import REGISTRY

from .bench_rules import TRACK_TIME, warm

RULES = [rule.class_name for rule in REGISTRY if rule.torch_class and rule.takes_any_shape]
# steps per sample: ~10-100 ms of work on the 2-core machine
STEPS = {"100x100": 100, "200x5000": 20, "resnet18": 2}


def warm_torch_case(rule: str, layout: str, impl: str):
    try:
        import torch  # noqa: F401
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    return warm(torch_case, rule, layout, impl)


class TorchStep:
    params = (RULES, ["fastopt", "fused", "foreach"], list(LAYOUTS))
    param_names = ["rule", "impl", "layout"]
    timeout = 300
    number = 1
    repeat = (5, 10, 5.0)
    warmup_time = 0.05

    def setup(self, rule, impl, layout):
        self.case = warm_torch_case(rule, layout, impl)
        self.steps = STEPS[layout]

    def time_step(self, rule, impl, layout):
        step = self.case.step
        for _ in range(self.steps):
            step()


class TorchRatio:
    params = (RULES, ["fused", "foreach"], list(LAYOUTS))
    param_names = ["rule", "torch", "layout"]
    timeout = 300

    def setup(self, rule, impl, layout):
        self.ours = warm_torch_case(rule, layout, "fastopt")
        self.theirs = warm_torch_case(rule, layout, impl)

    def track_torch_over_fastopt(self, rule, impl, layout):
        ours = seconds_per_call(self.ours.step, TRACK_TIME)
        return seconds_per_call(self.theirs.step, TRACK_TIME) / ours

    track_torch_over_fastopt.unit = "x fastopt time"
