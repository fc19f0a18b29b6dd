"""Size and CPU/GPU inference speed of saved models, teacher and student measured side by side."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from torch import nn

from tinydistill.data.loaders import EncodedDataset, inputs_only, make_loader


def size_on_disk(folder: str | Path) -> int:
    """Bytes of the weight files in a model folder."""
    return sum(p.stat().st_size for p in Path(folder).glob("*") if p.suffix in (".safetensors", ".bin"))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def _time_batches(model: nn.Module, batches: list[dict]) -> float:
    start = time.perf_counter()
    for b in batches:
        model(**b)
    return time.perf_counter() - start


def measure_speed(
    models: dict[str, nn.Module],
    data: EncodedDataset,
    tokenizer,
    batch_size: int = 32,
    repeats: int = 3,
    latency_examples: int = 32,
    own: dict[str, tuple[EncodedDataset, object]] | None = None,
) -> dict[str, dict[str, float]]:
    """Throughput (examples/s at ``batch_size``) and latency (ms at batch 1, median) of each model on
    the same dynamically padded batches (``own``: a model's own (data, tokenizer) for the same texts). Models are
    timed in turn within each repeat (interleaved), so machine noise hits them alike; medians over ``repeats``."""

    def batches_of(rows: EncodedDataset, tok) -> tuple[list[dict], list[dict]]:
        rows = inputs_only(rows)
        full = list(make_loader(rows, tok, batch_size, shuffle=False))
        singles = list(make_loader(EncodedDataset(rows.rows[:latency_examples]), tok, 1, shuffle=False))
        return full, singles

    shared = batches_of(data, tokenizer)
    inputs = {k: batches_of(*own[k]) if own and k in own else shared for k in models}
    n = sum(len(b["input_ids"]) for b in shared[0])
    for k, m in models.items():
        m.eval()
        _time_batches(m, inputs[k][0][:1] + inputs[k][1][:2])  # warm-up
    through: dict[str, list[float]] = {k: [] for k in models}
    latency: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(repeats):
        for name, m in models.items():
            full, singles = inputs[name]
            through[name].append(n / _time_batches(m, full))
            latency[name].append(1000 * _time_batches(m, singles) / len(singles))
    return {
        k: {"examples_per_s": statistics.median(through[k]), "latency_ms": statistics.median(latency[k])}
        for k in models
    }
