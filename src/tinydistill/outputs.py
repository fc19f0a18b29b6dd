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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinydistill.errors import TinyDistillError
from tinydistill.process import is_main_process, wait_for_everyone
from tinydistill.ui import say

METRICS_FILE = "metrics.json"
CONFIG_FILE = "tinydistill.yaml"
TRAINING_STATE_DIR = "training_state"


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


MANIFEST = "tinydistill-manifest.json"


@dataclass
class Manifest:
    """What a run wrote into its output folder (``written``: top-level entries) and, in a folder that gathers
    outputs, what was there before and was left in place (``kept``, accepted once with ``--overwrite``)."""

    kind: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def read_manifest(folder: Path, kind: str) -> Manifest | None:
    """The manifest of a ``kind`` run in ``folder``; None where there is none, it is damaged or of another kind
    (then nothing in the folder counts as written by such a run)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        manifest = Manifest(data["kind"], list(data["written"]), list(data.get("kept", [])))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest if manifest.kind == kind else None


def record(folder: Path, kind: str, written: Collection[str] = (), kept: Collection[str] = ()) -> Manifest:
    """Add ``written`` and ``kept`` entries to ``folder``'s manifest (created if missing) and write it."""
    manifest = read_manifest(folder, kind) or Manifest(kind)
    manifest.written = sorted({*manifest.written, *written, MANIFEST})
    manifest.kept = sorted({*manifest.kept, *kept} - set(manifest.written))
    write_json(folder / MANIFEST, asdict(manifest))
    return manifest


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
) -> list[str]:
    """Refuse an output location that would destroy what tinydistill did not write; return the entries of a
    gathering folder that were there before and are to be left in place.

    ``holds`` is None for a folder that is replaced whole (a stage, export, bench, compare output): it may
    be new, empty, or a finished output of the same ``kind`` holding only what that run wrote (its manifest);
    anything else needs ``overwrite``. For a folder that only gathers outputs (a pipeline run), ``holds`` names
    the entries it writes: an entry its manifest does not list needs ``overwrite`` once and is then left in place,
    and one that bears the name of an entry the run writes is refused, ``overwrite`` or not.
    Never allowed, ``overwrite`` or not: an output equal to or inside an input (``inputs``: role -> path), a
    replaced folder that holds an input or the current folder.
    """
    given = Path(final)
    _check_location(given, inputs, replaced=holds is None)
    if not given.exists():
        return []
    if not given.is_dir():
        raise TinyDistillError(f"output {given} exists and is a file, not a folder; choose another -o")
    entries = sorted(e.name for e in given.iterdir())
    if not entries:
        return []
    if holds is None:
        what = _not_replaceable(given, kind, entries)
        if what is None:
            return []
    else:
        manifest = read_manifest(given, kind) or Manifest(kind)
        # the manifest being written by the main process of this very run counts as its own
        foreign = [e for e in entries if not _ours(e, {*manifest.written, *manifest.kept, MANIFEST, f"{MANIFEST}.tmp"})]
        clash = [e for e in foreign if _ours(e, holds)]
        if clash:
            raise TinyDistillError(
                f"output folder {given} holds {', '.join(clash[:3])}, which a `{kind}` run writes but no earlier "
                "run there wrote; move it away or choose another -o (--overwrite never replaces what it did not write)"
            )
        if not foreign:
            return []
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        what = f"it holds {listed}, which a `{kind}` run does not write"
    if overwrite:
        say(
            f"--overwrite: {given} is not a finished `{kind}` output ({what}); "
            + ("replacing it" if holds is None else "adding the run beside what is there")
        )
        return [] if holds is None else foreign
    raise TinyDistillError(
        f"output folder {given} already exists and is not a finished `{kind}` output ({what}); "
        "choose another -o, or pass --overwrite to replace it"
    )


