"""Teacher-target cache: what a live teacher gives a stage (the layers its terms read, and its logits), computed
once for the training set, stored 16-bit and memory-mapped, and replayed by later epochs, seeds and runs in place of
the teacher's forward pass (most of an intermediate-distillation step with a large teacher).

Only the recorded layers are stored (hidden states, pre-softmax scores, Q/K/V of the mapped layers), each row's real
tokens only; replay pads them with zeros, so it serves terms that read real tokens alone (``TermSpec.cacheable``).
Entries are keyed like the logit cache (teacher weights, exact input ids, precision) plus what is recorded; one is
written into a temporary folder and renamed when complete, so an interrupted run leaves nothing half-written, and
one whose files do not match its index is discarded and computed again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from tinydistill import precision
from tinydistill.cache import default_cache_dir, inputs_fingerprint, teacher_fingerprint
from tinydistill.capture import Recorder, capture
from tinydistill.data.keys import MODEL_INPUTS, TARGET_ROW
from tinydistill.data.loaders import EncodedDataset, make_loader
from tinydistill.terms import CapturePlan
from tinydistill.ui import say, track

#: the row key that carries a training row's index into the store (batched like labels)

_STORED = np.float16


def _numel(shape: list[int], length: int) -> int:
    """Elements of one row's array: ``shape`` with -1 for each token axis."""
    return math.prod(length if s == -1 else s for s in shape)


class TargetStore:
    """An entry on disk: per recorded tensor one flat float16 array and each row's offset into it.

    Names: ``hidden.N`` (L, D), ``scores.N`` (H, L, L), ``qkv.N`` (L, 3 * D: query, key, value), ``logits`` (C,) or
    (L, C); L is the row's token count.
    """

    def __init__(self, folder: Path) -> None:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        self.folder = folder
        self.lengths = np.asarray(index["lengths"], dtype=np.int64)
        self.shapes: dict[str, list[int]] = index["shapes"]
        self.offsets = {n: _offsets(s, self.lengths) for n, s in self.shapes.items()}
        self.arrays = {}
        for name in self.shapes:
            array = np.load(folder / f"{name}.npy", mmap_mode="r")
            if array.dtype != _STORED or array.shape != (self.offsets[name][-1],):
                raise ValueError(
                    f"{name}.npy holds {array.dtype} {array.shape}, its index says float16 ({self.offsets[name][-1]},)"
                )
            self.arrays[name] = array

    def __len__(self) -> int:
        return len(self.lengths)

    def row(self, name: str, i: int) -> np.ndarray:
        """Row ``i`` of tensor ``name``, float16, its token axes at the row's length."""
        shape = [int(self.lengths[i]) if s == -1 else s for s in self.shapes[name]]
        lo, hi = self.offsets[name][i], self.offsets[name][i + 1]
        return self.arrays[name][lo:hi].reshape(shape)

    def _padded(self, name: str, rows: list[int], width: int) -> Tensor:
        shape = self.shapes[name]
        out = torch.zeros(len(rows), *[width if s == -1 else s for s in shape])
        for b, i in enumerate(rows):
            part = tuple(slice(0, int(self.lengths[i])) if s == -1 else slice(None) for s in shape)
            out[(b, *part)] = torch.from_numpy(self.row(name, i).astype(np.float32))
        return out

    def replay(self, rows: Tensor, width: int) -> tuple[Recorder, Tensor | None]:
        """The teacher's recording for a batch of store rows (zeros at padding up to ``width`` tokens) and its
        logits (None when not stored), float32, on ``rows``' device."""
        idx, rec, logits = rows.tolist(), Recorder(), None
        for name in self.shapes:
            value = self._padded(name, idx, width).to(rows.device)
            kind, _, layer = name.partition(".")
            if kind == "hidden":
                rec.hidden[int(layer)] = value
            elif kind == "scores":
                rec.scores[int(layer)], rec.allowed[int(layer)] = value, None
            elif kind == "qkv":
                rec.qkv[int(layer)] = list(value.chunk(3, dim=-1))
            else:
                logits = value
        return rec, logits


def _offsets(shape: list[int], lengths: np.ndarray) -> np.ndarray:
    sizes = np.asarray([_numel(shape, int(n)) for n in lengths], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)])


def _teacher_side(plan: CapturePlan) -> CapturePlan:
    return CapturePlan(
        teacher_hidden=plan.teacher_hidden, teacher_attention=plan.teacher_attention, teacher_qkv=plan.teacher_qkv
    )


