"""What the user sees while work runs: progress bars and messages, with --quiet / --verbose.

Progress bars show rate and ETA on a terminal and stay silent when output is not one (CI logs stay
readable); ``quiet`` silences bars and messages; ``verbose`` adds a line per logged training step.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

from tinydistill.process import is_main_process

T = TypeVar("T")
_state = {"quiet": False, "verbose": False, "stderr": False}


def set_verbosity(quiet: bool = False, verbose: bool = False) -> None:
    _state["quiet"], _state["verbose"] = quiet, verbose and not quiet


def status_to_stderr(on: bool = True) -> None:
    """Status lines go to stderr, for a command whose stdout is its result (``evaluate`` prints JSON)."""
    _state["stderr"] = on


def progress(total: int, desc: str) -> tqdm:
    """A bar over ``total`` units: on a terminal unless quiet; never in pipes or on non-main processes."""
    return tqdm(
        total=total,
        desc=desc,
        disable=True if (_state["quiet"] or not _main()) else None,
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
    )


def track(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (same rules as :func:`progress`)."""
    return iter(
        tqdm(
            items,
            desc=desc,
            total=total,
            disable=True if _state["quiet"] else None,
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
        )
    )


def _main() -> bool:
    return is_main_process()


def say(message: str) -> None:
    """A status line (stdout, or stderr after :func:`status_to_stderr`), kept clear of any bar; nothing when quiet
    or on non-main processes."""
    if not _state["quiet"] and _main():
        tqdm.write(message, file=sys.stderr if _state["stderr"] else sys.stdout)


def detail(message: str) -> None:
    """A line shown only with --verbose."""
    if _state["verbose"] and _main():
        tqdm.write(message, file=sys.stderr if _state["stderr"] else sys.stdout)
