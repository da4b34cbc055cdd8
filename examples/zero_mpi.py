"""Data-parallel least squares with Adam's state sharded across MPI ranks (ZeRO-1).

    mpiexec -n 2 python examples/zero_mpi.py

Every rank holds the same weights and its own share of the data; each
step it computes its gradient, and ShardedOptimizer averages the ranks' gradients, lets each
rank update only its slice of the weights and of Adam's state, and gathers the weights back
on every rank. Rank 0 prints the loss.
"""
import numpy as np
from mpi4py import MPI

import fastopt
from fastopt.distributed import ShardedOptimizer

comm = MPI.COMM_WORLD
rng = np.random.default_rng(0)                       # the same problem on every rank
X = rng.standard_normal((4000, 200)).astype(np.float32)
w_true = rng.standard_normal(200).astype(np.float32)
y = X @ w_true
mine = slice(comm.rank, None, comm.size)             # this rank's rows
Xr, yr = X[mine], y[mine]

w = np.zeros(200, np.float32)                        # replicated on every rank
b = np.zeros(1, np.float32)
opt = ShardedOptimizer(fastopt.Adam, [{"params": [w]}, {"params": [b], "lr": 0.02}],  # groups,
                       lr=0.05)                          # as in one process
for step in range(301):
    r = Xr @ w + b - yr
    loss = comm.allreduce(float(r @ r), op=MPI.SUM) / len(y)
    opt.step([2 * Xr.T @ r / len(yr), np.array([2 * r.mean()], np.float32)])
    if comm.rank == 0 and step % 50 == 0:
        print(f"step {step:3d}  loss {loss:.6f}")
if comm.rank == 0:
    print(f"Adam's state on this rank: {opt.state_bytes} bytes "
          f"(one process would hold {2 * 4 * (w.size + b.size)})")
