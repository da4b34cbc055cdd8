"""
Step time against size
======================

One AdamW step over a float32 array of n elements, on each available backend, against
``torch.optim.AdamW(fused=True)`` on a CPU tensor and the NumPy reference (the ``numpy``
backend). Below ~1e5 elements a step costs its Python and call overhead; above it, the
bytes it moves (28 an element: read p, g, m, v; write p, m, v).
"""
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastopt

QUICK = os.environ.get("FASTOPT_DOCS_QUICK") == "1"      # CI's docs build: small sizes
SIZES = [10 ** k for k in (range(3, 6) if QUICK else range(3, 8))]


def seconds_per_step(step, sync=lambda: None, budget=0.05 if QUICK else 0.3):
    """The median over rounds of one step's time (each round as many steps as fit)."""
    step()
    sync()
    rounds = []
    for _ in range(5):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget / 5 or count == 0:
            step()
            sync()
            count += 1
        rounds.append(elapsed / count)
    return float(np.median(rounds))


def fastopt_step(backend, n):
    xp = np
    if backend == "cupy":
        import cupy as xp
    p = xp.ones(n, dtype=np.float32)
    g = xp.full(n, 1e-3, dtype=np.float32)
    opt = fastopt.AdamW(p, lr=1e-3, backend=backend)
    sync = xp.cuda.Device().synchronize if backend == "cupy" else (lambda: None)
    return (lambda: opt.step(g)), sync


def torch_fused_step(n):
    import torch

    p = torch.nn.Parameter(torch.ones(n))
    p.grad = torch.full((n,), 1e-3)
    opt = torch.optim.AdamW([p], lr=1e-3, fused=True)
    return opt.step


times = {backend: [seconds_per_step(*fastopt_step(backend, n)) for n in SIZES]
         for backend in fastopt.available_backends()}
try:
    times["torch fused (CPU)"] = [seconds_per_step(torch_fused_step(n)) for n in SIZES]
except ImportError:
    pass

LABELS = {"numba": "fastopt, numba", "numpy": "fastopt, numpy (the reference)",
          "cupy": "fastopt, cupy (GPU)"}
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for label, seconds in times.items():
    ax.plot(SIZES, np.array(seconds) * 1e6, "o-", label=LABELS.get(label, label))
    print(label, ", ".join(f"{s * 1e6:.1f} us" for s in seconds))
ax.set(xscale="log", yscale="log", xlabel="elements n", ylabel="µs per step",
       title="AdamW, float32: one step")
ax.legend()
plt.show()
