"""Data files as the readers may open them: existing regular files (or folders), named in one line otherwise."""

from __future__ import annotations

import stat
from pathlib import Path

from tinydistill.errors import TinyDistillError

#: the largest single field (CSV / TSV cell) a data file may hold; a longer text is truncated to max_length anyway
MAX_FIELD_BYTES = 64 << 20


def data_path(path: str | Path, what: str, folder: bool = True) -> Path:
    """``path`` if it exists and is a regular file (or, with ``folder``, a folder); else one line saying what it
    is. A named pipe or a device is refused before it is opened: the data are read more than once (a check before
    any stage, then the stage), and a device such as ``/dev/zero`` never ends."""
    path = Path(path)
    if not path.exists():
        raise TinyDistillError(f"{what} not found: {path}")
    if path.is_dir():
        if folder:
            return path
        raise TinyDistillError(f"{what} {path} is a folder; expected a file")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = (
            "a named pipe"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )
        raise TinyDistillError(
            f"{what} {path} is {kind}: data files are read more than once (checked before any stage, then read by "
            "the stage), so write it to a regular file first"
        )
    return path
