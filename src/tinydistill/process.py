"""This process's place in a run of one or several processes (Accelerate's process state)."""

from __future__ import annotations

import os

#: environment variables a launcher of several processes (torchrun, accelerate launch, MPI) sets in each
_LAUNCHED = ("RANK", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")


def process_state():
    """Accelerate's process state, created once; on a machine without a GPU it is made with ``cpu=True``
    so that a ``torchrun`` / ``accelerate launch`` of several processes trains on CPUs with gloo."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    """True in a single process, and on rank 0 of a multi-process launch: the one process that writes. A process
    no launcher started is the main one without asking Accelerate (which imports torch)."""
    if not any(name in os.environ for name in _LAUNCHED):
        return True
    return process_state().is_main_process


def wait_for_everyone() -> None:
    process_state().wait_for_everyone()
