"""Teacher-output cache: the teacher's logits for a training set, computed once and reused across
epochs, stages and runs.

Exact only for a deterministic teacher (eval mode, which tinydistill always uses) and inputs that do
not change between epochs (offline augmentation is fine, on-the-fly augmentation is not). Each row
(a sentence, a pair, a QA window) is keyed by the teacher's weights and config, the precision and
the row's exact token ids, so a changed row is a new key and nothing stale can be read back; rows
another set already holds (the originals beside their augmented copies, a dev subset) are reused.
Rows are written in segments of :data:`SEGMENT_ROWS` as they are computed: an interrupted run keeps
the segments it finished, and the next computes only the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tinydistill import precision
from tinydistill.data.keys import CACHED_LOGITS, MODEL_INPUTS
from tinydistill.data.loaders import EncodedDataset, make_loader
from tinydistill.ui import progress, say

SEGMENT_ROWS = 2048  # rows per segment file: the most an interruption can cost


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
    """One digest of every row's inputs, in order (a key for a whole set)."""
    return hashlib.sha256("".join(row_keys(data)).encode()).hexdigest()


def row_keys(data: EncodedDataset) -> list[str]:
    """One key per row: a digest of the inputs the teacher reads (names and token ids)."""
    keys = []
    for row in data.rows:
        h = hashlib.sha256()
        for key in MODEL_INPUTS:
            if key in row:
                h.update(key.encode() + b"=" + np.asarray(row[key], dtype=np.int64).tobytes())
        keys.append(h.hexdigest()[:32])
    return keys


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
    bar: tqdm,
) -> None:
    """Write each row's logits into ``out`` (a float32 memory map): (N, C) rows per text, or (``lengths``) each
    row's L real tokens stacked (sum of L, C). Rows are run shortest first, so each batch holds similar lengths."""
    order = sorted(range(len(data)), key=lambda i: len(data.rows[i]["input_ids"]))
    starts = None if lengths is None else np.concatenate([[0], np.cumsum(lengths)])
    inputs = EncodedDataset([{k: data.rows[i][k] for k in MODEL_INPUTS if k in data.rows[i]} for i in order])
    done = 0
    with precision.autocast(mode, device):
        for batch in make_loader(inputs, tokenizer, batch_size, shuffle=False):
            logits = teacher(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
            for j, row_logits in enumerate(logits):
                i = order[done + j]
                if starts is None:
                    out[i] = row_logits
                else:
                    out[starts[i] : starts[i + 1]] = row_logits[: starts[i + 1] - starts[i]]
            done += len(logits)
            bar.update(len(logits))


def _remove_stale(cache_dir: Path) -> None:
    """Delete temporary files whose writer is no longer running (a killed run leaves its ``*.tmp-PID.npy``)."""
    for tmp in [*cache_dir.glob("*.tmp-*.npy"), *cache_dir.glob("*.tmp-*.json")]:
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


def _fits(size: int, new: int, budget_gb: float, cache_dir: Path, keep: set[Path]) -> bool:
    """Whether ``new`` bytes of a set of ``size`` may be written: the set within the budget, the least recently used
    segments (but those in ``keep``) deleted until the whole cache is, and a gigabyte of disk left (a line if not)."""
    gb = size / 1e9
    if gb > budget_gb:
        say(
            f"teacher logits not cached: they would take {gb:.1f} GB, over teacher_cache_gb = {budget_gb:g}; the "
            "teacher runs live (raise teacher_cache_gb, or use fewer rows or labels)"
        )
        return False
    _make_room(cache_dir, new, budget_gb * 1e9, keep)
    free = shutil.disk_usage(cache_dir).free
    if new > free - 1e9:  # keep a gigabyte for everything else
        say(f"teacher logits not cached: they would take {new / 1e9:.1f} GB, {cache_dir} has {free / 1e9:.1f} GB free")
        return False
    return True


def _make_room(cache_dir: Path, new: int, budget: float, keep: set[Path]) -> None:
    """Delete the least recently used segments not in ``keep`` until ``new`` more bytes keep the cache in ``budget``."""
    held = {}
    for path in cache_dir.glob("*.npy"):
        try:
            if ".tmp-" not in path.name:
                held[path] = (path.stat().st_size, path.with_suffix(".json").stat().st_mtime_ns)
        except FileNotFoundError:  # unfinished, or removed by another run meanwhile
            continue
    total = sum(size for size, _ in held.values())
    for path in sorted((p for p in held if p not in keep), key=lambda p: held[p][1]):
        if total + new <= budget:
            return
        say(f"teacher logits: removing the least recently used segment {path} ({held[path][0] / 1e9:.2f} GB)")
        for f in (path.with_suffix(".json"), path):
            f.unlink(missing_ok=True)
        total -= held[path][0]


def _mark_used(path: Path) -> None:
    """Stamp a segment's sidecar as used now, to the nanosecond (the kernel's file times are coarse)."""
    now = time.time_ns()
    try:
        os.utime(path.with_suffix(".json"), ns=(now, now))
    except OSError:  # a cache shared read-only is still read
        pass


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
    """The logits of ``teacher`` for every row of ``data`` from the cache, the rows it lacks computed into it (with
    ``teacher_precision`` bf16/fp16, under autocast: separate keys): an (N, C) array where one segment holds exactly
    these rows, else a list of N rows, (C,) per text or (L, C) per token. None, with a line, where the rows would not
    fit ``budget_gb`` or the disk, or the cache cannot be written (the teacher then runs live). Rows are written to
    disk as they are computed and read back memory-mapped, so they page in as batches use them; ``store`` float16
    halves the files where the values fit (sentence vectors)."""
    cache_dir = Path(cache_dir or default_cache_dir()) / "teacher-logits"
    device = next(teacher.parameters()).device
    mode = precision.resolve(teacher_precision, device)
    what = teacher_fingerprint(teacher) + ("" if mode == "no" else mode) + (" per token" if per_token else "")
    prefix = hashlib.sha256(what.encode()).hexdigest()[:32]
    classes = int(getattr(teacher, "output_size", None) or teacher.config.num_labels)
    keys = row_keys(data)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale(cache_dir)
        found = _lookup(cache_dir, prefix, keys, classes)
        missing = [i for i, key in enumerate(keys) if key not in found.rows]
        if not missing:
            say(f"teacher logits: cached ({cache_dir})")
            return found.assemble(keys)
        lengths = [len(r["input_ids"]) for r in data.rows] if per_token else None
        size = (len(data) if lengths is None else sum(lengths)) * classes * 4
        new = (len(missing) if lengths is None else sum(lengths[i] for i in missing)) * classes * 4
        if not _fits(size, new + 128 * (len(missing) // SEGMENT_ROWS + 1), budget_gb, cache_dir, found.paths):
            return None
        if len(missing) < len(data):
            say(f"teacher logits: {len(data) - len(missing):,} of {len(data):,} rows cached, computing the rest")
        with progress(len(missing), "caching teacher logits") as bar:
            writer = _Writer(teacher, tokenizer, batch_size, device, mode, store, classes, cache_dir / prefix, bar)
            missing.sort(key=lambda i: len(data.rows[i]["input_ids"]))  # similar lengths share a segment
            for start in range(0, len(missing), SEGMENT_ROWS):
                if not writer.segment(data, sorted(missing[start : start + SEGMENT_ROWS]), keys, per_token):
                    say("teacher logits not cached: the teacher gives NaN or infinite logits; the teacher runs live")
                    return None
        found = _lookup(cache_dir, prefix, keys, classes)
        if any(key not in found.rows for key in keys):  # another run removed a segment meanwhile
            say(f"teacher logits not cached: rows went missing from {cache_dir} as they were written; live teacher")
            return None
    except OSError as exc:
        say(f"teacher logits not cached ({cache_dir}: {exc.strerror}); the teacher runs live")
        return None
    return found.assemble(keys)


@dataclass
class _Writer:
    """Computes rows with the teacher and writes each set of them as one segment, named ``stem``-PID-random."""

    teacher: nn.Module
    tokenizer: object
    batch_size: int
    device: torch.device
    mode: str
    store: str
    classes: int
    stem: Path
    bar: tqdm

    def segment(self, data: EncodedDataset, rows: list[int], keys: list[str], per_token: bool) -> bool:
        """Compute ``rows`` of ``data`` (in data order in the file) and publish them under their ``keys``; False (and
        nothing published) where a value is not finite."""
        part = EncodedDataset([data.rows[i] for i in rows])
        lengths = [len(r["input_ids"]) for r in part.rows] if per_token else None
        path = self.stem.with_name(f"{self.stem.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy")
        tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
        try:
            shape = (len(part) if lengths is None else sum(lengths), self.classes)
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            args = (self.teacher, part, self.tokenizer, self.batch_size, self.device, self.mode, self.bar)
            _compute_into(out, lengths, *args)
            out.flush()
            del out
            return _publish(tmp, path, [keys[i] for i in rows], lengths, self.store)
        finally:
            tmp.unlink(missing_ok=True)


def _publish(tmp: Path, path: Path, keys: list[str], lengths: list[int] | None, store: str) -> bool:
    """Turn a written temporary file into the segment ``path`` (float16 where asked and the values fit), then write
    its sidecar: a segment counts once its sidecar exists. False, and nothing published, where a value is not
    finite."""
    values = np.load(tmp, mmap_mode="r")
    if not all(np.isfinite(part).all() for part in np.array_split(values, max(1, values.size >> 24))):
        return False
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
    sidecar = {"rows": len(keys), "classes": int(values.shape[1]), "dtype": str(values.dtype), "lengths": lengths}
    sidecar |= {"sha256": _digest(tmp), "keys": keys}
    os.replace(tmp, path)
    written = path.with_suffix(f".tmp-{os.getpid()}.json")
    written.write_text(json.dumps(sidecar))
    os.replace(written, path.with_suffix(".json"))
    return True


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class _Found:
    """Cached rows by key, and each segment read with its keys (so a set one segment holds comes back whole)."""

    rows: dict[str, np.ndarray]
    segments: dict[Path, tuple[list[str], np.ndarray | list[np.ndarray]]]

    @property
    def paths(self) -> set[Path]:
        return set(self.segments)

    def assemble(self, keys: list[str]) -> np.ndarray | list[np.ndarray]:
        for segment_keys, values in self.segments.values():
            if segment_keys == keys:
                return values
        return [self.rows[key] for key in keys]


def _lookup(cache_dir: Path, prefix: str, keys: list[str], classes: int) -> _Found:
    """The rows of ``keys`` that this teacher's segments hold (only segments holding some are read and checked); a
    damaged one is named and deleted, and its rows left out (they are computed again)."""
    wanted, found = set(keys), _Found({}, {})
    for path in sorted(p for p in cache_dir.glob(f"{prefix}-*.npy") if ".tmp-" not in p.name):
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            segment_keys = list(meta["keys"])
        except FileNotFoundError:
            writer = path.stem.split("-")[1]
            if writer.isdigit() and _running(int(writer)) and int(writer) != os.getpid():
                continue  # another run is publishing it now
            meta, segment_keys = {}, []
        except (OSError, ValueError, KeyError, TypeError):
            meta, segment_keys = {}, []
        hits = [j for j, key in enumerate(segment_keys) if key in wanted and key not in found.rows]
        if segment_keys and not hits:
            continue
        values, problem = _read_segment(path, meta, classes)
        if problem is not None:
            say(f"teacher-logit cache entry {path} is damaged ({problem}): discarded, computing its rows again")
            for f in (path, path.with_suffix(".json")):
                f.unlink(missing_ok=True)
            continue
        found.rows |= {segment_keys[j]: values[j] for j in hits}
        found.segments[path] = (segment_keys, values)
        _mark_used(path)  # most recently used: the last to be removed to make room
    return found


def _read_segment(path: Path, meta: dict, classes: int) -> tuple[np.ndarray | list | None, str | None]:
    """A segment's values ((N, C), or a list of (L, C) per token), or what is wrong with them or with its sidecar
    ``meta`` (missing, checksum, shape, row lengths, dtype, non-finite values)."""
    if not meta:
        exists = path.with_suffix(".json").is_file()
        return None, "its .json sidecar is unreadable" if exists else "its .json sidecar is missing"
    try:
        if meta.get("sha256") != _digest(path):
            return None, "checksum differs from the one written"
        values = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        return None, f"unreadable: {exc}"
    keys, lengths = meta["keys"], meta.get("lengths")
    if values.dtype not in (np.float32, np.float16) or str(values.dtype) != meta.get("dtype"):
        return None, f"dtype {values.dtype}, expected float32 or float16 as its sidecar says"
    if lengths is not None and len(lengths) != len(keys):
        return None, f"{len(lengths)} row lengths for {len(keys)} rows"
    expected = len(keys) if lengths is None else sum(lengths)
    if values.ndim != 2 or values.shape[0] != expected or values.shape[1] != classes:
        return None, f"shape {values.shape}, expected ({expected}, {classes})"
    if not all(np.isfinite(part).all() for part in np.array_split(values, max(1, values.size >> 24))):
        return None, "holds NaN or infinite values"
    return (values if lengths is None else np.split(values, np.cumsum(lengths)[:-1])), None


def with_teacher_logits(data: EncodedDataset, logits) -> EncodedDataset:
    """A copy of ``data`` whose rows carry ``teacher_logits`` (batched like labels): (C,) or (L, C) per row, as
    arrays (rows of a memory-mapped entry stay on disk until a batch reads them)."""
    rows = [{**row, CACHED_LOGITS: logits[i]} for i, row in enumerate(data.rows)]
    return EncodedDataset(rows, data.alignment, data.examples)
