"""Stage output folders: written under a temporary name and renamed into place only when complete,
so a crash never leaves a folder that looks finished."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tinydistill.errors import TinyDistillError
from tinydistill.ui import say

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

# the marker file that names each kind of output a command writes (stage kinds: metrics.json's "stage")
_MARKERS = {"export": "export.json", "bench": "bench.json", "compare": "compare.json"}
_ACTIVE: list[Path] = []  # the output folders being written now, innermost last (for interrupt messages)


def active_outputs() -> list[Path]:
    """Output folders being written right now, outermost first."""
    return list(_ACTIVE)


def output_kind(folder: Path) -> str | None:
    """The kind of finished tinydistill output ``folder`` is (a stage name, export, bench, compare), or None."""
    if (folder / METRICS_FILE).is_file():
        try:
            return json.loads((folder / METRICS_FILE).read_text(encoding="utf-8")).get("stage")
        except (OSError, ValueError, AttributeError):
            return None
    return next((kind for kind, marker in _MARKERS.items() if (folder / marker).is_file()), None)


def _ours(entry: str, names: Collection[str]) -> bool:
    """An entry a folder of ``names`` holds: one of them, or a hidden staging/checkpoint/lock entry of one."""
    return entry in names or any(entry.startswith(f".{n}.") for n in names)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(
    final: str | Path,
    kind: str,
    inputs: Mapping[str, str | Path | None] | None = None,
    overwrite: bool = False,
    holds: Collection[str] | None = None,
    marker: str | None = None,
) -> None:
    """Refuse an output location that would destroy what tinydistill did not write.

    ``holds`` is None for a folder that is replaced whole (a stage, export, bench, compare output): it may
    be new, empty, or a finished output of the same ``kind``; anything else needs ``overwrite``. For a
    folder that only gathers outputs (a pipeline run), ``holds`` names its entries; other entries need
    ``overwrite`` and are then left in place (once, where the ``marker`` file then records the run).
    Never allowed, ``overwrite`` or not: an output equal to or
    inside an input (``inputs``: role -> path), a replaced folder that holds an input or the current folder.
    """
    given = Path(final)
    real = given.resolve()
    for role, src in (inputs or {}).items():
        if not src or not Path(src).exists():
            continue
        src_real = Path(src).resolve()
        if _inside(real, src_real):
            where = "is" if real == src_real else "is inside"
            raise TinyDistillError(f"output folder {given} {where} the {role} ({src}); choose another -o")
        if holds is None and _inside(src_real, real):
            raise TinyDistillError(
                f"output folder {given} holds the {role} ({src}): writing there would delete it; choose another -o"
            )
    if holds is None and _inside(Path.cwd().resolve(), real):
        raise TinyDistillError(
            f"output folder {given} is the current folder or holds it; name a folder for the output, e.g. -o runs/NAME"
        )
    blocker = next((a for a in given.parents if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise TinyDistillError(f"cannot write to {given.parent}: Not a directory ({blocker} is a file)")
    if not given.exists():
        return
    if not given.is_dir():
        raise TinyDistillError(f"output {given} exists and is a file, not a folder; choose another -o")
    entries = sorted(e.name for e in given.iterdir())
    if not entries:
        return
    if holds is None:
        found = output_kind(given)
        if found == kind:
            return
        what = (
            f"it is a finished `{found}` output"
            if found
            else f"it holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {', '.join(entries[:3])}"
            + (", ..." if len(entries) > 3 else "")
        )
    else:
        foreign = [e for e in entries if not _ours(e, holds)]
        if not foreign or (marker and (given / marker).is_file()):
            return
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        what = f"it holds {listed}, which a `{kind}` run does not write"
    if overwrite:
        say(
            f"--overwrite: {given} is not a finished `{kind}` output ({what}); "
            + ("replacing it" if holds is None else "adding the run beside what is there")
        )
        return
    raise TinyDistillError(
        f"output folder {given} already exists and is not a finished `{kind}` output ({what}); "
        "choose another -o, or pass --overwrite to replace it"
    )


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a live owner from a reused pid), where /proc has it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = _process_start(int(owner["pid"]))
    return owner.get("start") is None or start is None or start == owner["start"]


class OutputLock:
    """``.<name>.lock`` beside an output folder while a run writes it: the pid, host and start of its owner.

    A second run on the same folder is refused; a lock whose owner is gone (same host, process not running)
    is taken over with a message. Only the main process of a multi-process run takes it.
    """

    def __init__(self, final: Path) -> None:
        self.path = final.parent / f".{final.name}.lock"
        self.held = False

    def acquire(self) -> None:
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "start": _process_start(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv[:3]),
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TinyDistillError(f"cannot write to {self.path.parent}: {exc.strerror}") from None
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(me), encoding="utf-8")
        try:
            for _ in range(2):
                try:
                    os.link(tmp, self.path)  # atomic: exists with its full content, or not at all
                    self.held = True
                    return
                except FileExistsError:
                    self._take_over_if_stale()
        finally:
            tmp.unlink(missing_ok=True)
        raise TinyDistillError(f"could not take the lock {self.path}")

    def _take_over_if_stale(self) -> None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            owner = {}
        here = owner.get("host") == socket.gethostname()
        if owner and (not here or _alive(owner)):
            raise TinyDistillError(
                f"{self.path.parent / self.path.name[1:-5]} is being written by another run (pid {owner.get('pid')} "
                f"on {owner.get('host')}, since {owner.get('since')}: {owner.get('command')}); wait for it to finish, "
                f"or choose another -o" + ("" if here else f" (if that run is dead, delete {self.path})")
            )
        say(f"taking over {self.path}: its owner (pid {owner.get('pid', '?')}) is no longer running")
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


class OutputFolder:
    """``with OutputFolder(out, kind, inputs, overwrite, holds):`` checks ``out`` (:func:`check_output`) and
    locks it for the duration; :class:`StagingDir` adds writing under a temporary name."""

    def __init__(
        self,
        final: str | Path,
        kind: str,
        inputs: Mapping[str, str | Path | None] | None = None,
        overwrite: bool = False,
        holds: Collection[str] | None = None,
        marker: str | None = None,
    ) -> None:
        self.final = Path(os.path.abspath(final))  # `-o .` has a name too
        self.kind, self.inputs, self.overwrite, self.holds, self.marker = kind, inputs, overwrite, holds, marker
        self.main = is_main_process()
        self.lock = OutputLock(self.final)

    def __enter__(self) -> Path:
        check_output(self.final, self.kind, self.inputs, self.overwrite, self.holds, self.marker)
        if self.main:
            self.lock.acquire()
        _ACTIVE.append(self.final)
        return self.final

    def __exit__(self, exc_type, exc, tb) -> bool:
        _ACTIVE.remove(self.final)
        self.lock.release()
        return False


class StagingDir(OutputFolder):
    """``with StagingDir(out, kind, inputs) as tmp:`` write into ``tmp``; on success it is renamed to ``out``.

    ``out`` is checked and locked first (:class:`OutputFolder`). On an exception (an interrupt too) the
    temporary folder is removed and ``out`` is left untouched. In a multi-process run only the main
    process writes; the others wait until the folder is in place.
    """

    def __init__(
        self,
        final: str | Path,
        kind: str,
        inputs: Mapping[str, str | Path | None] | None = None,
        overwrite: bool = False,
    ) -> None:
        super().__init__(final, kind, inputs, overwrite)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp-{uuid.uuid4().hex[:8]}")

    def __enter__(self) -> Path:
        super().__enter__()
        if not self.main:
            return self.tmp
        try:
            # temp folders left by a killed run (kill -9 skips all cleanup); the lock says no live run owns them
            for stale in self.final.parent.glob(f".{self.final.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            self.tmp.mkdir(parents=True)
        except OSError as exc:
            super().__exit__(*sys.exc_info())
            raise TinyDistillError(f"cannot write to {self.final.parent}: {exc.strerror}") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return self._finish(exc_type, exc)
        finally:
            super().__exit__(exc_type, exc, tb)

    def _finish(self, exc_type, exc) -> bool:
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
