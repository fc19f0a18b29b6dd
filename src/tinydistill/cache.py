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
    h.update(getattr(teacher, "cache_key", "").encode())  # e.g. a sentence encoder's pooling and normalisation
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
def _compute(
    teacher: nn.Module, data: EncodedDataset, tokenizer, batch_size: int, device, mode: str
) -> list[np.ndarray]:
    """Each row's logits, in row order: (C,) per text, or (L, C) per token (the row's L real tokens, no padding).
    Rows are run shortest first, so each batch holds similar lengths (little padding)."""
    order = sorted(range(len(data)), key=lambda i: len(data.rows[i]["input_ids"]))
    inputs = EncodedDataset([{k: data.rows[i][k] for k in INPUT_KEYS if k in data.rows[i]} for i in order])
    out: list[np.ndarray] = [None] * len(data)  # type: ignore[list-item]
    done = 0
    with precision.autocast(mode, device):
        for batch in track(make_loader(inputs, tokenizer, batch_size, shuffle=False), "caching teacher logits"):
            logits = teacher(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
            for j, row_logits in enumerate(logits):
                i = order[done + j]
                out[i] = row_logits[: len(data.rows[i]["input_ids"])] if row_logits.ndim == 2 else row_logits
            done += len(logits)
    return out


def _pack(rows: list[np.ndarray]) -> tuple[np.ndarray, list[int] | None]:
    """One float32 array for storage: (N, C) for per-text rows, (sum of L, C) plus each row's L for per-token rows."""
    if rows and rows[0].ndim == 2:
        return np.concatenate(rows).astype(np.float32), [len(r) for r in rows]
    return np.stack(rows).astype(np.float32), None


def _unpack(stored: np.ndarray, lengths: list[int] | None) -> np.ndarray | list[np.ndarray]:
    return stored if lengths is None else np.split(stored, np.cumsum(lengths)[:-1])


def teacher_logits(
    teacher: nn.Module,
    data: EncodedDataset,
    tokenizer,
    batch_size: int,
    cache_dir: Path | None = None,
    teacher_precision: str = "no",
    store: str = "float32",
) -> np.ndarray | list[np.ndarray]:
    """The logits of ``teacher`` for every row of ``data``, (N, C) per text or a list of (L, C) per token, from the
    cache or computed and stored (with ``teacher_precision`` bf16/fp16, under autocast: a separate cache entry).
    ``store`` float16 halves the file where the values fit (sentence vectors); (N, C) entries are read back
    memory-mapped, so a large transfer set's outputs are paged in by the batches that use them."""
    cache_dir = Path(cache_dir or default_cache_dir()) / "teacher-logits"
    device = next(teacher.parameters()).device
    mode = precision.resolve(teacher_precision, device)
    key = teacher_fingerprint(teacher) + inputs_fingerprint(data) + ("" if mode == "no" else mode)
    key = hashlib.sha256(key.encode()).hexdigest()[:32]
    path = cache_dir / f"{key}.npy"
    classes = getattr(teacher, "output_size", None) or getattr(teacher.config, "num_labels", None)
    if path.is_file():
        logits, problem = _read_entry(path, data, classes)
        if problem is None:
            say(f"teacher logits: cached ({path})")
            return logits
        say(f"teacher-logit cache entry {path} is damaged ({problem}): discarded, computing it again")
        for f in (path, path.with_suffix(".json")):
            f.unlink(missing_ok=True)
    rows = _compute(teacher, data, tokenizer, batch_size, device, mode)
    stored, lengths = _pack(rows)
    if store == "float16" and np.isfinite(stored.astype(np.float16)).all():
        stored = stored.astype(np.float16)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
        np.save(tmp, stored)
        sidecar = {
            "rows": len(data),
            "classes": int(stored.shape[1]),
            "dtype": str(stored.dtype),
            "lengths": lengths,
            "sha256": _digest(tmp),
        }
        path.with_suffix(".json").write_text(json.dumps(sidecar))  # before the entry: an entry always has one
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache costs speed, not correctness
        say(f"teacher logits not cached ({cache_dir}: {exc.strerror})")
    if lengths is None and path.is_file():
        return np.load(path, mmap_mode="r")  # the rows page in as batches read them
    return _unpack(stored, lengths)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_entry(path: Path, data: EncodedDataset, classes: int | None) -> tuple[np.ndarray | list | None, str | None]:
    """The cached logits, or None and what is wrong with them (checksum, shape, row lengths, dtype, non-finite
    values)."""
    try:
        sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if sidecar.get("sha256") != _digest(path):
            return None, "checksum differs from the one written"
        logits = np.load(path, allow_pickle=False, mmap_mode="r")
    except FileNotFoundError:
        return None, "its .json sidecar is missing"
    except (OSError, ValueError, EOFError) as exc:
        return None, f"unreadable: {exc}"
    rows, lengths = len(data), sidecar.get("lengths")
    if logits.dtype not in (np.float32, np.float16) or str(logits.dtype) != sidecar.get("dtype"):
        return None, f"dtype {logits.dtype}, expected float32 or float16 as its sidecar says"
    if lengths is not None and lengths != [len(r["input_ids"]) for r in data.rows]:
        return None, "its per-row token counts differ from the data's"
    expected = rows if lengths is None else sum(lengths)
    if logits.ndim != 2 or logits.shape[0] != expected or (classes and logits.shape[1] != classes):
        return None, f"shape {logits.shape}, expected ({expected}, {classes})"
    if not np.isfinite(logits).all():
        return None, "holds NaN or infinite values"
    return (logits if lengths is None else _unpack(np.asarray(logits), lengths)), None


def with_teacher_logits(data: EncodedDataset, logits) -> EncodedDataset:
    """A copy of ``data`` whose rows carry ``teacher_logits`` (batched like labels): (C,) or (L, C) per row, as
    arrays (rows of a memory-mapped entry stay on disk until a batch reads them)."""
    rows = [{**row, "teacher_logits": logits[i]} for i, row in enumerate(data.rows)]
    return EncodedDataset(rows, data.alignment, data.examples)
