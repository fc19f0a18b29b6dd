"""Stage output folders: written under a temporary name and renamed into place only when complete,
so a crash never leaves a folder that looks finished."""
from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from tinydistill.errors import TinyDistillError

METRICS_FILE = "metrics.json"
CONFIG_FILE = "tinydistill.yaml"
TRAINING_STATE_DIR = "training_state"


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


def is_complete(folder: str | Path) -> bool:
    """A finished stage output: the folder exists and holds its metrics file (written last)."""
    return (Path(folder) / METRICS_FILE).is_file()


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR}


class StagingDir:
    """``with StagingDir(out) as tmp:`` write into ``tmp``; on success it is renamed to ``out``.

    On an exception the temporary folder is removed and ``out`` is left untouched. In a multi-process
    run only the main process writes; the others wait until the folder is in place.
    """

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp-{uuid.uuid4().hex[:8]}")
        self.main = is_main_process()

    def __enter__(self) -> Path:
        if not self.main:
            return self.tmp
        if self.final.parent.is_dir():  # temp folders left by a killed run (kill -9 skips all cleanup)
            for stale in self.final.parent.glob(f".{self.final.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
        try:
            self.tmp.mkdir(parents=True)
        except OSError as exc:
            raise TinyDistillError(f"cannot write to {self.final.parent}: {exc.strerror}") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:  # full, read-only, not permitted
                raise TinyDistillError(f"could not write {self.final}: {exc.strerror}; nothing was written") from None
            return False
        if not self.main:
            wait_for_everyone()
            return False
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.final)
        shutil.rmtree(self.final.with_name(f".{self.final.name}.checkpoints"), ignore_errors=True)
        wait_for_everyone()
        return False


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file, flush, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=float)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_metrics(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / METRICS_FILE).read_text(encoding="utf-8"))
