"""
The roofline: a step's time against the bytes it moves
======================================================

A per-coordinate step is memory-bound: each element of the param, the grad and every state
array is read once, and the param and the state are written once (Adam: 28 bytes a float32
element). Each point is one rule's step over n float32 elements on the numba backend; the
line is the time an in-place read-modify-write of the same bytes takes on this machine
(the copy bandwidth ``python -m fastopt bench`` also measures, before and after the rules:
the faster of the two). A rule on the line runs at the memory bound; this machine's
bandwidth drifts from minute to minute, so a point may fall a little below it.
"""
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastopt
from fastopt.kernels import REGISTRY

QUICK = os.environ.get("FASTOPT_DOCS_QUICK") == "1"      # CI's docs build: a small n
N = 100_000 if QUICK else 10_000_000
BACKEND = "numba" if "numba" in fastopt.available_backends() else "numpy"


def seconds(fn, repeat=7 if QUICK else 15):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bytes_moved(opt, p):
    """Read p, g and each state array of p's size; write p and each of them."""
    arrays = [a for a in opt.state[0].values() if getattr(a, "size", 0) == p.size]
    return (3 + 2 * len(arrays)) * p.nbytes


def copy_gbps():
    """GB/s of an in-place read-modify-write of n float32 (what ``python -m fastopt bench``
    compares against)."""
    from fastopt._bench import host_copy_bandwidth

    return host_copy_bandwidth(N, min_time=0.05 if QUICK else 0.3)


before = copy_gbps()
points = []
for rule in REGISTRY:
    if not rule.takes_any_shape or rule.whole is not None or rule.per_tensor is not None:
        continue            # the per-element rules: one pass over their arrays
    p = np.ones(N, np.float32)
    g = np.full(N, 1e-3, np.float32)
    opt = getattr(fastopt, rule.class_name)(p, backend=BACKEND)
    opt.step(g)                                               # its state exists now
    points.append((rule.class_name, bytes_moved(opt, p), seconds(lambda: opt.step(g))))

gbps = max(before, copy_gbps())      # this VM's bandwidth drifts: the faster of the two
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
moved = np.array([b for _, b, _ in points], dtype=float)
line = np.linspace(0, moved.max() * 1.1, 50)
ax.plot(line / 1e6, line / (gbps * 1e9) * 1e3, "k--", label=f"copy: {gbps:.0f} GB/s")
top = max(s for _, _, s in points) * 1.1e3             # ms: the plot's height
for b in sorted({b for _, b, _ in points}):      # the rules moving the same bytes: their
    column = sorted((s, name) for name, b_, s in points if b_ == b)   # names in a column
    middle = np.mean([s for s, _ in column]) * 1e3
    for k, (s, name) in enumerate(column):
        label_y = middle + 0.045 * top * (k - (len(column) - 1) / 2)
        ax.plot(b / 1e6, s * 1e3, "o", color="C0")
        ax.annotate(name, (b / 1e6, s * 1e3), xytext=(b / 1e6 + moved.max() / 1e6 * 0.06,
                                                       label_y),
                    fontsize="small", va="center",
                    arrowprops=dict(arrowstyle="-", color="0.7", lw=0.5))
        print(f"{name:18s} {b / 1e6:7.1f} MB  {s * 1e3:7.3f} ms  {b / s / 1e9:6.1f} GB/s")
ax.set(xlabel="MB moved a step", ylabel="ms per step",
       title=f"float32, n = {N:,}, {BACKEND} backend", xlim=(0, moved.max() / 1e6 * 1.35),
       ylim=(0, top))
ax.legend()
plt.show()
