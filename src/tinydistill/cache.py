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
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinydistill import precision
from tinydistill.data.keys import CACHED_LOGITS, MODEL_INPUTS
from tinydistill.data.loaders import EncodedDataset, make_loader
from tinydistill.ui import say, track


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
        for key in MODEL_INPUTS:
            if key in row:
                h.update(np.asarray(row[key], dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


@torch.inference_mode()
def _compute_into(
    out: np.ndarray,
    lengths: list[int] | None,
    teacher: nn.Module,
    data: EncodedDataset,
    tokenizer,
    batch_size: int,
    device,
    mode: str,
) -> None:
    """Write each row's logits into ``out`` (a float32 memory map): (N, C) rows per text, or (``lengths``) each
    row's L real tokens stacked (sum of L, C). Rows are run shortest first, so each batch holds similar lengths."""
    order = sorted(range(len(data)), key=lambda i: len(data.rows[i]["input_ids"]))
    starts = None if lengths is None else np.concatenate([[0], np.cumsum(lengths)])
    inputs = EncodedDataset([{k: data.rows[i][k] for k in MODEL_INPUTS if k in data.rows[i]} for i in order])
    done = 0
    with precision.autocast(mode, device):
        for batch in track(make_loader(inputs, tokenizer, batch_size, shuffle=False), "caching teacher logits"):
            logits = teacher(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
            for j, row_logits in enumerate(logits):
                i = order[done + j]
                if starts is None:
                    out[i] = row_logits
                else:
                    out[starts[i] : starts[i + 1]] = row_logits[: starts[i + 1] - starts[i]]
            done += len(logits)


def _unpack(stored: np.ndarray, lengths: list[int] | None) -> np.ndarray | list[np.ndarray]:
    return stored if lengths is None else np.split(stored, np.cumsum(lengths)[:-1])


def _remove_stale(cache_dir: Path) -> None:
    """Delete temporary entries whose writer is no longer running (a killed run leaves its ``*.tmp-PID.npy``)."""
    for tmp in cache_dir.glob("*.tmp-*.npy"):
        pid = tmp.name.rsplit(".tmp-", 1)[1].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fits(size: int, budget_gb: float, cache_dir: Path) -> bool:
    """Whether an entry of ``size`` bytes may be written: within the budget and the free disk (a line if not)."""
    gb = size / 1e9
    if gb > budget_gb:
        say(
            f"teacher logits not cached: they would take {gb:.1f} GB, over teacher_cache_gb = {budget_gb:g}; the "
            "teacher runs live (raise teacher_cache_gb, or use fewer rows or labels)"
        )
        return False
    free = shutil.disk_usage(cache_dir).free
    if size > free - 1e9:  # keep a gigabyte for everything else
        say(f"teacher logits not cached: they would take {gb:.1f} GB, {cache_dir} has {free / 1e9:.1f} GB free")
        return False
    return True


def teacher_logits(
    teacher: nn.Module,
    data: EncodedDataset,
    tokenizer,
    batch_size: int,
    cache_dir: Path | None = None,
    teacher_precision: str = "no",
    store: str = "float32",
    budget_gb: float = 16.0,
    per_token: bool = False,
) -> np.ndarray | list[np.ndarray] | None:
    """The logits of ``teacher`` for every row of ``data``, (N, C) per text or a list of (L, C) per token, from the
    cache or computed into it (with ``teacher_precision`` bf16/fp16, under autocast: a separate cache entry); None,
    with a line, where the entry would not fit ``budget_gb`` or the disk, or the cache cannot be written (the
    teacher then runs live). They are written to disk as they are computed and read back memory-mapped, so the rows
    page in as batches use them; ``store`` float16 halves the file where the values fit (sentence vectors)."""
    cache_dir = Path(cache_dir or default_cache_dir()) / "teacher-logits"
    device = next(teacher.parameters()).device
    mode = precision.resolve(teacher_precision, device)
    key = teacher_fingerprint(teacher) + inputs_fingerprint(data) + ("" if mode == "no" else mode)
    path = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"
    classes = int(getattr(teacher, "output_size", None) or teacher.config.num_labels)
    if path.is_file():
        logits, problem = _read_entry(path, data, classes)
        if problem is None:
            say(f"teacher logits: cached ({path})")
            return logits
        say(f"teacher-logit cache entry {path} is damaged ({problem}): discarded, computing it again")
        for f in (path, path.with_suffix(".json")):
            f.unlink(missing_ok=True)
    lengths = [len(r["input_ids"]) for r in data.rows] if per_token else None
    shape = (len(data) if lengths is None else sum(lengths), classes)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale(cache_dir)
        if not _fits(shape[0] * shape[1] * 4, budget_gb, cache_dir):
            return None
        tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            _compute_into(out, lengths, teacher, data, tokenizer, batch_size, device, mode)
            out.flush()
            del out
            _publish(tmp, path, lengths, store)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        say(f"teacher logits not cached ({cache_dir}: {exc.strerror}); the teacher runs live")
        return None
    logits, _ = _read_entry(path, data, classes)
    return logits


def _publish(tmp: Path, path: Path, lengths: list[int] | None, store: str) -> None:
    """Turn a written temporary entry into the cache entry ``path`` (float16 where asked and the values fit), its
    sidecar written first, so an entry never lacks one."""
    values = np.load(tmp, mmap_mode="r")
    if store == "float16" and all(np.isfinite(c.astype(np.float16)).all() for c in np.array_split(values, 64)):
        half = tmp.with_suffix(".f16.npy")
        try:
            out = np.lib.format.open_memmap(half, mode="w+", dtype=np.float16, shape=values.shape)
            for start in range(0, len(values), 65536):
                out[start : start + 65536] = values[start : start + 65536]
            out.flush()
            del out
            os.replace(half, tmp)
        finally:
            half.unlink(missing_ok=True)
        values = np.load(tmp, mmap_mode="r")
    sidecar = {"rows": len(values) if lengths is None else len(lengths), "classes": int(values.shape[1])}
    sidecar |= {"dtype": str(values.dtype), "lengths": lengths, "sha256": _digest(tmp)}
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    os.replace(tmp, path)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


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
    if not all(np.isfinite(part).all() for part in np.array_split(logits, max(1, logits.size >> 24))):
        return None, "holds NaN or infinite values"
    return (logits if lengths is None else _unpack(logits, lengths)), None


def with_teacher_logits(data: EncodedDataset, logits) -> EncodedDataset:
    """A copy of ``data`` whose rows carry ``teacher_logits`` (batched like labels): (C,) or (L, C) per row, as
    arrays (rows of a memory-mapped entry stay on disk until a batch reads them)."""
    rows = [{**row, CACHED_LOGITS: logits[i]} for i, row in enumerate(data.rows)]
    return EncodedDataset(rows, data.alignment, data.examples)
