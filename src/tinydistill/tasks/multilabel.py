"""Any number of labels per text (topics, emotions, toxicity): one sigmoid per label, soft and hard binary
cross-entropy, micro / macro / example-based F1 at a threshold."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tinydistill.config import DataConfig, InputPath, LossConfig
from tinydistill.data.readers import Examples, column, mapped_label, raw_rows, read_texts, read_transfer
from tinydistill.errors import TinyDistillError
from tinydistill.registry import register_kind
from tinydistill.tasks.base import as_arrays
from tinydistill.tasks.sequence import PerText, numbers
from tinydistill.ui import say

if TYPE_CHECKING:
    from torch import Tensor, nn

#: the model config key a threshold tuned on dev is saved under
THRESHOLD_KEY = "multilabel_threshold"
#: the threshold of a model with none tuned, where data.multilabel.threshold is unset
DEFAULT_THRESHOLD = 0.5
#: the thresholds tune_threshold tries
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


class MultiLabelSettings(BaseModel):
    """``data.multilabel``: how a row's labels are written, and the threshold that turns sigmoids into labels."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    old_keys: ClassVar[dict[str, str]] = {}

    label_separator: str = Field(
        ",",
        description="what separates the labels in one column ('0,15'); a JSON list ('[\"joy\", \"love\"]') and a "
        "JSONL list are read as lists",
    )
    label_columns: list[str] | None = Field(
        None, description="one 0/1 column per label instead of one label column (the label names are the columns)"
    )
    label_names_file: str | None = InputPath(
        "label names file",
        description="the label names, one per line in id order: the label column then holds ids into it "
        "(GoEmotions' emotions.txt)",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="a label is predicted where its sigmoid reaches this (unset: the threshold tuned for the model, "
        f"else {DEFAULT_THRESHOLD})",
    )
    tune_threshold: bool = Field(
        False,
        description="after training, choose the threshold (0.05 to 0.95 by 0.01) that maximises macro F1 on dev and "
        f"save it with the model (config.json's {THRESHOLD_KEY!r}); scoring that model then uses it",
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> MultiLabelSettings:
        if self.tune_threshold and self.threshold is not None:
            raise ValueError("set threshold or tune_threshold, not both (a tuned threshold replaces the set one)")
        return self


@register_kind
class MultiLabel(PerText):
    """Any number of labels per text: per-label sigmoids, soft BCE to the teacher's sigmoids at temperature T (times
    T^2), hard BCE; micro, macro and example-based F1 at ``data.multilabel.threshold``."""

    kind = "multi-label"
    aliases = ("multilabel", "multi-label-classification")
    settings_key = "multilabel"
    settings_model = MultiLabelSettings
    recognise_rank = 1
    report_details = True

    def __init__(self, name: str, label_names: list[str], metric: str = "macro_f1", settings=None) -> None:
        super().__init__(name, label_names, metric, settings)

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        return getattr(config, "problem_type", None) == "multi_label_classification"

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> MultiLabel:
        """Its label set: data.labels, the label names file, the label columns, or every label of train, sorted."""
        settings = cls.settings_of(cfg)
        names = list(cfg.labels or []) or _names_file(settings) or list(settings.label_columns or [])
        if not names:
            rows, source, _ = raw_rows(cfg, "train")
            found = _split_labels(column(rows, cfg.for_split("train").label_column, source), settings, source)
            names = sorted({label for row in found for label in row})
        if len(names) < 2:
            raise TinyDistillError(f"multi-label data needs at least two labels, found {names}")
        return cls(name, names, "macro_f1", settings)

    # --- data ---------------------------------------------------------------------------------------------------
    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        if cfg.soft_label_column:
            raise TinyDistillError("data.soft_label_column holds one distribution per text; multi-label has none")
        ex = read_texts(cfg, split, self, seed, require_labels)
        if ex.labels is not None:
            empty = sum(1 for row in ex.labels if not any(row))
            if empty:
                say(f"{ex.source}: {empty:,} of {len(ex):,} rows have no label (kept: they teach 'none of them')")
        return ex

    def read_transfer(self, cfg: DataConfig, path: str | Path) -> Examples:
        """The texts of a transfer file (.txt, or the text column of a table), each with no gold labels: a row of
        NaN, which the hard-label loss skips."""
        ex = read_transfer(cfg, path, None)
        ex.labels = [[math.nan] * self.num_labels for _ in ex.texts]
        return ex

    def labels_from(
        self, rows: list[dict], name: str, cfg: DataConfig, source: str, required: bool = True
    ) -> list | None:
        """Multi-hot rows (one 0/1 float per label) from the label columns, or from the label column's lists."""
        if self.settings.label_columns:
            return _from_columns(rows, self.settings.label_columns, source)
        raw = column(rows, name, source, required)
        if raw is None:
            return None
        labels = _split_labels(raw, self.settings, source)
        if self.settings.label_names_file:
            labels = [[_by_id(v, self.label_names, source, i) for v in row] for i, row in enumerate(labels)]
        if cfg.label_map is not None:
            labels = [[mapped_label(v, cfg.label_map, source, i) for v in row] for i, row in enumerate(labels)]
        return self.label_ids(labels, source)

    def label_ids(self, raw: list, source: str) -> list[list[float]]:
        index = {n: i for i, n in enumerate(self.label_names)}
        out = []
        for i, row in enumerate(raw):
            vector = [0.0] * len(index)
            for label in row:
                if label not in index:
                    raise TinyDistillError(
                        f"{source}: row {i + 1}: label {label!r} is not in the label set {self.label_names}; fix the "
                        "row or set data.labels"
                    )
                vector[index[label]] = 1.0
            out.append(vector)
        return out

    # --- the model head -----------------------------------------------------------------------------------------
    def config_kwargs(self) -> dict:
        return super().config_kwargs() | {"problem_type": "multi_label_classification"}

    def init_head(self, model, train) -> None:
        """A new head (bias all zero, as transformers initialises it) starts at each label's training log-odds, so
        fine-tuning does not first spend its steps learning that most labels are absent. A threshold tuned for the
        weights the model starts from is dropped: the stage trains new ones."""
        import torch

        from tinydistill.data.keys import LABELS

        if hasattr(model.config, THRESHOLD_KEY):
            delattr(model.config, THRESHOLD_KEY)
        heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == self.num_labels]
        if not heads or heads[-1].bias is None or bool(heads[-1].bias.detach().any()):
            return
        gold = np.asarray([r[LABELS] for r in train.rows], dtype=np.float64)
        gold = gold[~np.isnan(gold).any(1)]  # transfer-set rows have no labels
        if not len(gold):
            return
        rate = np.clip(gold.mean(0), 1e-4, 1 - 1e-4)
        with torch.no_grad():
            heads[-1].bias.copy_(torch.from_numpy(np.log(rate / (1 - rate))))
        say(f"new head: biases set to the labels' log-odds in train ({rate.min():.4f} to {rate.max():.4f} positive)")

    # --- losses -------------------------------------------------------------------------------------------------
    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        from tinydistill import losses as L

        return L.soft_binary_cross_entropy(student, teacher, cfg.temperature, cfg.t2_scaling)

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        from tinydistill import losses as L

        keep = ~labels.isnan().any(-1)  # transfer-set rows have no gold labels
        return L.hard_binary_cross_entropy(student[keep], labels[keep])

    def ensemble_logits(self, logits: list[np.ndarray], weights: list[float], temperature: float) -> np.ndarray:
        """T logit of the weighted mean of sigmoid(t_i / T), label by label: its sigmoid at T is that mean."""
        from scipy.special import expit, logit

        mean = sum(w * expit(t.astype(np.float64) / temperature) for t, w in zip(logits, weights))
        return (temperature * logit(np.clip(mean, 1e-12, 1 - 1e-12))).astype(np.float32)

    # --- evaluation ---------------------------------------------------------------------------------------------
    @property
    def tunes(self) -> bool:
        return self.settings.tune_threshold

    def tune(self, model: nn.Module, outputs, golds) -> dict | None:
        """The threshold of :data:`THRESHOLDS` with the best dev macro F1 (the lowest of equals), set on ``model``'s
        config; returns the dev metrics at it, with ``threshold``."""
        scores = [self.at(t).metrics(outputs, golds) for t in THRESHOLDS]
        best = max(range(len(scores)), key=lambda i: (scores[i][self.metric], -i))
        setattr(model.config, THRESHOLD_KEY, float(THRESHOLDS[best]))
        say(f"threshold tuned on dev: {THRESHOLDS[best]:g} ({self.metric} {scores[best][self.metric]:.4f})")
        return scores[best] | {"threshold": float(THRESHOLDS[best])}

    def for_model(self, config) -> MultiLabel:
        """At the threshold tuned for the model (``config``'s, if any), unless data.multilabel.threshold is set."""
        saved = getattr(config, THRESHOLD_KEY, None)
        return self if saved is None or self.settings.threshold is not None else self.at(saved)

    def at(self, threshold: float) -> MultiLabel:
        """This task scoring at ``threshold``."""
        settings = self.settings.model_copy(update={"threshold": float(threshold), "tune_threshold": False})
        return MultiLabel(self.name, self.label_names, self.metric, settings)

    @property
    def threshold(self) -> float:
        """Where a label's sigmoid counts as predicted."""
        return DEFAULT_THRESHOLD if self.settings.threshold is None else self.settings.threshold

    def metrics(self, outputs, golds) -> dict[str, float]:
        from sklearn.metrics import f1_score

        logits, gold = as_arrays(list(outputs), list(golds))
        pred = predicted(logits, self.threshold)
        gold = gold.astype(int)
        return {
            "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0.0)),
            "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0.0)),
            "example_f1": example_f1(gold, pred),
        }

    def details(self, outputs, golds) -> list[tuple[str, list[str], list[list[str]]]]:
        """Per label: precision, recall, F1 and the number of dev examples that carry it."""
        from sklearn.metrics import precision_recall_fscore_support

        logits, gold = as_arrays(list(outputs), list(golds))
        pred = predicted(logits, self.threshold)
        p, r, f, n = precision_recall_fscore_support(gold.astype(int), pred, zero_division=0.0)
        rows = [
            [name, f"{p[i]:.3f}", f"{r[i]:.3f}", f"{f[i]:.3f}", str(int(n[i]))]
            for i, name in enumerate(self.label_names)
        ]
        title = f"Per label (dev, threshold {self.threshold:g})"
        return [(title, ["label", "precision", "recall", "F1", "examples"], rows)]


