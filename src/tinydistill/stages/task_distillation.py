"""Stages 3 and 4: task distillation from a fine-tuned teacher, intermediate layers (``intermediate``) or the
prediction layer (``prediction``), or both in sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import Subset

from tinydistill.config import Config, DistillStage, StudentConfig
from tinydistill.data.readers import with_dev
from tinydistill.ensemble import ensemble_targets
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.models import freeze, load_classifier, load_tokenizer
from tinydistill.objectives import live_teacher, reads_logits, reads_teacher
from tinydistill.outputs import OutputFolder, StagingDir, is_complete, read_metrics
from tinydistill.report import ModelEntry
from tinydistill.reuse import TeacherReuse
from tinydistill.stages.finetuning import require_teacher
from tinydistill.stages.template import (
    StagePlan,
    check_token_alignment,
    checkpoint_spec,
    dev_split,
    device,
    distill_run,
    fit_length,
    run_stage,
    score,
    task_data,
    tokenizers,
)
from tinydistill.students import build_student
from tinydistill.tasks import Task, task_info
from tinydistill.trainer import Callback, TrainResult
from tinydistill.ui import say

Stage = Literal["intermediate", "prediction", "both"]
PREPARE_ROWS = 20_000  # training rows a task fits its data-dependent start on (task.prepare)
#: a teacher's dev score and side metrics, by teacher folder: a caller running several stages passes one down
TeacherScores = dict[str, tuple[float | None, dict[str, float]]]


def distill(
    cfg: Config,
    stage: Stage = "both",
    output_dir: str | Path | None = None,
    task: Task | None = None,
    callbacks: Sequence[Callback] = (),
    teacher_scores: TeacherScores | None = None,
) -> Path:
    """Task distillation from a fine-tuned ``cfg.teacher`` into ``cfg.student`` on ``cfg.data``.

    ``intermediate`` / ``prediction`` write one folder at ``output_dir``; ``both`` runs intermediate
    into ``output_dir/intermediate`` and then prediction, starting from it, into ``output_dir/prediction``
    (returned). The prediction stage keeps its best dev checkpoint; the intermediate stage its last. ``task``: the
    task ``cfg.data`` describes, when the caller has built it; ``teacher_scores``: the teacher's report scores,
    measured once for the stages that share them.
    """
    out = Path(output_dir or cfg.output_dir)
    scores = {} if teacher_scores is None else teacher_scores
    if stage in ("intermediate", "prediction"):
        return _distill_one(cfg, stage, out, task, callbacks, scores)
    if stage != "both":
        raise TinyDistillError(f"unknown stage {stage!r}: use intermediate, prediction or both")
    folder = OutputFolder(out, "distill", cfg.input_paths(), cfg.overwrite, holds=("intermediate", "prediction"))
    with folder:
        folder.claim("intermediate")
        first = _distill_one(cfg, "intermediate", out / "intermediate", task, callbacks, scores)
        nxt = cfg.model_copy(update={"student": StudentConfig(checkpoint=str(first))})
        folder.claim("prediction")
        return _distill_one(nxt, "prediction", out / "prediction", task, callbacks, scores)


def _distill_one(cfg: Config, which: str, out: Path, task: Task | None, callbacks, scores: TeacherScores) -> Path:
    cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})
    with StagingDir(out, which, cfg.input_paths(), cfg.overwrite) as tmp:
        task = task or task_info(cfg.data)
        cfg, plan = _plan(cfg, which, out, task, scores)
        run_stage(plan, cfg, tmp, callbacks)
    return out


@dataclass
class _Models:
    """A task stage's teacher (None: soft labels from a column stand in for it) and student, and their tokenizers
    (``teacher_tok``: the teacher's own, when it is another vocabulary)."""

    teacher_name: str | None
    teacher: nn.Module | None
    student: nn.Module
    tokenizer: object
    teacher_tok: object | None


def _models(cfg: Config, which: str, task: Task, external: bool) -> _Models:
    teacher_name = cfg.teacher if external else require_teacher(cfg)
    set_seed(cfg.seed)
    teacher = freeze(load_classifier(teacher_name, task, who="teacher", require_head=True)) if teacher_name else None
    scored = reads_logits(getattr(cfg, which).losses)  # a stage without one leaves the outputs untrained
    student = task.student_for(build_student(cfg.student, teacher, task), teacher, outputs=scored)
    if teacher is None:
        return _Models(None, None, student, load_tokenizer(cfg.student.checkpoint), None)
    return _Models(teacher_name, teacher, student, *tokenizers(cfg, teacher_name, teacher, student))


def _start_outputs(task: Task, m, train, batch_size: int, fit_teacher: bool) -> None:
    """Ready the student's outputs before a prediction stage: a new head (copied layers bring none) starts from the
    training labels; with the teacher (``fit_teacher``), what the task fits to it (an embedding's projection)."""
    task.init_head(m.student, train)
    if fit_teacher:
        fit = Subset(train, range(min(len(train), PREPARE_ROWS)))
        task.prepare(m.student, m.teacher, task.loader(fit, m.tokenizer, batch_size, teacher_tokenizer=m.teacher_tok))


def _plan(cfg: Config, which: str, out: Path, task: Task, scores: TeacherScores) -> tuple[Config, StagePlan]:
    external = _external_soft_labels(cfg, which)  # a soft-label column replaces the teacher's outputs
    m = _models(cfg, which, task, external)
    cfg = fit_length(cfg, *[x for x in (m.teacher, m.student) if x is not None], tokenizer=m.tokenizer)
    stage_cfg: DistillStage = getattr(cfg, which)
    _check_transfer(cfg, stage_cfg, task, external)
    cache = (
        None
        if external
        else TeacherReuse(
            stage_cfg, m.teacher, m.teacher_tok or m.tokenizer, m.student, task, device(cfg), cfg.cache_dir
        )
    )
    ensemble = _ensemble(cfg, which, task, stage_cfg)
    data = task_data(
        cfg,
        m.tokenizer,
        task,
        stage_cfg.train,
        cache.attach if cache and cache.kind else None,
        m.teacher_tok,
        transfer=True,
        soft_targets=ensemble,
    )
    check_token_alignment(stage_cfg.losses, data.train)
    scored = reads_logits(stage_cfg.losses)  # without a prediction loss dev metrics would only be noise: none taken
    if scored:
        _start_outputs(task, m, data.train, stage_cfg.train.eval_batch_size, fit_teacher=not external)
    train, dev, probe = data.loaders
    carried = cfg.student.checkpoint if stage_cfg.carry_projections else None
    run = distill_run(
        stage_cfg,
        None if external else m.teacher,
        m.student,
        (train, dev if scored else None, probe),
        task,
        scored,
        carried,
    )
    run.targets = cache.store if cache else None
    if external or (cache and cache.replaces_teacher) or not reads_teacher(stage_cfg.losses):
        run.teacher = None  # cached or given outputs are read from the batch; hard labels alone need no teacher
    return cfg, StagePlan(
        name=which,
        title=f"Stage {3 if which == 'intermediate' else 4}: {which}-layer distillation ({task.name})",
        run=run,
        train=stage_cfg.train,
        checkpoint=checkpoint_spec(cfg, out, which, stage_cfg.train),
        tokenizer=m.tokenizer,
        entries=lambda r, folder: _entries(cfg, which, m, task, scores, r, folder),
        timed=data.dev,
        metric=task.metric,
        metrics=dev_split(cfg, data.dev),
    )


def _entries(
    cfg: Config, which: str, m: _Models, task: Task, scores: TeacherScores, r: TrainResult, folder: Path
) -> list[ModelEntry]:
    """The report's rows: the teacher (its score from its stage folder, or measured once) and the student."""
    batch = getattr(cfg, which).train.eval_batch_size
    side = task.side_metrics(r.student, m.tokenizer, batch)
    entries = [ModelEntry("student", r.student, folder, score(r.final_eval, task), None, side)]
    if m.teacher is not None:
        if m.teacher_name not in scores:
            scores[m.teacher_name] = _teacher_score(cfg, m, task, batch)
        t_score, t_side = scores[m.teacher_name]
        entries.insert(0, ModelEntry("teacher", m.teacher, Path(m.teacher_name), t_score, m.teacher_tok, t_side))
    return entries


def _teacher_score(cfg: Config, m: _Models, task: Task, batch: int) -> tuple[float | None, dict[str, float]]:
    """The teacher's dev score (from its stage folder, or measured now for a published teacher) and side metrics."""
    tokenizer = m.teacher_tok or m.tokenizer
    if is_complete(m.teacher_name):
        found = score(read_metrics(m.teacher_name)["dev"], task)
    else:
        loader = task.eval_loader(cfg.data, "dev", tokenizer, batch, seed=cfg.seed)
        found = score(evaluate_model(m.teacher, loader, task), task)
    return found, task.side_metrics(m.teacher, tokenizer, batch)


def _check_transfer(cfg: Config, stage_cfg: DistillStage, task: Task, external: bool) -> None:
    if not cfg.data.transfer_files:
        return
    labelled = not external or bool(cfg.teachers)  # by the teacher model, or by several teachers' mean
    if not labelled or not reads_teacher(stage_cfg.losses):
        raise TinyDistillError(
            "data.transfer_files are labelled by the teacher (or by `teachers:`): the stage needs one (not soft "
            "labels from a column) and a soft or intermediate loss"
        )
    task.check_transfer(stage_cfg.losses)


def _ensemble(cfg: Config, which: str, task: Task, stage_cfg: DistillStage):
    """The soft targets of several teachers (``teachers:``) for the prediction stage, or None."""
    if not cfg.teachers or which != "prediction":
        return None
    batch = stage_cfg.train.eval_batch_size
    return lambda examples: ensemble_targets(cfg, task, examples, batch)


def _external_soft_labels(cfg: Config, which: str) -> bool:
    """Whether this stage's targets come from data.soft_label_column or several teachers (``teachers:``) instead of
    one teacher model (refused where a teacher model is still needed: intermediate losses, or a student that is not
    a checkpoint and no teacher)."""
    if which != "prediction" or (cfg.data.soft_label_column is None and not cfg.teachers):
        return False
    given = "the soft targets of several teachers" if cfg.teachers else "soft labels from a file"
    if live_teacher(cfg.prediction.losses):
        raise TinyDistillError(
            f"{given} replace the teacher's outputs, not its hidden states: set the prediction "
            "stage's intermediate weights (embedding, hidden, attention, relation) to 0"
        )
    if cfg.teacher is None and cfg.student.checkpoint is None:
        raise TinyDistillError(
            f"with {given} and no teacher, the student must be a model folder (student.checkpoint); "
            "or give a teacher to build it from"
        )
    if cfg.teacher is not None and not cfg.teachers:
        say(
            f"soft targets from data.soft_label_column {cfg.data.soft_label_column!r}: the teacher {cfg.teacher} is "
            "not run for them (its logits are not used; it builds the student and is scored in the report)"
        )
    return True
    if live_teacher(cfg.prediction.losses):
        raise TinyDistillError(
            "soft labels from a file replace the teacher's outputs, not its hidden states: set the prediction "
            "stage's intermediate weights (embedding, hidden, attention, relation) to 0"
        )
    if cfg.teacher is None and cfg.student.checkpoint is None:
        raise TinyDistillError(
            "with soft labels from a file and no teacher, the student must be a model folder (student.checkpoint); "
            "or give a teacher to build it from"
        )
    if cfg.teacher is not None:
        say(
            f"soft targets from data.soft_label_column {cfg.data.soft_label_column!r}: the teacher {cfg.teacher} is "
            "not run for them (its logits are not used; it builds the student and is scored in the report)"
        )
    return True
