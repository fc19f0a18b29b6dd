"""One template every stage follows: a :class:`StagePlan` (what trains, how, and what its folder gets), run by
:func:`run_stage`: train -> save the model -> metrics -> report -> ``metrics.json`` (written last: it marks the folder
finished). The helpers here are what every stage's plan is made of."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Subset

from tinydistill.checkpoints import checkpoint_root
from tinydistill.config import Config, DistillStage, GeneralStage, LossConfig, TrainConfig, config_changes, dump_config
from tinydistill.data.alignment import same_vocabulary
from tinydistill.data.loaders import EncodedDataset, by_length
from tinydistill.data.readers import Examples, concat, held_out_dev, held_out_test, read_split
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import predict
from tinydistill.models import check_vocab, load_tokenizer, usable_length
from tinydistill.objectives import (
    build_terms,
    capture_plan,
    check_alignment,
    check_compatible,
    live_teacher,
    make_projections,
    setup_between,
)
from tinydistill.outputs import CONFIG_FILE, METRICS_FILE, TRAINING_STATE_DIR, write_json
from tinydistill.process import is_main_process, process_state, wait_for_everyone
from tinydistill.report import ModelEntry, Table, model_table, model_table_view, plot_curves, stage_table, write_report
from tinydistill.speed import count_parameters
from tinydistill.tasks import Task
from tinydistill.terms import Setup
from tinydistill.trainer import Callback, CheckpointSpec, StageRun, TrainResult, train
from tinydistill.ui import say

PROBE_BATCHES = 2  # the objective before/after training is reported on this many fixed training batches
RESUME_CONFIG = "config.yaml"  # beside a stage's checkpoints: the configuration they were written under


@dataclass
class StagePlan:
    """A stage ready to run: what trains (``run``) and how (``train``, ``checkpoint``), and what its folder gets: the
    tokenizer saved with the student, the report's title, rows (``entries`` of the training result and the folder the
    student was saved in), timed data and metric, and the stage's own entries of ``metrics.json``."""

    name: str  # general | finetune | intermediate | prediction: metrics.json's "stage", the log prefix
    title: str
    run: StageRun
    train: TrainConfig
    checkpoint: CheckpointSpec
    tokenizer: object
    entries: Callable[[TrainResult, Path], list[ModelEntry]]
    timed: EncodedDataset
    metric: str | None = None
    metrics: dict = field(default_factory=dict)
    save_projections: bool = True


def run_stage(plan: StagePlan, cfg: Config, folder: Path, callbacks: Sequence[Callback] = ()) -> None:
    """Train the plan's run and write everything a finished stage folder holds into ``folder``."""
    result = train(
        plan.run,
        plan.train,
        cpu=cfg.cpu,
        log_dir=folder / "logs",
        desc=plan.name,
        checkpoint=plan.checkpoint,
        callbacks=callbacks,
    )
    reporting = cfg.report.enabled and is_main_process()
    dev = _dev_outputs(plan, result, details=reporting)
    result = _tuned(plan, result, dev)
    projections = result.projections if plan.save_projections else None
    save_model(folder, result.student, plan.tokenizer, projections, cfg)
    metrics = _metrics(plan.name, result) | plan.metrics
    if reporting:
        _report(cfg, folder, plan, metrics, plan.entries(result, folder), result.student, dev)
    if is_main_process():
        write_json(folder / METRICS_FILE, metrics)


def save_model(folder: Path, model: nn.Module, tokenizer, projections: nn.ModuleDict | None, cfg: Config) -> None:
    """Model + tokenizer (plain transformers), projections in training_state/, the resolved config."""
    if not is_main_process():
        return
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if projections is not None and len(projections):
        (folder / TRAINING_STATE_DIR).mkdir()
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in projections.state_dict().items()},
            str(folder / TRAINING_STATE_DIR / "projections.safetensors"),
        )
    (folder / CONFIG_FILE).write_text(dump_config(cfg), encoding="utf-8")


def _dev_outputs(plan: StagePlan, result: TrainResult, details: bool) -> tuple[list, list] | None:
    """The trained model's dev outputs and gold labels for what reads them after training (the task's tuning; with
    ``details``, its report tables): those of the evaluation its weights belong to, else predicted now; None when
    nothing reads them or dev has no labels."""
    task, loader = plan.run.task, plan.run.eval_loader
    if task is None or loader is None or not (task.tunes or (details and task.report_details)):
        return None
    outputs, golds = result.dev_outputs or predict(result.student, loader, task)
    return None if golds is None else (outputs, golds)


def _tuned(plan: StagePlan, result: TrainResult, dev: tuple[list, list] | None) -> TrainResult:
    """``result`` after the task chose on ``dev`` what its model is scored with (a threshold): the dev evaluation its
    weights belong to is then the one with that choice."""
    if dev is None or not plan.run.task.tunes:
        return result
    chosen = plan.run.task.tune(result.student, *dev)
    return result if chosen is None else replace(result, best={**(result.final_eval or {}), **chosen})


