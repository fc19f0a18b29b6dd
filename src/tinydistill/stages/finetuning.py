"""Stage 2: the teacher learns the task (hard labels), keeping its best dev checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from accelerate.utils import set_seed
from torch import nn

from tinydistill.config import Config, LossConfig
from tinydistill.data.readers import with_dev
from tinydistill.errors import TinyDistillError
from tinydistill.models import load_classifier, load_tokenizer
from tinydistill.objectives import build_terms
from tinydistill.outputs import StagingDir
from tinydistill.report import ModelEntry
from tinydistill.stages.template import StagePlan, checkpoint_spec, dev_split, fit_length, run_stage, score, task_data
from tinydistill.tasks import Task, task_info
from tinydistill.terms import Setup
from tinydistill.trainer import Callback, StageRun


def require_teacher(cfg: Config) -> str:
    if not cfg.teacher:
        raise TinyDistillError("no teacher given: set `teacher:` in the config or pass --teacher")
    return cfg.teacher


def finetune(
    cfg: Config, output_dir: str | Path | None = None, task: Task | None = None, callbacks: Sequence[Callback] = ()
) -> Path:
    """Stage 2: fine-tune ``cfg.teacher`` (a pre-trained model) on ``cfg.data``; keeps the best dev checkpoint.

    Returns the output folder (a model with the task's head and its labels in ``config.id2label``). ``task``: the
    task ``cfg.data`` describes, when the caller has built it already."""
    out = Path(output_dir or cfg.output_dir)
    cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})
    with StagingDir(out, "finetune", cfg.input_paths(), cfg.overwrite) as tmp:
        cfg, plan = _plan(cfg, out, task or task_info(cfg.data))
        run_stage(plan, cfg, tmp, callbacks)
    return out


def _plan(cfg: Config, out: Path, task: Task) -> tuple[Config, StagePlan]:
    tokenizer = load_tokenizer(require_teacher(cfg))
    set_seed(cfg.seed)
    model = load_classifier(cfg.teacher, task, who="teacher")
    cfg = fit_length(cfg, model, tokenizer=tokenizer)
    tcfg = cfg.finetune.train
    data = task_data(cfg, tokenizer, task, tcfg)
    task.init_head(model, data.train)
    terms = build_terms(LossConfig(hard_weight=1.0), Setup([], task, 0, 0), has_teacher=False)
    run = StageRun(model, None, terms, None, nn.ModuleDict(), *data.loaders, task, select_best=True)
    return cfg, StagePlan(
        name="finetune",
        title=f"Stage 2: teacher fine-tuning ({task.name})",
        run=run,
        train=tcfg,
        checkpoint=checkpoint_spec(cfg, out, "finetune", tcfg),
        tokenizer=tokenizer,
        entries=lambda r, folder: [ModelEntry("teacher", r.student, folder, score(r.final_eval, task))],
        timed=data.dev,
        metric=task.metric,
        metrics=dev_split(cfg, data.dev),
        save_projections=False,
    )