def _check_location(given: Path, inputs: Mapping[str, str | Path | None] | None, replaced: bool) -> None:
    """Refuse an output that is, or is inside, an input; a replaced one that holds an input or the current folder;
    one below a file."""
    real = given.resolve()
    for role, src in (inputs or {}).items():
        if not src or not Path(src).exists():
            continue
        src_real = Path(src).resolve()
        if _inside(real, src_real):
            where = "is" if real == src_real else "is inside"
            raise TinyDistillError(f"output folder {given} {where} the {role} ({src}); choose another -o")
        if replaced and _inside(src_real, real):
            raise TinyDistillError(
                f"output folder {given} holds the {role} ({src}): writing there would delete it; choose another -o"
            )
    if replaced and _inside(Path.cwd().resolve(), real):
        raise TinyDistillError(
            f"output folder {given} is the current folder or holds it; name a folder for the output, e.g. -o runs/NAME"
        )
    blocker = next((a for a in given.parents if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise TinyDistillError(f"cannot write to {given.parent}: Not a directory ({blocker} is a file)")


def _not_replaceable(folder: Path, kind: str, entries: list[str]) -> str | None:
    """Why a non-empty folder may not be replaced by a ``kind`` output without ``--overwrite``, or None: it is a
    finished ``kind`` output holding only what that run wrote."""
    found = output_kind(folder)
    if found == kind:
        manifest = read_manifest(folder, kind)
        added = [e for e in entries if manifest is not None and e not in manifest.written]
        if not added:
            return None
        return f"it is a finished `{kind}` output, but {', '.join(added[:3])} in it were not written by that run"
    if found:
        return f"it is a finished `{found}` output"
    return f"it holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {', '.join(entries[:3])}" + (
        ", ..." if len(entries) > 3 else ""
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
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(me), encoding="utf-8")
        except OSError as exc:
            raise TinyDistillError(f"cannot write to {self.path.parent}: {exc.strerror}") from None
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
    """``with OutputFolder(out, kind, inputs, overwrite, holds) as folder:`` checks ``out`` (:func:`check_output`)
    and locks it for the duration; a gathering folder (``holds``) records what the run writes there
    (:meth:`claim`). :class:`StagingDir` adds writing under a temporary name."""

    def __init__(
        self,
        final: str | Path,
        kind: str,
        inputs: Mapping[str, str | Path | None] | None = None,
        overwrite: bool = False,
        holds: Collection[str] | None = None,
    ) -> None:
        self.final = Path(os.path.abspath(final))  # `-o .` has a name too
        self.kind, self.inputs, self.overwrite, self.holds = kind, inputs, overwrite, holds
        self.main = is_main_process()
        self.lock = OutputLock(self.final)

    def __enter__(self) -> Path:
        kept = check_output(self.final, self.kind, self.inputs, self.overwrite, self.holds)
        if self.main:
            self.lock.acquire()
            if kept:
                record(self.final, self.kind, kept=kept)
        _ACTIVE.append(self.final)
        return self.final

    def start_over(self, keep: Collection[str] = ()) -> int:
        """Remove what an earlier run of this kind wrote here (its manifest's entries but ``keep``) and return how
        many entries went; refused where one of them holds an input."""
        manifest = read_manifest(self.final, self.kind)
        if manifest is None:
            return 0
        names = [n for n in manifest.written if n not in (*keep, MANIFEST)]
        ours = [e for e in self.final.iterdir() if _ours(e.name, names)]
        for role, src in (self.inputs or {}).items():
            held = next(
                (e for e in ours if src and Path(src).exists() and _inside(Path(src).resolve(), e.resolve())), None
            )
            if held is not None:
                raise TinyDistillError(
                    f"--overwrite would remove {held}, which holds the {role} ({src}); choose another -o"
                )
        if self.main:
            for entry in ours:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            manifest.written = [n for n in manifest.written if n not in names]
            write_json(self.final / MANIFEST, asdict(manifest))
        return len(ours)

    def claim(self, *names: str) -> None:
        """Record in the gathering folder's manifest that the run writes ``names`` (before it writes them)."""
        if self.main:
            self.final.mkdir(parents=True, exist_ok=True)
            record(self.final, self.kind, written=names)

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
        record(self.tmp, self.kind, written=[e.name for e in self.tmp.iterdir()])
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