def _per_row(rec: Recorder, logits: Tensor | None, lengths: list[int]) -> dict[str, list[np.ndarray]]:
    """A batch's recording cut into rows of real tokens, keyed by stored name."""
    out: dict[str, list[np.ndarray]] = {}
    tensors = {f"hidden.{n}": h for n, h in rec.hidden.items()}
    tensors |= {f"scores.{n}": s for n, s in rec.scores.items()}
    tensors |= {f"qkv.{n}": torch.cat(parts, dim=-1) for n, parts in rec.qkv.items()}
    if logits is not None:
        tensors["logits"] = logits
    for name, t in tensors.items():
        t = t.float().cpu().numpy()
        if name.startswith("scores"):
            out[name] = [t[b, :, :n, :n] for b, n in enumerate(lengths)]
        elif t.ndim == 2:  # logits (B, C)
            out[name] = list(t)
        else:
            out[name] = [t[b, :n] for b, n in enumerate(lengths)]
    return out


def _shape(name: str, row: np.ndarray) -> list[int]:
    """The stored shape template of a row: its token axes as -1."""
    if name.startswith("scores"):
        return [row.shape[0], -1, -1]
    return [row.shape[-1]] if row.ndim == 1 else [-1, row.shape[-1]]


def _hides_real_tokens(rec: Recorder, mask: Tensor) -> list[int]:
    """Layers whose own attention mask hides a real key from a real query (local attention): replay (padding
    only) would not reproduce them."""
    keys, queries = mask.bool()[:, None, None, :], mask.bool()[:, None, :, None]
    return [n for n, a in rec.allowed.items() if a is not None and bool((~a & keys & queries).any())]


def teacher_targets(
    teacher: nn.Module,
    data: EncodedDataset,
    tokenizer,
    plan: CapturePlan,
    logits: bool,
    batch_size: int,
    budget_gb: float,
    cache_dir: Path | None = None,
    teacher_precision: str = "no",
    build: bool = True,
) -> TargetStore | None:
    """The store of ``teacher``'s recorded layers (``plan``'s teacher side) and, with ``logits``, its logits for
    every row of ``data`` (the teacher's inputs), from the cache or (with ``build``) computed now. None when there
    is no entry and ``build`` is off, or, with a line saying why, when it cannot be cached: over ``budget_gb`` or
    the free disk, a local-attention teacher, values beyond float16, or a tokenizer that pads on the left."""
    plan = _teacher_side(plan)
    device = next(teacher.parameters()).device
    mode = precision.resolve(teacher_precision, device)
    what = json.dumps({"plan": asdict(plan), "logits": logits, "precision": mode}, sort_keys=True)
    key = hashlib.sha256((teacher_fingerprint(teacher) + inputs_fingerprint(data) + what).encode()).hexdigest()[:32]
    root = Path(cache_dir or default_cache_dir()) / "teacher-targets"
    folder = root / key
    if (folder / "index.json").is_file():
        try:
            store = TargetStore(folder)
            if len(store) == len(data):
                _mark_used(folder)  # most recently used: the last to be evicted
                say(f"teacher targets: cached ({folder})")
                return store
            problem = f"{len(store)} rows, the data has {len(data)}"
        except (OSError, ValueError, KeyError) as exc:
            problem = str(exc)
        say(f"teacher-target cache entry {folder} is damaged ({problem}): discarded, computing it again")
        shutil.rmtree(folder, ignore_errors=True)
    if not build:
        return None
    if tokenizer.padding_side != "right":
        say("teacher targets not cached: the teacher's tokenizer pads on the left; the teacher runs live")
        return None
    tmp = root / f"{key}.tmp-{os.getpid()}"
    try:
        written = _write(teacher, data, tokenizer, plan, logits, batch_size, budget_gb, tmp, device, mode)
        if not written:
            return None
        try:
            os.replace(tmp, folder)
            _mark_used(folder)
        except OSError:  # another process finished the same entry first
            if not (folder / "index.json").is_file():
                raise
        return TargetStore(folder)
    except OSError as exc:  # a read-only or full cache costs speed, not correctness
        say(f"teacher targets not cached ({root}: {exc.strerror or exc}); the teacher runs live")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@torch.inference_mode()