def _metrics(stage: str, result: TrainResult) -> dict:
    return {
        "stage": stage,
        "parameters": count_parameters(result.student),
        "dev": result.final_eval,
        "best": result.best,
        "evals": result.evals,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 2),
        "precision": result.precision,
        "objective_before": result.objective_before,
        "objective_after": result.objective_after,
        "history": result.history,
    }


def _report(
    cfg: Config,
    folder: Path,
    plan: StagePlan,
    metrics: dict,
    entries: list[ModelEntry],
    trained: nn.Module,
    dev: tuple[list, list] | None,
) -> None:
    """Final table (measured now, side by side) into metrics, plus report.html / report.md."""
    table = model_table(entries, plan.timed.head(cfg.report.speed_examples), plan.tokenizer, plan.metric)
    metrics["table"] = [row.to_json() for row in table]
    held = metrics.get("dev_held_out")
    split = []
    if held:
        row = [f"{held['dev_fraction']:g}", str(held["seed"]), str(held["examples"])]
        split = [("Dev split", Table(["held out of train", "seed", "dev examples"], [row], "rrr"))]
    sections = [
        ("Teacher vs student", model_table_view(table)),
        (f"Stage: {metrics['stage']}", stage_table({metrics["stage"]: metrics})),
        *split,
        *_details(plan, trained, dev),
    ]
    write_report(folder, plan.title, sections, plot_curves(metrics, folder), dump_config(cfg))


def _details(plan: StagePlan, trained: nn.Module, dev: tuple[list, list] | None) -> list[tuple[str, Table]]:
    """The task's own report tables (e.g. per-label F1), from the trained model's ``dev`` outputs."""
    task = plan.run.task
    if dev is None or not task.report_details:
        return []
    tables = task.for_model(trained.config).details(*dev)
    return [(head, Table(cols, rows, "l" + "r" * (len(cols) - 1))) for head, cols, rows in tables]


def dev_split(cfg: Config, dev: EncodedDataset) -> dict:
    """``dev_held_out`` (and ``test_held_out``) for metrics.json: how dev (test) was held out of train (None: a
    file was given)."""
    how, test = held_out_dev(cfg.data), held_out_test(cfg.data)
    return {"dev_held_out": None if how is None else how | {"examples": len(dev)}} | (
        {"test_held_out": test} if test else {}
    )


def score(dev: dict | None, task: Task) -> float | None:
    return None if not dev else dev.get(task.metric)


def checkpoint_spec(cfg: Config, out: Path, section: str, train_cfg: TrainConfig) -> CheckpointSpec:
    """Where a stage writing ``out`` checkpoints: a fresh run starts from no old checkpoint; a resumed one is refused
    when a setting that changes the result differs from the one its checkpoints were made with."""
    root = checkpoint_root(out)
    saved = root / RESUME_CONFIG
    if cfg.resume and saved.is_file():
        changes = config_changes(
            yaml.safe_load(saved.read_text(encoding="utf-8")), cfg.model_dump(mode="json"), (section,)
        )
        if changes:
            raise TinyDistillError(
                f"cannot resume {out}: its checkpoints were made with other settings "
                f"({'; '.join(changes[:5])}{'; ...' if len(changes) > 5 else ''}); run without "
                "--resume to start the stage over, or restore those settings"
            )
    if is_main_process():
        if not cfg.resume and root.exists():
            shutil.rmtree(root)
        if train_cfg.checkpoint_every and not saved.is_file():
            root.mkdir(parents=True, exist_ok=True)
            saved.write_text(dump_config(cfg), encoding="utf-8")
    wait_for_everyone()
    return CheckpointSpec(root, train_cfg.checkpoint_every, cfg.resume)


def fit_length(cfg: Config, *models: nn.Module, tokenizer=None) -> Config:
    """``cfg`` with data.max_length lowered (with a message) to what every model takes."""
    n = fitted(cfg.data.max_length, tokenizer, *models)
    return (
        cfg
        if n == cfg.data.max_length
        else cfg.model_copy(update={"data": cfg.data.model_copy(update={"max_length": n})})
    )


def fitted(n: int, tokenizer, *models: nn.Module) -> int:
    """``n`` tokens, or fewer (with a message) where the teacher or the student takes fewer positions."""
    for name, model in zip(("teacher", "student"), models):
        n = usable_length(n, f"{name} ({model.config.model_type})", model.config, tokenizer)
    return n


def device(cfg: Config) -> torch.device:
    """Where this process runs the stage: the accelerator Accelerate picks, or the CPU with ``cpu: true``."""
    return torch.device("cpu") if cfg.cpu else process_state().device


