"""One label, or one score, per text (or text pair): sequence classification and regression (GLUE, your files)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinydistill.config import Config, DataConfig, LossConfig
from tinydistill.data.keys import LABELS
from tinydistill.data.readers import Examples, labels_of, raw_rows, read_texts
from tinydistill.errors import TinyDistillError
from tinydistill.registry import register_kind
from tinydistill.tasks.base import AutoClass, Task, as_arrays
from tinydistill.ui import say

if TYPE_CHECKING:
    from torch import Tensor

    from tinydistill.data.loaders import EncodedDataset


class PerText(Task):
    """What the kinds with one output per text (or text pair) share: the sequence-classification head, encoding,
    table augmentation and collecting one output per example."""

    auto_model = AutoClass("AutoModelForSequenceClassification")
    pipeline_tag = "text-classification"
    ensembles = True

    def encode(
        self, ex: Examples, tokenizer, max_length: int, teacher_tokenizer=None, training: bool = False
    ) -> EncodedDataset:
        from tinydistill.data.loaders import encode_examples

        return encode_examples(ex, tokenizer, max_length, teacher_tokenizer)

    def augment_into(self, cfg: Config, out: Path, sources: Callable[[], Any]) -> dict:
        from tinydistill.augment.texts import augment_table_into

        return augment_table_into(cfg, self, out, sources)

    def collect(self, logits: Tensor, batch: dict) -> tuple[list, list | None]:
        labels = batch.get(LABELS)
        return list(logits.float().cpu().numpy()), (list(labels.cpu().numpy()) if labels is not None else None)


@register_kind
class SequenceClassification(PerText):
    """One label per text: cross-entropy / soft cross-entropy or KL at temperature T; accuracy (and F1 or MCC)."""

    kind = "classification"
    aliases = ("text-classification", "sequence-classification")
    no_label = -100

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        return True  # the last resort: any other head is read as a classifier

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> SequenceClassification:
        if cfg.labels:
            return cls(name, list(cfg.labels), "accuracy")
        rows, source, _ = raw_rows(cfg, "train")
        raw = labels_of(rows, cfg.label_column, cfg, source)
        if not raw:
            raise TinyDistillError(f"{source} has no examples (nothing to learn the label set from)")
        empty = next((i for i, v in enumerate(raw) if not str(v).strip()), None)
        if empty is not None:
            raise TinyDistillError(f"{source}: row {empty + 1} has an empty label; fill it in or drop the row")
        return cls(name, sorted({str(v).strip() for v in raw}), "accuracy")

    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        ex = read_texts(cfg, split, self, seed, require_labels)
        if split == "train" and ex.labels is not None and len(set(ex.labels)) < 2:
            raise TinyDistillError(
                f"{ex.source}: every training example has the label "
                f"{self.label_names[ex.labels[0]]!r}; a classifier needs at least two classes "
                "(or use task: regression for numeric targets)"
            )
        return ex

    def label_ids(self, raw: list, source: str) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        ids = []
        for i, v in enumerate(raw):
            key = str(v).strip()
            if not key:
                raise TinyDistillError(f"{source}: row {i + 1} has an empty label; fill it in or drop the row")
            if key not in index:
                raise TinyDistillError(
                    f"{source}: row {i + 1}: label {key!r} is not in the label set "
                    f"{self.label_names}; fix the row or set data.labels"
                )
            ids.append(index[key])
        return ids

    def config_kwargs(self) -> dict:
        return super().config_kwargs() | {"problem_type": "single_label_classification"}

    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        from tinydistill import losses as L

        fn = L.soft_cross_entropy if cfg.soft_loss == "ce" else L.kl_divergence
        return fn(student, teacher, cfg.temperature, cfg.t2_scaling)

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        from tinydistill import losses as L

        keep = labels != self.no_label  # transfer-set rows have no gold label
        return L.hard_cross_entropy(student[keep], labels[keep])

    def ensemble_logits(self, logits: list[np.ndarray], weights: list[float], temperature: float) -> np.ndarray:
        """T log of the weighted mean of softmax(t_i / T): its softmax at T is that mean."""
        from scipy.special import softmax

        mean = sum(w * softmax(t.astype(np.float64) / temperature, axis=-1) for t, w in zip(logits, weights))
        return (temperature * np.log(np.clip(mean, 1e-12, None))).astype(np.float32)

    def metrics(self, outputs, golds) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

        outputs, golds = as_arrays(list(outputs), list(golds))
        pred = outputs.argmax(-1)
        out = {"accuracy": float(accuracy_score(golds, pred))}
        if self.metric == "f1":
            out["f1"] = float(f1_score(golds, pred, zero_division=0.0))
        if self.metric == "matthews_corrcoef":
            out["matthews_corrcoef"] = float(matthews_corrcoef(golds, pred))
        return out


@register_kind
class Regression(PerText):
    """One score per text: MSE to the gold score and to the teacher's; Pearson and Spearman correlation."""

    kind = "regression"
    no_label = float("nan")
    recognise_rank = 1

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        return getattr(config, "problem_type", None) == "regression"

    def augment_into(self, cfg: Config, out: Path, sources: Callable[[], Any]) -> dict:
        if not cfg.augment.regression:
            say(f"{self.name} is a regression task: not augmented (as in TinyBERT); set augment.regression=true")
            return {"stage": "augment", "skipped": "regression task"}
        return super().augment_into(cfg, out, sources)

    def __init__(self, name: str, label_names: None = None, metric: str = "pearson") -> None:
        super().__init__(name, None, metric)

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> Regression:
        return cls(name)

    @property
    def num_labels(self) -> int:
        return 1

    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        return read_texts(cfg, split, self, seed, require_labels)

    def label_ids(self, raw: list, source: str) -> list[float]:
        return numbers(raw, source, "regression target")

    def config_kwargs(self) -> dict:
        return {"num_labels": 1, "problem_type": "regression"}

    def trained_head(self, config) -> bool:
        return super().trained_head(config) or getattr(config, "problem_type", None) == "regression"

    def check_head(self, config, who: str) -> None:
        archs = getattr(config, "architectures", None) or []
        head = (
            super().trained_head(config)
            or bool(getattr(config, "problem_type", None))
            or any("For" in a for a in archs)
        )
        if head and getattr(config, "num_labels", 1) != 1:
            raise TinyDistillError(f"{who} has {config.num_labels} outputs but the task is a regression (1 output)")

    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        from tinydistill import losses as L

        return L.regression_mse(student, teacher)

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        from tinydistill import losses as L

        keep = ~labels.isnan()  # transfer-set rows have no gold score
        return L.regression_mse(student.view(-1)[keep], labels[keep]) if keep.any() else student.sum() * 0.0

    def ensemble_logits(self, logits: list[np.ndarray], weights: list[float], temperature: float) -> np.ndarray:
        """The weighted mean of the teachers' scores (the soft loss is an MSE, with no temperature)."""
        return sum(w * t.astype(np.float64) for t, w in zip(logits, weights)).astype(np.float32)

    def metrics(self, outputs, golds) -> dict[str, float]:
        from scipy.stats import pearsonr, spearmanr

        pred = np.asarray(outputs, dtype=np.float64).reshape(-1)
        gold = np.asarray(golds, dtype=np.float64).reshape(-1)
        if len(pred) < 2 or np.std(pred) == 0 or np.std(gold) == 0:
            return {"pearson": 0.0, "spearman": 0.0}
        return {"pearson": float(pearsonr(pred, gold)[0]), "spearman": float(spearmanr(pred, gold)[0])}


def numbers(raw: list, source: str, what: str, upper: float = math.inf) -> list[float]:
    """``raw`` as finite floats in 0..``upper`` (no lower bound when unbounded); a bad value stops with its row."""
    out = []
    for i, v in enumerate(raw):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise TinyDistillError(f"{source}: row {i + 1}: {what} {v!r} is not a number") from None
        if not math.isfinite(x):
            raise TinyDistillError(f"{source}: row {i + 1}: {what} {v!r} is not finite")
        if upper != math.inf and not 0 <= x <= upper:
            raise TinyDistillError(f"{source}: row {i + 1}: {what} {v!r} is outside 0-{upper:g}")
        out.append(x)
    return out