def _write(teacher, data, tokenizer, plan, logits, batch_size, budget_gb, tmp: Path, device, mode) -> bool:
    """Run the teacher over ``data`` shortest rows first and write its targets into ``tmp``; False (with a line
    saying why) when they cannot be cached."""
    lengths = [len(r["input_ids"]) for r in data.rows]
    order = sorted(range(len(data)), key=lambda i: lengths[i])
    inputs = EncodedDataset([{k: data.rows[i][k] for k in MODEL_INPUTS if k in data.rows[i]} for i in order])
    arrays: dict[str, np.memmap] = {}
    offsets: dict[str, np.ndarray] = {}
    shapes: dict[str, list[int]] = {}
    done = 0
    with (
        capture(teacher, plan.teacher_hidden, plan.teacher_attention, plan.teacher_qkv) as rec,
        precision.autocast(mode, device),
    ):
        for batch in track(make_loader(inputs, tokenizer, batch_size, shuffle=False), "caching teacher targets"):
            out = teacher(**{k: v.to(device) for k, v in batch.items()})
            rows = order[done : done + len(batch["input_ids"])]
            hidden = _hides_real_tokens(rec, batch["attention_mask"].to(device))  # every batch: a window may
            if hidden:  # only show in longer rows
                say(f"teacher targets not cached: layer(s) {hidden} attend locally; the teacher runs live")
                return False
            per_row = _per_row(rec, out.logits if logits else None, [lengths[i] for i in rows])
            if not arrays:
                shapes = {n: _shape(n, v[0]) for n, v in per_row.items()}
                offsets = {n: _offsets(s, np.asarray(lengths)) for n, s in shapes.items()}
                if not _fits(sum(int(o[-1]) for o in offsets.values()) * 2, budget_gb, tmp.parent):
                    return False
                tmp.mkdir(parents=True)
                arrays = {
                    n: np.lib.format.open_memmap(tmp / f"{n}.npy", "w+", _STORED, (int(o[-1]),))
                    for n, o in offsets.items()
                }
            for name, values in per_row.items():
                for i, v in zip(rows, values):
                    stored = v.astype(_STORED).reshape(-1)
                    if not np.isfinite(stored).all():
                        say(f"teacher targets not cached: {name} exceeds float16's range; the teacher runs live")
                        return False
                    arrays[name][offsets[name][i] : offsets[name][i + 1]] = stored
            done += len(rows)
    for array in arrays.values():
        array.flush()
    index = {"rows": len(data), "lengths": lengths, "shapes": shapes}
    (tmp / "index.json").write_text(json.dumps(index))
    return True


def _fits(size: int, budget_gb: float, root: Path) -> bool:
    """Whether a new entry of ``size`` bytes fits: the whole target cache under ``root`` stays within the budget (the
    least recently used entries are deleted to make room) and the disk keeps a gigabyte free; if not, a line says
    what to change."""
    gb = size / 1e9
    if gb > budget_gb:
        say(
            f"teacher targets not cached: they would take {gb:.1f} GB, over teacher_cache_gb = {budget_gb:g}; "
            "the teacher runs live (raise teacher_cache_gb, or lower data.max_length or the number of mapped layers)"
        )
        return False
    root.mkdir(parents=True, exist_ok=True)
    entries = sorted((e for e in root.iterdir() if (e / "index.json").is_file()), key=_last_used)
    held = {e: sum(f.stat().st_size for f in e.iterdir()) for e in entries}
    while entries and sum(held.values()) + size > budget_gb * 1e9:
        oldest = entries.pop(0)
        say(f"teacher targets: removing the least recently used entry {oldest} ({held.pop(oldest) / 1e9:.2f} GB)")
        shutil.rmtree(oldest, ignore_errors=True)
    free = shutil.disk_usage(root).free
    if size > free - 1e9:  # keep a gigabyte for everything else
        say(f"teacher targets not cached: they would take {gb:.1f} GB, {root} has {free / 1e9:.1f} GB free")
        return False
    say(f"teacher targets: caching {gb:.2f} GB in {root}")
    return True


def _mark_used(entry: Path) -> None:
    """Stamp the entry as used now, to the nanosecond: the kernel's own file times are coarse (a few ms), so entries
    used in quick succession would otherwise tie."""
    now = time.time_ns()
    os.utime(entry / "index.json", ns=(now, now))


def _last_used(entry: Path) -> int:
    return (entry / "index.json").stat().st_mtime_ns  # stamped on every write and read


def with_target_rows(data: EncodedDataset) -> EncodedDataset:
    """A copy of ``data`` whose rows carry their index into the store (:data:`TARGET_ROW`)."""
    rows = [{**row, TARGET_ROW: i} for i, row in enumerate(data.rows)]
    return EncodedDataset(rows, data.alignment, data.examples)