def carry_projections(projections: nn.ModuleDict, checkpoint: Path) -> None:
    """Start ``projections`` from those saved with the student checkpoint, where names and shapes match."""
    saved_file = checkpoint / TRAINING_STATE_DIR / "projections.safetensors"
    if not saved_file.is_file() or not len(projections):
        return
    own = projections.state_dict()
    same = {k: v for k, v in load_file(str(saved_file)).items() if k in own and own[k].shape == v.shape}
    projections.load_state_dict(same, strict=False)
    names = sorted({k.split(".")[0] for k in same})
    say(f"hidden-state projections {', '.join(names) or 'none'} carried over from {checkpoint}")


@dataclass
class TaskData:
    """A task stage's encoded training and dev sets and their loaders (and the probe batches of the objective)."""

    train: EncodedDataset
    dev: EncodedDataset
    loaders: tuple  # (train, dev, probe)


def task_data(
    cfg: Config,
    tokenizer,
    task: Task,
    train_cfg: TrainConfig,
    prepare=None,
    teacher_tokenizer=None,
    transfer: bool = False,
    soft_targets: Callable[[Examples], list] | None = None,
) -> TaskData:
    """The task's train (plus transfer files, when ``transfer``) and dev splits, encoded, and their loaders. With
    ``teacher_tokenizer`` (a teacher of another vocabulary) training rows carry the teacher's tokenization too; dev
    rows are the student's alone. ``prepare`` adds what a stage reuses of the teacher to the training rows;
    ``soft_targets`` gives each training row its soft target (several teachers' combined logits; per window for QA)."""
    train_ex = read_split(cfg.data, "train", task, seed=cfg.seed)
    if transfer and cfg.data.transfer_files:  # the teacher labels them; the hard-label term skips them
        more = [task.read_transfer(cfg.data, f) for f in cfg.data.transfer_files]
        say(f"transfer set: {sum(len(m) for m in more):,} unlabelled examples beside {len(train_ex):,} labelled ones")
        train_ex = concat(train_ex, *more)
    if soft_targets is not None:
        train_ex.soft = soft_targets(train_ex)
    dev_ex = read_split(cfg.data, "dev", task, seed=cfg.seed)
    train = task.encode(train_ex, tokenizer, cfg.data.max_length, teacher_tokenizer, training=True)
    if prepare is not None:
        train = prepare(train)
    dev = task.encode(dev_ex, tokenizer, cfg.data.max_length)
    probe = Subset(train, range(min(len(train), PROBE_BATCHES * train_cfg.eval_batch_size)))
    loaders = (
        task.loader(
            train,
            tokenizer,
            train_cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            group_by_length=train_cfg.group_by_length,
            teacher_tokenizer=teacher_tokenizer,
        ),
        task.loader(by_length(dev), tokenizer, train_cfg.eval_batch_size),  # metrics ignore order
        task.loader(probe, tokenizer, train_cfg.eval_batch_size, teacher_tokenizer=teacher_tokenizer),
    )
    return TaskData(train, dev, loaders)


def distill_run(
    stage_cfg: DistillStage | GeneralStage,
    teacher: nn.Module | None,
    student: nn.Module,
    loaders: tuple,
    task: Task | None,
    select_best: bool,
    carried_from: str | None = None,
) -> StageRun:
    """The run of a distillation stage: its terms, what each model records and the projections that train."""
    losses = stage_cfg.losses
    if teacher is None:  # targets from a soft-label column: prediction-layer terms only
        setup, plan, projections = Setup([], task, 0, 0), None, nn.ModuleDict()
    else:
        check_compatible(losses, student.config, teacher.config)
        setup = setup_between(losses, student, teacher, task)
        plan = capture_plan(losses, setup) or None
        projections = make_projections(losses, setup, student.config.hidden_size, teacher.config.hidden_size)
    if carried_from:
        carry_projections(projections, Path(carried_from))
    terms = build_terms(losses, setup, has_teacher=True)
    return StageRun(
        student, teacher, terms, plan, projections, *loaders, task, select_best, stage_cfg.teacher_precision
    )


def tokenizers(cfg: Config, teacher_name: str, teacher: nn.Module, student: nn.Module):
    """(the student's tokenizer, the teacher's when it is another vocabulary, else None: one tokenization
    feeds both models and their vocabularies must agree)."""
    teacher_tok = load_tokenizer(teacher_name)
    spec = cfg.student
    own = (
        load_tokenizer(spec.checkpoint)
        if spec.checkpoint and (Path(spec.checkpoint) / "tokenizer_config.json").exists()
        else None
    )
    if own is None or same_vocabulary(own, teacher_tok):
        check_vocab(teacher_tok, own, teacher, student)
        return teacher_tok, None
    return own, teacher_tok


def check_token_alignment(losses: LossConfig, data: EncodedDataset) -> None:
    """Refuse intermediate losses the two tokenizations cannot support (see tinydistill.data.alignment)."""
    if not (data.alignment and live_teacher(losses)):
        return
    if losses.mode == "tinybert":
        raise TinyDistillError(
            "mode: tinybert reproduces the reference arithmetic for one shared tokenization; "
            "with a teacher of another tokenizer use mode: masked"
        )
    check_alignment(losses, data.alignment)
