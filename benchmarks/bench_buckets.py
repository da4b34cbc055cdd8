"""asv: steps over many arrays (one bucket per dtype), Adam float32, every backend.

Layouts (fastopt._bench.LAYOUTS): 100 arrays of 100 elements (the per-array Python cost
dominates), 200 of 5,000 (1M elements: compute and per-array cost) and ResNet-18's 62
parameter shapes (11.7M elements: bandwidth). ``time_steps`` times a fixed batch of warm
steps per sample, as bench_rules.RuleStep does. ``track_time_over_flat`` is the step time
over the time of a step over one flat array of the same total size, measured in the same
process: what splitting the parameters into arrays costs (1 would be free; lower is
better, as asv assumes).
"""
from fastopt._bench import LAYOUTS, layout_case, seconds_per_call

from .bench_rules import BACKENDS, TRACK_TIME, warm


def warm_layout_case(backend: str, layout: str, flat: bool = False):
    return warm(layout_case, "Adam", backend, layout, flat=flat)


class ManyArrays:
    params = (list(LAYOUTS), BACKENDS)
    param_names = ["layout", "backend"]
    timeout = 300
    number = 1
    repeat = (10, 20, 5.0)
    warmup_time = 0.05
    # steps per sample: ~10-100 ms of work per backend on the 2-core machine
    STEPS = {"numpy": {"100x100": 100, "200x5000": 10, "resnet18": 2},
             "numba": {"100x100": 2000, "200x5000": 100, "resnet18": 4},
             "cupy": {"100x100": 2000, "200x5000": 1000, "resnet18": 200}}

    def setup(self, layout, backend):
        self.case = warm_layout_case(backend, layout)
        self.steps = self.STEPS[backend][layout]

    def time_steps(self, layout, backend):
        step = self.case.step
        for _ in range(self.steps):
            step()
        self.case.sync()

    def track_time_over_flat(self, layout, backend):
        flat = warm_layout_case(backend, layout, flat=True)
        many = seconds_per_call(self.case.step, TRACK_TIME, sync=self.case.sync)
        one = seconds_per_call(flat.step, TRACK_TIME, sync=flat.sync)
        return many / one

    track_time_over_flat.unit = "x flat time"
