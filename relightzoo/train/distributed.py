"""Data-parallel training: one model on N processes with DistributedDataParallel.

Launched by ``torchrun --nproc-per-node N -m relightzoo train ...`` (or any launcher that
sets torchrun's environment: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), :func:`relightzoo.train.train` joins the process group (gloo on the CPU,
NCCL on CUDA, one GPU a process by ``LOCAL_RANK``) and trains with these rules:

- ``batch_size`` is the global batch; each of the N ranks draws its own ``batch_size / N``
  samples. All ranks hold the same seeded sample stream and each gathers only its own
  slice of every batch (as :class:`torch.utils.data.DistributedSampler` slices one shared
  permutation), so the union of the ranks' samples is the batch a single process would
  draw. A run on N processes is therefore the single-process run with the same
  ``batch_size``, up to floating-point summation order (DDP averages the ranks' gradients
  of their shard means, which is the gradient of the global mean), and the sampler state
  in a checkpoint does not depend on N: a run resumes on any number of processes.
- Rank 0 alone writes checkpoints, ``config.json``, ``metrics.jsonl``, TensorBoard logs
  and the printout; the other ranks print nothing. The logged loss is the mean over all
  ranks (one all-reduce on logging steps only).
- Ctrl-C on any rank stops every rank after the same step (one tiny all-reduce a step).

Without a launcher (``WORLD_SIZE`` unset or 1) nothing here changes the single-process loop.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ..errors import ClusterError

__all__ = ["World", "join", "world_from_env"]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ClusterError(f"{name}={raw!r} is not an integer; launch with torchrun, which sets it") from None


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (``size`` 1: a single process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains this model."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    def shard(self, batch_size: int) -> slice:
        """This rank's slice of a global batch of ``batch_size`` samples."""
        if batch_size % self.size:
            raise ClusterError(
                f"--batch-size {batch_size} does not split evenly over {self.size} processes; "
                f"use a multiple of {self.size}"
            )
        per = batch_size // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def wrap(self, net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``net`` in DistributedDataParallel when distributed (gradients averaged over ranks), else ``net``."""
        if not self.distributed:
            return net
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (``value`` itself on one process)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.size

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is set on any rank (so every rank stops after the same step)."""
        if not self.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing on one process)."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def open_log(self, path, mode: str = "a"):
        """``path`` opened on rank 0; a sink that discards writes on the others."""
        return open(path, mode) if self.is_main else nullcontext(_Discard())

    def finish(self) -> None:
        """Wait for every rank, then leave the process group if :func:`join` created it."""
        if not self.distributed:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            if self.owns_group:
                dist.destroy_process_group()


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def world_from_env() -> World:
    """This process's rank and world size as a launcher (torchrun) set them in the environment."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if size < 1 or not 0 <= rank < size:
        raise ClusterError(f"RANK={rank} and WORLD_SIZE={size} are inconsistent; launch with torchrun")
    return World(rank=rank, size=size, local_rank=local)


def join(device: torch.device, batch_size: int) -> tuple[World, torch.device]:
    """Join the launcher's process group (once per process) and pick this rank's device.

    Returns the :class:`World` and the device to train on: ``cuda:LOCAL_RANK`` when
    ``device`` is CUDA and more than one process trains. A single process gets ``device``
    back unchanged. A global ``batch_size`` that does not split evenly is an error before
    any waiting for the other ranks. Ranks other than 0 have their console silenced.
    """
    world = world_from_env()
    if not world.distributed:
        return world, device
    world.shard(batch_size)
    import torch.distributed as dist

    if not dist.is_available():
        raise ClusterError("this torch build has no torch.distributed; data-parallel training needs it")
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise ClusterError(
                f"LOCAL_RANK {world.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                "give torchrun --nproc-per-node at most that many"
            )
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise ClusterError(f"WORLD_SIZE={world.size} but {name} is not set; launch with torchrun")
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    elif dist.get_world_size() != world.size or dist.get_rank() != world.rank:
        raise ClusterError("the process group already set up does not match RANK/WORLD_SIZE")
    if not world.is_main:
        from ..console import console

        console.quiet = True
    return World(rank=world.rank, size=world.size, local_rank=world.local_rank, owns_group=owns), device
