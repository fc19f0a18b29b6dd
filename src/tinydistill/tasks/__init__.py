"""Kinds of task, each one :class:`Task` object; :func:`task_info` picks and builds the one a data config names."""

from __future__ import annotations

from tinydistill.config import DataConfig
from tinydistill.data.readers import column, raw_rows
from tinydistill.data.tasks import glue_task, normalise_task_name
from tinydistill.errors import TinyDistillError
from tinydistill.tasks.base import Task
from tinydistill.tasks.sequence import Regression, SequenceClassification
from tinydistill.tasks.tokens import TokenClassification, token_task

#: task kinds by the data.task names that select them (GLUE names select classification or regression)
KINDS: dict[str, type[Task]] = {cls.kind: cls for cls in (SequenceClassification, Regression, TokenClassification)}


def TaskInfo(name: str, label_names: list[str] | None, metric: str) -> Task:  # noqa: N802 (the old class name)
    """A sequence-level task: a classification with ``label_names``, or a regression when they are None."""
    return Regression(name, None, metric) if label_names is None else SequenceClassification(name, label_names, metric)


def task_info(cfg: DataConfig) -> Task:
    """The task ``cfg`` describes, with its label set and metric. Custom classification labels come from
    data.labels or the training split; token-classification tags from data.labels or the training file's types."""
    spec = glue_task(cfg.task)
    if spec is not None:
        return TaskInfo(spec.name, None if spec.is_regression else list(cfg.labels or spec.labels), spec.metric)
    name = normalise_task_name(cfg.task)
    if name == "token-classification":
        return token_task(cfg, name)
    if name == "regression":
        return Regression(name)
    if cfg.labels:
        return SequenceClassification(name, list(cfg.labels), "accuracy")
    rows, source, _ = raw_rows(cfg, "train")
    raw = column(rows, cfg.label_column, source)
    if not raw:
        raise TinyDistillError(f"{source} has no examples (nothing to learn the label set from)")
    empty = next((i for i, v in enumerate(raw) if not str(v).strip()), None)
    if empty is not None:
        raise TinyDistillError(f"{source}: row {empty + 1} has an empty label; fill it in or drop the row")
    return SequenceClassification(name, sorted({str(v).strip() for v in raw}), "accuracy")


def task_of_model(config) -> type[Task]:
    """The kind of task a saved model's head was built for (from its architecture name)."""
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return TokenClassification
    if getattr(config, "problem_type", None) == "regression":
        return Regression
    return SequenceClassification


__all__ = [
    "KINDS",
    "Regression",
    "SequenceClassification",
    "Task",
    "TaskInfo",
    "TokenClassification",
    "task_info",
    "task_of_model",
]
