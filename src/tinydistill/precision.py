"""Which precision a stage trains in: ``auto`` picks bf16 autocast where the hardware runs it natively
(a CUDA GPU with bf16, or a CPU with AVX512-BF16 / AMX-BF16 instructions) and fp32 elsewhere."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

Precision = str  # "auto" | "no" | "bf16" | "fp16"
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU reports bf16 arithmetic instructions (Linux /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def resolve(setting: Precision, device: torch.device | str) -> str:
    """``auto`` -> ``bf16`` or ``no`` for ``device``; explicit settings pass through unchanged."""
    if setting != "auto":
        return setting
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_has_native_bf16() else "no"


def autocast(setting: Precision, device: torch.device | str):
    """An autocast context for ``setting`` on ``device``; for ``no`` it switches an outer autocast off,
    so a teacher asked for fp32 stays fp32 inside a bf16 student step."""
    mode, kind = resolve(setting, device), torch.device(device).type
    if mode == "no":
        return torch.autocast(kind, enabled=False)
    return torch.autocast(kind, dtype=_DTYPES[mode])
