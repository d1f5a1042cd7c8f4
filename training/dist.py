"""torch.distributed set-up: torchrun ranks (gloo on CPU, NCCL on GPU) or one plain process."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from napari_unrollrecon.engine.device import pick_device


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup(device: str = "auto", threads: int = 0) -> Context:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); set threads per process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    ctx = Context(rank=int(os.environ.get("RANK", "0")), world=world,
                  local_rank=int(os.environ.get("LOCAL_RANK", "0")), local_world=local_world)
    _set_threads(threads or max(1, (os.cpu_count() or 1) // local_world))
    if world == 1:
        ctx.device = pick_device(device)
        return ctx
    use_cuda = torch.cuda.is_available() and device != "cpu"
    ctx.backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        ctx.device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(ctx.device)
    dist.init_process_group(backend=ctx.backend)
    return ctx


def _set_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # only allowed before the first parallel op
    except RuntimeError:
        pass


def teardown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], ctx: Context) -> list[float]:
    """Element-wise sum of ``values`` over ranks (identity in one process)."""
    if not ctx.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def state_digest(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the state dict, in order: equal digests = identical weights."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_digests(model: torch.nn.Module, ctx: Context) -> list[str]:
    """The :func:`state_digest` of every rank (gathered as integer tensors, no pickled objects)."""
    digest = state_digest(model)
    if not ctx.distributed:
        return [digest]
    mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.int64, device=ctx.device)
    parts = [torch.empty_like(mine) for _ in range(ctx.world)]
    dist.all_gather(parts, mine)
    return [bytes(p.cpu().tolist()).hex() for p in parts]


def step_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for (seed, rank, step): every random draw of a step comes from it."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1)
