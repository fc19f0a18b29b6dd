"""What many test files share: running the command line in-process, tiny distill command lines, and a callback that
stops training where a test needs it to (a crash, Ctrl-C) without reaching into the trainer."""

from __future__ import annotations

import sys

from tinydistill.trainer import Callback, TrainState


def run_cli(monkeypatch, capsys, *args):
    """``tinydistill ARGS`` in this process: (exit code, stdout, stderr)."""
    from tinydistill.cli import main

    capsys.readouterr()  # drop what fixtures printed
    monkeypatch.setattr(sys, "argv", ["tinydistill", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class StopAt(Callback):
    """Raise ``error`` at the end of optimizer step ``step`` of stage ``stage`` (any stage: None)."""

    def __init__(self, step: int, error: BaseException | None = None, stage: str | None = None) -> None:
        self.step, self.stage = step, stage
        self.error = error if error is not None else RuntimeError("simulated crash")

    def on_step_end(self, state: TrainState, losses: dict[str, float]) -> None:
        if state.steps == self.step and self.stage in (None, state.stage):
            raise self.error


def sets(*pairs: str) -> list[str]:
    """``-s KEY=VALUE`` for each pair, as the command line takes overrides."""
    return [arg for pair in pairs for arg in ("-s", pair)]


def tiny_distill_args(teacher, out, *pairs: str, stage: str = "prediction", task: str = "sst-2", data=None) -> list:
    """A ``distill`` command line on a small slice of a task with a 1-layer, 16-wide student and no report."""
    args = ["distill", "--stage", stage, "--teacher", str(teacher), "--task", task, "-o", str(out)]
    if data is not None:
        args += ["--data-dir", str(data)]
    base = ["student={layers: 1, hidden: 16, heads: 4, ffn: 32}", "report.enabled=false"]
    return args + sets(*base, *pairs)


def config_of(args: list) -> object:
    """The configuration a ``tinydistill`` command line (a stage command) runs with, as the command line builds it."""
    from tinydistill.config import load_config

    named = {"-o": "output_dir", "--teacher": "teacher", "--task": "data.task", "--data-dir": "data.dir"}
    overrides, rest, items = [], [], iter(map(str, args[1:]))
    for arg in items:
        if arg in ("-s", "--set"):
            overrides.append(next(items))
        elif arg in named:
            rest.append(f"{named[arg]}={next(items)}")
        elif arg == "--stage":
            next(items)
    return load_config(None, overrides + rest)
