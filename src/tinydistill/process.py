"""This process's place in a run of one or several processes (Accelerate's process state)."""

from __future__ import annotations


def process_state():
    """Accelerate's process state, created once; on a machine without a GPU it is made with ``cpu=True``
    so that a ``torchrun`` / ``accelerate launch`` of several processes trains on CPUs with gloo."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    """True in a single process, and on rank 0 of a multi-process launch: the one process that writes."""
    return process_state().is_main_process


def wait_for_everyone() -> None:
    process_state().wait_for_everyone()
