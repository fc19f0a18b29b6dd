"""Kinds of task, each one :class:`Task` object; :func:`task_info` picks and builds the one a data config names."""

from __future__ import annotations

from pathlib import Path

from tinydistill.config import DataConfig
from tinydistill.data.tasks import glue_task, normalise_task_name
from tinydistill.tasks.base import Task
from tinydistill.tasks.embedding import SentenceEmbedding
from tinydistill.tasks.sequence import Regression, SequenceClassification
from tinydistill.tasks.tokens import TokenClassification

#: task kinds by the data.task names that select them (GLUE names select classification or regression)
KINDS: dict[str, type[Task]] = {
    cls.kind: cls for cls in (SequenceClassification, Regression, TokenClassification, SentenceEmbedding)
}


def TaskInfo(name: str, label_names: list[str] | None, metric: str) -> Task:  # noqa: N802 (the old class name)
    """A sequence-level task: a classification with ``label_names``, or a regression when they are None."""
    return Regression(name, None, metric) if label_names is None else SequenceClassification(name, label_names, metric)


def task_info(cfg: DataConfig) -> Task:
    """The task ``cfg`` describes, with its label set and metric: a GLUE task, or the kind data.task names
    (built by its ``from_data``: labels from data.labels or the training split)."""
    spec = glue_task(cfg.task)
    if spec is not None:
        return TaskInfo(spec.name, None if spec.is_regression else list(cfg.labels or spec.labels), spec.metric)
    name = normalise_task_name(cfg.task)
    return KINDS[name].from_data(cfg, name)


def task_of_model(config, folder: str | Path | None = None) -> type[Task]:
    """The kind of task a saved model's head was built for (a sentence-transformers ``folder``: embedding; else from
    its architecture name)."""
    if folder is not None and (Path(folder) / "modules.json").is_file():
        return SentenceEmbedding
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return TokenClassification
    if getattr(config, "problem_type", None) == "regression":
        return Regression
    return SequenceClassification


__all__ = [
    "KINDS",
    "Regression",
    "SentenceEmbedding",
    "SequenceClassification",
    "Task",
    "TaskInfo",
    "TokenClassification",
    "task_info",
    "task_of_model",
]
