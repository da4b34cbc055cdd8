"""cupy backend figures on a GPU: per rule, time per step and effective bandwidth at
n = 1e4, 1e6, 1e8 float32 next to a device copy measured in the same run, and PyTorch's
fused Adam where torch is installed.

    python benchmarks/gpu_kernels.py [--sizes 1e4 1e6 1e8]

Time per step is wall time over many back-to-back opt.step calls with one synchronisation
at the end (what a training loop sees: launch and Python overhead included).
"""
from __future__ import annotations

import argparse

import numpy as np

from fastopt._bench import device_copy_bandwidth, measure_step, seconds_per_call

RULE_NAMES = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "Nadam"]


def main() -> None:
    import cupy as cp

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e6, 1e8])
    sizes = [int(s) for s in ap.parse_args().sizes]
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"GPU: {name}, cupy {cp.__version__}\n")
    print(f"{'rule':<10} {'n':>6} {'us/step':>9} {'GB/s':>8} {'copy GB/s':>10} {'of copy':>8}")
    for n in sizes:
        copy = device_copy_bandwidth(n, np.float32, 0.3)
        for rule in RULE_NAMES:
            t = measure_step(rule, "cupy", n, np.float32, min_time=0.3)
            print(f"{rule:<10} {n:>6.0e} {t.seconds * 1e6:>9.1f} {t.gbps:>8.1f} {copy:>10.1f} "
                  f"{t.gbps / copy:>8.2f}", flush=True)
        torch_line = torch_fused_adam(n)
        if torch_line:
            s = torch_line
            print(f"{'torch Adam':<10} {n:>6.0e} {s * 1e6:>9.1f} {28 * n / s / 1e9:>8.1f} "
                  f"{copy:>10.1f} {28 * n / s / 1e9 / copy:>8.2f}  (fused=True)", flush=True)
        cp.get_default_memory_pool().free_all_blocks()


def torch_fused_adam(n: int) -> float | None:
    """Seconds per torch.optim.Adam(fused=True).step() on n float32 params, or None."""
    try:
        import torch
    except ImportError:
        return None
    p = torch.zeros(n, device="cuda", requires_grad=True)
    p.grad = torch.full_like(p, 1e-3)
    opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    seconds = seconds_per_call(opt.step, 0.3, sync=torch.cuda.synchronize)
    del opt, p
    torch.cuda.empty_cache()
    return seconds


if __name__ == "__main__":
    main()
