"""Kinds of task, each one :class:`Task` subclass in one module, registered in :mod:`tinydistill.registry`;
:func:`task_info` builds the task a data config names and :func:`task_of_model` finds the kind of a saved model."""

from __future__ import annotations

from pathlib import Path

from tinydistill.config import DataConfig
from tinydistill.data.tasks import glue_task
from tinydistill.errors import TinyDistillError
from tinydistill.registry import kind_named, kinds
from tinydistill.tasks.base import Task
from tinydistill.tasks.embedding import SentenceEmbedding
from tinydistill.tasks.multilabel import MultiLabel
from tinydistill.tasks.qa import QuestionAnswering
from tinydistill.tasks.sequence import Regression, SequenceClassification
from tinydistill.tasks.tokens import TokenClassification


def task_info(cfg: DataConfig) -> Task:
    """The task ``cfg`` describes, with its label set and metric: a GLUE task (a classification or a regression), or
    the kind data.task names (built by its ``from_data``: labels from data.labels or the training split)."""
    spec = glue_task(cfg.task)
    if spec is not None:
        if spec.is_regression:
            return Regression(spec.name, None, spec.metric)
        return SequenceClassification(spec.name, list(cfg.labels or spec.labels), spec.metric)
    kind = kind_named(cfg.task)
    if kind is None:
        raise TinyDistillError(f"unknown task {cfg.task!r}: use one of {', '.join(task_names())}")
    return kind.from_data(cfg, kind.kind)


def task_names() -> list[str]:
    """Every data.task name: the GLUE tasks, then each registered kind."""
    from tinydistill.data.tasks import GLUE_TASKS

    return [*GLUE_TASKS, *kinds()]


def task_of_model(config, folder: str | Path | None = None) -> type[Task]:
    """The kind of task a saved model was trained for: the first kind, highest ``recognise_rank`` first, that
    recognises its config (and folder)."""
    where = Path(folder) if folder is not None else None
    ranked = sorted(kinds().values(), key=lambda k: -k.recognise_rank)
    return next(k for k in ranked if k.recognises(config, where))


__all__ = [
    "MultiLabel",
    "QuestionAnswering",
    "Regression",
    "SentenceEmbedding",
    "SequenceClassification",
    "Task",
    "TokenClassification",
    "task_info",
    "task_names",
    "task_of_model",
]