def predicted(logits: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 per label: sigmoid(logit) >= threshold. logits (N, C) -> (N, C) int."""
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64))) >= threshold).astype(int)


def example_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    """Example-based F1: per row 2|gold ∩ pred| / (|gold| + |pred|), 1 where both are empty, averaged.
    gold, pred (N, C) of 0/1 -> float."""
    both = (gold & pred).sum(1)
    size = gold.sum(1) + pred.sum(1)
    return float(np.where(size == 0, 1.0, 2.0 * both / np.maximum(size, 1)).mean()) if len(gold) else 0.0


def _names_file(settings: MultiLabelSettings) -> list[str]:
    if not settings.label_names_file:
        return []
    path = Path(settings.label_names_file)
    if not path.is_file():
        raise TinyDistillError(f"label names file not found: {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _split_labels(raw: list, settings: MultiLabelSettings, source: str) -> list[list[str]]:
    """Each row's labels: a list as it is, a JSON list, or the text split at the label separator (empty: none)."""
    out = []
    for i, value in enumerate(raw):
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise TinyDistillError(
                    f"{source}: row {i + 1}: label list {value!r} is not a valid JSON list"
                ) from None
        if isinstance(value, list):
            out.append([str(v).strip() for v in value if str(v).strip()])
        elif value is None:
            out.append([])
        else:
            out.append([v.strip() for v in str(value).split(settings.label_separator) if v.strip()])
    return out


def _by_id(value: str, names: list[str], source: str, row: int) -> str:
    if not value.isdigit() or int(value) >= len(names):
        raise TinyDistillError(
            f"{source}: row {row + 1}: label {value!r} is not an id into data.multilabel.label_names_file (0 to "
            f"{len(names) - 1})"
        )
    return names[int(value)]


def _from_columns(rows: list[dict], names: list[str], source: str) -> list[list[float]]:
    """Multi-hot rows from one 0/1 column per label."""
    columns = [numbers(column(rows, n, source), source, f"label column {n!r}") for n in names]
    bad = next(((n, i, v) for n, col in zip(names, columns) for i, v in enumerate(col) if v not in (0.0, 1.0)), None)
    if bad is not None:
        raise TinyDistillError(f"{source}: row {bad[1] + 1}: label column {bad[0]!r} holds {bad[2]:g}, not 0 or 1")
    return [list(row) for row in zip(*columns)]
