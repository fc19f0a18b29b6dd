"""Training checkpoints: student, projections, optimizer, scheduler, RNG states and the position in the
data, written atomically (temporary folder, fsync, rename) so a crash at any moment leaves only
complete checkpoints; the newest is found again on resume."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from tinydistill.outputs import write_json

_NAME = re.compile(r"^step-(\d{8})$")
KEEP = 2


def checkpoint_root(output: Path) -> Path:
    """Where a stage writing ``output`` keeps its checkpoints until it completes."""
    return output.parent / f".{output.name}.checkpoints"


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (incomplete ones never carry the final name)."""
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if _NAME.match(p.name) and (p / "progress.json").is_file())
    return done[-1] if done else None


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
        write_json(tmp / "progress.json", progress)
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
