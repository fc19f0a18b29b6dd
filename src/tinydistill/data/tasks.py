"""Task specifications: which columns hold text and labels, the label set, and the metric that ranks checkpoints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """How to read one task. ``labels`` is None for regression; ``metric`` picks the best checkpoint."""

    name: str
    text: str
    text_pair: str | None
    label: str
    labels: tuple[str, ...] | None
    metric: str
    headerless_columns: tuple[str, ...] | None = None  # column names for files that have no header row

    @property
    def is_regression(self) -> bool:
        return self.labels is None


_BIN = ("0", "1")
_NLI = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, TaskSpec] = {
    "sst-2": TaskSpec("sst-2", "sentence", None, "label", _BIN, "accuracy"),
    "cola": TaskSpec(
        "cola",
        "sentence",
        None,
        "label",
        _BIN,
        "matthews_corrcoef",
        headerless_columns=("source", "label", "author_mark", "sentence"),
    ),
    "mrpc": TaskSpec("mrpc", "#1 String", "#2 String", "Quality", _BIN, "f1"),
    "rte": TaskSpec("rte", "sentence1", "sentence2", "label", _NLI, "accuracy"),
    "qnli": TaskSpec("qnli", "question", "sentence", "label", _NLI, "accuracy"),
    "wnli": TaskSpec("wnli", "sentence1", "sentence2", "label", _BIN, "accuracy"),
    "sts-b": TaskSpec("sts-b", "sentence1", "sentence2", "score", None, "pearson"),
}
_GLUE_ALIASES = {"sst2": "sst-2", "sst_2": "sst-2", "stsb": "sts-b", "sts_b": "sts-b"}


def glue_task(name: str) -> TaskSpec | None:
    """The GLUE spec for ``name`` (case-insensitive, 'sst2' and 'sst-2' alike), or None: another task kind's name
    (:func:`tinydistill.tasks.task_info` says which are known)."""
    key = name.strip().lower()
    return GLUE_TASKS.get(_GLUE_ALIASES.get(key, key))
