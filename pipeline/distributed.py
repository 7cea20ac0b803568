"""Running a stage under torchrun: relaunching itself, and the process group's life."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from al_core.errors import InputError


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def relaunch(command: str, processes: int, params: Path, arguments: tuple[str, ...] = ()) -> None:
    """Run ``al <command> <arguments>`` in ``processes`` local processes with ``torchrun --standalone``.

    Multi-node runs start torchrun themselves (``torchrun --nnodes N --rdzv-endpoint host:port
    -m stages.cli <command>``): a stage already under torchrun never relaunches.
    """
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
              "-m", "stages.cli", command, *arguments, "--params", str(params)]
    print(f"{command}: starting {processes} processes: {' '.join(launch[1:])}", flush=True)
    result = subprocess.run(launch)
    if result.returncode != 0:
        raise InputError(f"torchrun {command} with {processes} processes failed (exit {result.returncode}); see the output above")


@contextlib.contextmanager
def process_group():
    """Initialise torch.distributed from torchrun's environment (NCCL on GPUs, gloo on CPU) and tear it down."""
    if not under_torchrun() or dist.is_initialized():
        yield
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def rank_and_processes() -> tuple[int, int]:
    """(rank, number of processes) of the initialised process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_object(value):
    """``value`` of every process of the group, in rank order (pickled through the backend)."""
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values
