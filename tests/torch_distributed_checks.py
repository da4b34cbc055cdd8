"""fastopt.torch under torch.distributed's engines, two ranks on gloo: FSDP2
(``fully_shard``, DTensor params), DDP and ZeroRedundancyOptimizer. Run by
tests/test_torch_distributed.py as ``python tests/torch_distributed_checks.py``; each check
prints "ok NAME" on every rank, and any failure ends the run with a traceback and a
non-zero status.

Every rank trains an MLP on its own batch (the grads are averaged across ranks by the
engine), float64 throughout.
"""
from __future__ import annotations

import copy
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

import fastopt.torch as ft

RULES = {"AdamW": dict(lr=0.01, weight_decay=0.1), "Adam": dict(lr=0.01, amsgrad=True),
         "SGD": dict(lr=0.05, momentum=0.9, nesterov=True), "NAdam": dict(lr=0.01),
         "RMSprop": dict(lr=0.01, centered=True)}
STEPS = 4


def mlp() -> torch.nn.Module:
    """The same MLP on every rank (17 rows in the first layer: uneven shards)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 17), torch.nn.Tanh(), torch.nn.Linear(17, 3))


def sharded(model: torch.nn.Module) -> torch.nn.Module:
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)
    return fully_shard(model)


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * rank + step)
    return torch.randn(16, 8, generator=g), torch.randn(16, 3, generator=g)


def backward(model: torch.nn.Module, opt: torch.optim.Optimizer, rank: int, step: int) -> None:
    opt.zero_grad()
    x, y = batch(rank, step)
    torch.nn.functional.mse_loss(model(x), y).backward()


def full(params) -> list[torch.Tensor]:
    return [p.full_tensor() for p in params]


def check_against_torch_optim_on_the_same_sharding(rank: int) -> None:
    """Each rank's shards, stepped by fastopt's kernels, agree with torch.optim's step of
    the same shards (as unsharded, to rounding: fastopt's parity with torch)."""
    for rule, hp in RULES.items():
        ours, theirs = sharded(mlp()), sharded(mlp())
        opts = getattr(ft, rule)(ours.parameters(), **hp), \
            getattr(torch.optim, rule)(theirs.parameters(), **hp)
        for step in range(STEPS):
            for model, opt in zip((ours, theirs), opts):
                backward(model, opt, rank, step)
                opt.step()
        worst = max((p.to_local() - q.to_local()).abs().max().item()
                    for p, q in zip(ours.parameters(), theirs.parameters()))
        assert worst <= 1e-10, (rule, worst)


def check_shards_step_bit_for_bit_as_the_whole(rank: int) -> None:
    """The sharded step is the unsharded step of the same averaged grads, bit for bit:
    an elementwise rule on each shard is the rule on the whole."""
    for rule, hp in RULES.items():
        model = sharded(mlp())
        opt = getattr(ft, rule)(model.parameters(), **hp)
        whole = [torch.nn.Parameter(t) for t in full(model.parameters())]
        reference = getattr(ft, rule)(whole, **hp)
        for step in range(STEPS):
            backward(model, opt, rank, step)
            for w, p in zip(whole, model.parameters()):
                w.grad = p.grad.full_tensor()
            opt.step()
            reference.step()
        assert all(torch.equal(a, b) for a, b in zip(full(model.parameters()), whole)), rule


def check_max_grad_norm_is_the_norm_over_every_shard(rank: int) -> None:
    """max_grad_norm on FSDP2 shards: the norm summed over the ranks, as torch's
    clip_grad_norm_ takes it on DTensors; the steps agree with clip + torch.optim's."""
    ours, theirs = sharded(mlp()), sharded(mlp())
    opts = ft.AdamW(ours.parameters(), lr=0.01, max_grad_norm=0.1), \
        torch.optim.AdamW(theirs.parameters(), lr=0.01)
    for step in range(STEPS):
        for model, opt in zip((ours, theirs), opts):
            backward(model, opt, rank, step)
        norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.1).full_tensor()
        for opt in opts:
            opt.step()
        assert abs(opts[0].grad_norm - norm.item()) <= 1e-12 * norm.item(), step
        assert opts[0].grad_norm > 0.1
    worst = max((p.to_local() - q.to_local()).abs().max().item()
                for p, q in zip(ours.parameters(), theirs.parameters()))
    assert worst <= 1e-10, worst


def check_state_is_sharded_like_the_params_and_checkpoints_go_on(rank: int) -> None:
    """opt.state holds DTensors laid out as their params (torch's form, for DCP); a
    state_dict loaded into a new optimizer over a copy goes on as the original."""
    model = sharded(mlp())
    opt = ft.AdamW(model.parameters(), lr=0.01)
    for step in range(2):
        backward(model, opt, rank, step)
        opt.step()
    for p in model.parameters():
        st = opt.state[p]
        assert isinstance(st["exp_avg"], DTensor) and st["exp_avg"].placements == p.placements
        assert st["exp_avg"].to_local().shape == p.to_local().shape
        assert st["exp_avg"].shape == p.shape
    twin = sharded(mlp())
    with torch.no_grad():
        for a, b in zip(twin.parameters(), model.parameters()):
            a.to_local().copy_(b.to_local())
    again = ft.AdamW(twin.parameters(), lr=0.01)
    again.load_state_dict(copy.deepcopy(opt.state_dict()))
    for step in range(2, 4):
        for m, o in ((model, opt), (twin, again)):
            backward(m, o, rank, step)
            o.step()
    assert all(torch.equal(a.to_local(), b.to_local())
               for a, b in zip(model.parameters(), twin.parameters()))


def check_ddp_and_zero_redundancy_train_as_with_torch_optim(rank: int) -> None:
    """DDP with fastopt.torch.X, and ZeroRedundancyOptimizer(optimizer_class=fastopt.torch.X),
    against the same with torch.optim.X."""
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel
    for rule, hp in RULES.items():
        models = []
        for make in (lambda ps, cls: cls(ps, **hp),
                     lambda ps, cls: ZeroRedundancyOptimizer(ps, optimizer_class=cls, **hp)):
            for cls in (getattr(ft, rule), getattr(torch.optim, rule)):
                model = DistributedDataParallel(mlp())
                opt = make(model.parameters(), cls)
                for step in range(STEPS):
                    backward(model, opt, rank, step)
                    opt.step()
                models.append(model)
        for ours, theirs in (models[:2], models[2:]):
            worst = max((p - q).abs().max().item()
                        for p, q in zip(ours.parameters(), theirs.parameters()))
            assert worst <= 1e-10, (rule, worst)


CHECKS = [check_against_torch_optim_on_the_same_sharding,
          check_ddp_and_zero_redundancy_train_as_with_torch_optim,
          check_shards_step_bit_for_bit_as_the_whole,
          check_state_is_sharded_like_the_params_and_checkpoints_go_on,
          check_max_grad_norm_is_the_norm_over_every_shard]


def rank_main(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    try:
        for check in CHECKS:
            check(rank)
            print(f"ok {check.__name__} (rank {rank})", flush=True)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    mp.spawn(rank_main, args=(2, free_port()), nprocs=2)
    sys.exit(0)
