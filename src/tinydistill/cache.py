"""Teacher-output cache: the teacher's logits for a training set, computed once and reused across
epochs, stages and runs.

Exact only for a deterministic teacher (eval mode, which tinydistill always uses) and inputs that do
not change between epochs (offline augmentation is fine, on-the-fly augmentation is not). The key
hashes the teacher's weights and config and the exact token ids fed to it (so a changed data file,
subset, tokenizer setting or max length is a new entry); nothing stale can be read back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinydistill import precision
from tinydistill.data.loaders import EncodedDataset, make_loader
from tinydistill.ui import say, track

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def default_cache_dir() -> Path:
    return Path(os.environ.get("TINYDISTILL_CACHE", Path.home() / ".cache" / "tinydistill"))


def teacher_fingerprint(teacher: nn.Module) -> str:
    h = hashlib.sha256(teacher.config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    return h.hexdigest()


def inputs_fingerprint(data: EncodedDataset) -> str:
    h = hashlib.sha256()
    for row in data.rows:
        for key in INPUT_KEYS:
            if key in row:
                h.update(np.asarray(row[key], dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


@torch.inference_mode()
def _compute(teacher: nn.Module, data: EncodedDataset, tokenizer, batch_size: int, device, mode: str) -> np.ndarray:
    """Logits in row order; rows are run shortest first, so each batch holds similar lengths (little padding)."""
    order = sorted(range(len(data)), key=lambda i: len(data.rows[i]["input_ids"]))
    inputs = EncodedDataset([{k: data.rows[i][k] for k in INPUT_KEYS if k in data.rows[i]} for i in order])
    out = []
    with precision.autocast(mode, device):
        for batch in track(make_loader(inputs, tokenizer, batch_size, shuffle=False), "caching teacher logits"):
            out.append(teacher(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())
    logits = torch.cat(out).numpy()
    result = np.empty_like(logits)
    result[order] = logits
    return result


def teacher_logits(
    teacher: nn.Module,
    data: EncodedDataset,
    tokenizer,
    batch_size: int,
    cache_dir: Path | None = None,
    teacher_precision: str = "no",
) -> np.ndarray:
    """(N, C) logits of ``teacher`` for every row of ``data``, from the cache or computed and stored
    (with ``teacher_precision`` bf16/fp16, under autocast: a separate cache entry)."""
    cache_dir = Path(cache_dir or default_cache_dir()) / "teacher-logits"
    device = next(teacher.parameters()).device
    mode = precision.resolve(teacher_precision, device)
    key = teacher_fingerprint(teacher) + inputs_fingerprint(data) + ("" if mode == "no" else mode)
    key = hashlib.sha256(key.encode()).hexdigest()[:32]
    path = cache_dir / f"{key}.npy"
    classes = getattr(teacher.config, "num_labels", None)
    if path.is_file():
        logits, problem = _read_entry(path, len(data), classes)
        if problem is None:
            say(f"teacher logits: cached ({path})")
            return logits
        say(f"teacher-logit cache entry {path} is damaged ({problem}): discarded, computing it again")
        for f in (path, path.with_suffix(".json")):
            f.unlink(missing_ok=True)
    logits = _compute(teacher, data, tokenizer, batch_size, device, mode)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
        np.save(tmp, logits)
        sidecar = {
            "rows": len(data),
            "classes": int(logits.shape[1]),
            "dtype": str(logits.dtype),
            "sha256": _digest(tmp),
        }
        path.with_suffix(".json").write_text(json.dumps(sidecar))  # before the entry: an entry always has one
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache costs speed, not correctness
        say(f"teacher logits not cached ({cache_dir}: {exc.strerror})")
    return logits


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_entry(path: Path, rows: int, classes: int | None) -> tuple[np.ndarray | None, str | None]:
    """The cached logits, or None and what is wrong with them (checksum, shape, dtype, non-finite values)."""
    try:
        sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if sidecar.get("sha256") != _digest(path):
            return None, "checksum differs from the one written"
        logits = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None, "its .json sidecar is missing"
    except (OSError, ValueError, EOFError) as exc:
        return None, f"unreadable: {exc}"
    if logits.dtype != np.float32:
        return None, f"dtype {logits.dtype}, expected float32"
    if logits.ndim != 2 or logits.shape[0] != rows or (classes and logits.shape[1] != classes):
        return None, f"shape {logits.shape}, expected ({rows}, {classes})"
    if not np.isfinite(logits).all():
        return None, "holds NaN or infinite values"
    return logits, None


def with_teacher_logits(data: EncodedDataset, logits: np.ndarray) -> EncodedDataset:
    """A copy of ``data`` whose rows carry ``teacher_logits`` (batched like labels)."""
    return EncodedDataset([{**row, "teacher_logits": logits[i].tolist()} for i, row in enumerate(data.rows)])
