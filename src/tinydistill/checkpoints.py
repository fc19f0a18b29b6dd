"""Training checkpoints: student, projections, optimizer, scheduler, RNG states and the position in the
data, written atomically (temporary folder, fsync, rename) so a crash at any moment leaves only
complete checkpoints; on resume the newest intact one is used (each records the size and checksum of its files,
so one damaged after it was written is named and passed over for the one before)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from tinydistill.outputs import write_json
from tinydistill.ui import say

_NAME = re.compile(r"^step-(\d{8})$")
KEEP = 2


def checkpoint_root(output: Path) -> Path:
    """Where a stage writing ``output`` keeps its checkpoints until it completes."""
    return output.parent / f".{output.name}.checkpoints"


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (incomplete ones never carry the final name)."""
    done = _complete(root)
    return done[-1] if done else None


def _complete(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _NAME.match(p.name) and (p / "progress.json").is_file())


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(folder: Path) -> dict[str, list]:
    """[size, sha256] of every file in a checkpoint, by relative path."""
    return {
        str(f.relative_to(folder)): [f.stat().st_size, _digest(f)] for f in sorted(folder.rglob("*")) if f.is_file()
    }


def damage(checkpoint: Path) -> str | None:
    """What is wrong with a complete-looking checkpoint (a file missing, truncated or changed), or None."""
    try:
        progress = json.loads((checkpoint / "progress.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"progress.json unreadable ({exc})"
    for name, (size, digest) in progress.get("manifest", {}).items():
        f = checkpoint / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != size:
            return f"{name} is {f.stat().st_size} bytes, {size} were written (truncated?)"
        if _digest(f) != digest:
            return f"{name} changed since it was written (checksum differs)"
    return None


def usable(root: Path) -> Path | None:
    """The newest checkpoint under ``root`` that is intact; a damaged newer one is named and passed over."""
    found = _complete(root)
    for i, ckpt in enumerate(reversed(found)):
        problem = damage(ckpt)
        if problem is None:
            return ckpt
        older = found[-i - 2].name if i + 2 <= len(found) else None
        say(
            f"checkpoint {ckpt} is damaged: {problem}; "
            + (f"falling back to {older}" if older else "no older checkpoint: the stage starts over")
        )
    return None


def _fsync_tree(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(accelerator, root: Path, step: int, progress: dict, best_state: dict | None) -> Path:
    """Write checkpoint ``step`` under ``root`` (call on every process: each saves its RNG states);
    the main process completes and renames it, and keeps the newest ``KEEP``."""
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if best_state is not None:
            save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp / "best_student.safetensors"))
        write_json(tmp / "progress.json", {**progress, "manifest": _manifest(tmp)})
        _fsync_tree(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(p for p in root.iterdir() if _NAME.match(p.name))[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator, checkpoint: Path) -> tuple[dict, dict | None]:
    """Restore model, optimizer, scheduler and RNG states; returns (progress, best student state or None)."""
    accelerator.load_state(str(checkpoint))
    progress = json.loads((checkpoint / "progress.json").read_text(encoding="utf-8"))
    best = checkpoint / "best_student.safetensors"
    return progress, (load_file(str(best)) if best.is_file() else None)
