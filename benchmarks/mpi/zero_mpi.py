"""ZeRO-1 step time: fastopt.distributed.ShardedOptimizer against torch's
ZeroRedundancyOptimizer over gloo, in the same processes, interleaved.

    mpiexec -n 2 python benchmarks/mpi/zero_mpi.py [--n 2e6] [--steps 30]

Each rank holds n float32 params (in 8 arrays) and Adam's state for its shard; a step
averages the ranks' grads, updates the shard and all-gathers the params. Rank 0 prints
the median step times, their ratio, the bytes each rank sent and received per step
against the reduce-scatter + all-gather minimum (2 (world-1)/world of the params' bytes),
and the state bytes per rank. torch's side runs when torch is installed; its grads are
all-reduced first, as DistributedDataParallel does before a step.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from mpi4py import MPI

import fastopt
from fastopt.distributed import ShardedOptimizer

COMM = MPI.COMM_WORLD
ARRAYS = 8


def ours(n: int):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n // ARRAYS).astype(np.float32) for _ in range(ARRAYS)]
    opt = ShardedOptimizer(fastopt.Adam, params, lr=1e-3)
    grads = [np.random.default_rng(1 + COMM.rank).standard_normal(p.size).astype(np.float32)
             for p in params]

    def step():
        opt.step(grads)
    return step, opt


def theirs(n: int):
    try:
        import torch
        import torch.distributed as dist
        from torch.distributed.optim import ZeroRedundancyOptimizer
    except ImportError:
        return None
    port = COMM.bcast(29500 + os.getpid() % 1000 if COMM.rank == 0 else None, root=0)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=COMM.rank,
                            world_size=COMM.size)
    params = [torch.nn.Parameter(torch.randn(n // ARRAYS)) for _ in range(ARRAYS)]
    opt = ZeroRedundancyOptimizer(params, optimizer_class=torch.optim.Adam, lr=1e-3)
    grads = [torch.randn(n // ARRAYS) for _ in range(ARRAYS)]

    def step():
        for p, g in zip(params, grads):
            p.grad = g.clone()
        for g in grads:                    # the grads' average, as DDP's all-reduce gives it
            dist.all_reduce(g)
        opt.step()
    return step


def timed(step) -> float:
    COMM.Barrier()
    t0 = time.perf_counter()
    step()
    COMM.Barrier()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=float, default=2e6)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    n = int(args.n)
    step_ours, opt = ours(n)
    step_theirs = theirs(n)
    times = {"fastopt": [], "torch": []}
    for k in range(args.steps + 2):                # the first two rounds warm up
        t_ours = timed(step_ours)
        t_theirs = timed(step_theirs) if step_theirs else float("nan")
        if k >= 2:
            times["fastopt"].append(t_ours)
            times["torch"].append(t_theirs)
    if COMM.rank == 0:
        world = COMM.size
        padded = sum(s.buffer.nbytes for s in opt.segments)
        moved = 2 * (world - 1) * padded // world          # Alltoall + Allgather, per rank
        minimum = 2 * (world - 1) * (n * 4) // world
        a, b = np.median(times["fastopt"]), np.median(times["torch"])
        print(f"ZeRO-1 Adam, {world} ranks x {n:.0e} float32 params, median of {args.steps}")
        print(f"  fastopt ShardedOptimizer  {a * 1e3:8.2f} ms")
        print(f"  torch ZeroRedundancy/gloo {b * 1e3:8.2f} ms   fastopt/torch {a / b:.2f}")
        print(f"  bytes each rank sends per step: {moved / 1e6:.2f} MB (the reduce-scatter "
              f"+ all-gather minimum: {minimum / 1e6:.2f} MB; it receives as many)")
        print(f"  state bytes on rank 0: {opt.state_bytes / 1e6:.2f} MB "
              f"(one process: {2 * n * 4 / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
