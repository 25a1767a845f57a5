"""Data-parallel set-up under torchrun, the same code path on one process, and its collectives.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them kgnet runs as a single process.
Only the primary process (rank 0) writes files. Seeds differ per rank (seed + rank) so the
processes draw different dropout and augmentations.

Every tensor handed to a collective here lives on the process's own device: nccl (GPUs)
reduces only tensors on the process's GPU, and gloo (CPU) takes CPU tensors, so a tensor made
on the wrong device is refused with a message instead of failing inside the backend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits among the training processes."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_primary(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this process's GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def setup_distributed(device_name: str = "auto") -> DistributedContext:
    """Join the process group torchrun prepared (nccl on GPUs, gloo on CPU), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, local_rank, world_size, device)


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _on_device(tensor: torch.Tensor, context: DistributedContext, what: str) -> None:
    if tensor.device != context.device:
        raise RuntimeError(f"{what}: a tensor on {tensor.device}, but this process computes on {context.device}; "
                           "collectives take tensors on the process's device (nccl reduces GPU tensors only)")


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum a tensor over processes in place (identity on one process)."""
    _on_device(tensor, context, "all_reduce")
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_rows(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Every process's rows of `tensor`, concatenated in rank order, on every process.

    The processes may hold different numbers of rows (the shards of a split); rows are padded
    to the longest shard for the all-gather and cut back after it.
    """
    _on_device(tensor, context, "all_gather")
    if not context.enabled:
        return tensor
    count = torch.tensor([tensor.shape[0]], device=context.device)
    counts = [torch.zeros_like(count) for _ in range(context.world_size)]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(context.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def broadcast_buffers(module: torch.nn.Module, context: DistributedContext) -> None:
    """Copy the primary process's buffers (e.g. BatchNorm running statistics) to every process.

    Each process updates its BatchNorm statistics on its own share of a batch; before
    evaluating, every process takes the primary's, the model the primary releases, so the
    shards of a split are all scored by one model.
    """
    if not context.enabled:
        return
    for buffer in module.buffers():
        if buffer is not None:
            _on_device(buffer, context, "broadcast")
            dist.broadcast(buffer, src=0)


def shard(length: int, context: DistributedContext) -> range:
    """This process's contiguous share of `length` items (all of them on one process)."""
    start = length * context.rank // context.world_size
    return range(start, length * (context.rank + 1) // context.world_size)
