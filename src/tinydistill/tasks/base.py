"""What differs between kinds of task, in one object: the rest of the toolkit asks the task instead of branching.

A :class:`Task` owns its kind name and aliases (``data.task``), the settings of its own section of the data config
(``data.<settings_key>``, a pydantic model), the Auto model class, reading and encoding examples, collation, the label
ids and the config keys that carry them, which positions the prediction losses count, gathering predictions (of
ragged length, for per-token tasks), the metric and side metrics, augmentation of its training data, how a saved model
of the kind is recognised, and the ``transformers.pipeline`` name a trained model serves under. A new kind is one
subclass decorated with :func:`tinydistill.registry.register_kind`, in one module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel

from tinydistill.config import Config, DataConfig, LossConfig
from tinydistill.data.readers import Examples, labels_of, read_split, read_transfer
from tinydistill.errors import TinyDistillError

if TYPE_CHECKING:  # a task reads and checks data without torch; models, losses and metrics import it when they run
    from torch import Tensor, nn
    from torch.utils.data import DataLoader

    from tinydistill.data.loaders import EncodedDataset


class AutoClass:
    """A transformers Auto class by name, imported when first read (a task's data side needs no transformers)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type) -> Any:
        return getattr(importlib.import_module("transformers"), self.name)


class Task:
    """One task: its name, label names (None for a regression), the metric that ranks checkpoints and its settings."""

    kind: ClassVar[str]  # the data.task value that selects it (GLUE names map onto the sequence kinds)
    aliases: ClassVar[tuple[str, ...]] = ()  # other data.task values that select it
    settings_key: ClassVar[str | None] = None  # its section of the data config, data.<settings_key>
    settings_model: ClassVar[type[BaseModel] | None] = None  # validates that section (None: the kind has none)
    side_metric_titles: ClassVar[dict[str, str]] = {}  # side metric (side_metrics' keys) -> report column title
    recognise_rank: ClassVar[int] = 0  # saved models are offered to the kinds of higher rank first
    auto_model: ClassVar[Any]  # the transformers Auto class of a model with this task's head (an AutoClass)
    pipeline_tag: ClassVar[str]  # transformers.pipeline task a trained model serves
    no_label: ClassVar[Any] = None  # the label of an unlabelled (transfer-set) example; None: no transfer sets
    teacher_needs_finetuning: ClassVar[bool] = True  # False: the pipeline uses the teacher as it is (no stage 2)
    cache_dtype: ClassVar[str] = "float32"  # how the teacher-output cache stores this task's outputs
    per_token_outputs: ClassVar[bool] = False  # a model's outputs are one vector per token (else one per text)
    onnx_output: ClassVar[str | tuple[str, ...]] = (
        "logits"  # an exported graph's output (several: the logits' last axis)
    )
    ensembles: ClassVar[bool] = False  # several teachers' outputs combine into one soft target (ensemble_logits)
    report_details: ClassVar[bool] = False  # whether :meth:`details` has tables (read from the dev outputs)

    def __init__(
        self, name: str, label_names: list[str] | None, metric: str, settings: BaseModel | None = None
    ) -> None:
        self.name, self.label_names, self.metric = name, label_names, metric
        self.settings = settings if settings is not None or self.settings_model is None else self.settings_model()

    @classmethod
    def settings_of(cls, cfg: DataConfig) -> Any:
        """The kind's section of ``cfg`` (its settings model, defaults where the section is absent)."""
        section = (cfg.model_extra or {}).get(cls.settings_key) if cls.settings_key else None
        return section if section is not None else (cls.settings_model() if cls.settings_model else None)

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        """Whether a saved model (its ``config``, and ``folder`` where known) was trained for this kind."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.label_names!r}, {self.metric!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_regression(self) -> bool:
        """Whether the task is a regression (descriptive; behaviour comes from the task's methods)."""
        return self.kind == "regression"

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> Task:
        """The task of this kind that ``cfg`` describes (its label set from data.labels or the training data)."""
        raise NotImplementedError

    # --- data ---------------------------------------------------------------------------------------------------
    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        """One split ('train', 'dev', 'test') of the configured data, labels as ids."""
        raise NotImplementedError

    def labels_from(
        self, rows: list[dict], column: str, cfg: DataConfig, source: str, required: bool = True
    ) -> list | None:
        """The labels of a table's ``rows`` (None: the column is absent and not ``required``): the raw values of
        ``column`` (through data.label_pattern and data.label_map) as :meth:`label_ids` reads them."""
        raw = labels_of(rows, column, cfg, source, required)
        return self.label_ids(raw, source) if raw is not None else None

    def label_ids(self, raw: list, source: str) -> list:
        """The ids (or values) of raw labels as read from ``source``, refused in one line where one is not valid."""
        raise NotImplementedError

    def augment_into(self, cfg: Config, out: Path, sources: Callable[[], Any]) -> dict:
        """Write the TinyBERT augmentation of the training split into ``out`` (its own format) and return what was
        done (``metrics.json``); ``sources()`` loads the word vectors and masked LM where they are needed."""
        raise TinyDistillError(f"augmentation is not available for task {self.kind}")

    def read_transfer(self, cfg: DataConfig, path: str | Path) -> Examples:
        """The unlabelled examples of a transfer file (labels ``no_label``, which the hard-label losses skip)."""
        if self.no_label is None:
            raise TinyDistillError(f"data.transfer_files are not supported for {self.kind} yet")
        return read_transfer(cfg, path, self.no_label)

    def check_transfer(self, losses: LossConfig) -> None:
        """Refuse ``losses`` that would learn nothing from transfer-set examples (none here)."""

    def encode(
        self, ex: Examples, tokenizer, max_length: int, teacher_tokenizer=None, training: bool = False
    ) -> EncodedDataset:
        """Tokenised rows (``training``: the rows a loss reads, which may label more positions than a metric)."""
        raise NotImplementedError

    def eval_data(
        self, cfg: DataConfig, split: str, tokenizer, max_length: int | None = None, seed: int = 0
    ) -> EncodedDataset:
        """``split`` of the configured data, read and encoded for evaluation (at ``max_length``, default the data
        config's)."""
        return self.encode(read_split(cfg, split, self, seed=seed), tokenizer, max_length or cfg.max_length)

    def eval_loader(
        self, cfg: DataConfig, split: str, tokenizer, batch_size: int, max_length: int | None = None, seed: int = 0
    ) -> DataLoader:
        """Batches of :meth:`eval_data`, in order."""
        return self.loader(self.eval_data(cfg, split, tokenizer, max_length, seed), tokenizer, batch_size)

    def collator(self, tokenizer, teacher_tokenizer=None):
        """Pads a list of rows into a batch (inputs, labels and cached teacher outputs alike)."""
        from tinydistill.data.loaders import PadBoth

        return PadBoth(tokenizer, teacher_tokenizer)

    def loader(
        self,
        data,
        tokenizer,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        group_by_length: bool = False,
        teacher_tokenizer=None,
    ) -> DataLoader:
        from tinydistill.data.loaders import make_loader

        return make_loader(
            data,
            tokenizer,
            batch_size,
            shuffle,
            seed,
            group_by_length,
            teacher_tokenizer,
            collate=self.collator(tokenizer, teacher_tokenizer),
        )

    # --- the model head ---------------------------------------------------------------------------------------
    def config_kwargs(self) -> dict:
        """config keys that give a model this task's head and label names."""
        names = self.label_names
        return {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
        }

    def trained_head(self, config) -> bool:
        """True when ``config`` belongs to a model already trained for this task (its label names are real)."""
        return _has_label_names(config)

    def check_head(self, config, who: str) -> None:
        """Refuse a model whose label map differs from the task's (permuted logits silently ruin distillation)."""
        if not _has_label_names(config):
            return
        theirs = [str(config.id2label[i]) for i in range(len(config.id2label))]
        if theirs != self.label_names:
            raise TinyDistillError(
                f"label maps differ: {who} has id2label {theirs}, the task has {self.label_names}; "
                "re-train it on this task's labels or set data.labels to its order"
            )

    def student_for(self, student: nn.Module, teacher: nn.Module | None, outputs: bool = True) -> nn.Module:
        """``student`` made ready for this task beside ``teacher`` (most tasks: as built); ``outputs``: the stage
        trains the student's outputs (a prediction loss), not only its hidden states."""
        return student

    def init_head(self, model: nn.Module, train: EncodedDataset) -> None:
        """Start a new task head from the training rows before a stage trains it (fine-tuning, or a prediction stage
        whose student has a new head); most tasks: as transformers built it."""
        return None

    @property
    def tunes(self) -> bool:
        """Whether :meth:`tune` chooses something on dev after training (most kinds: no)."""
        return False

    def tune(self, model: nn.Module, outputs, golds) -> dict | None:
        """Choose, from the trained ``model``'s dev outputs (as :meth:`collect` returns them), what it is scored with
        and write that into its config (saved with it); returns the dev metrics with that choice (None: nothing
        chosen). Called after training where :attr:`tunes`."""
        return None

    def for_model(self, config) -> Task:
        """This task as it scores a model whose config is ``config`` (what :meth:`tune` saved there; most tasks: as
        it is)."""
        return self

    def prepare(self, student: nn.Module, teacher: nn.Module | None, loader: DataLoader) -> None:
        """Fit what starts from the training data before a prediction stage trains (most tasks: nothing);
        ``loader``: the training rows in order, with the teacher's cached outputs when the stage caches them."""
        return None

    # --- losses -------------------------------------------------------------------------------------------------
    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        """The prediction-layer loss to the teacher's outputs (``mask``: the batch's attention mask)."""
        raise NotImplementedError

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        """The loss to the gold labels."""
        raise NotImplementedError

    def ensemble_logits(self, logits: list[np.ndarray], weights: list[float], temperature: float) -> np.ndarray:
        """The soft target of several teachers as one teacher's logits: each (N, C) -> (N, C), such that the soft
        loss at ``temperature`` reads the weighted mean of the teachers' tempered predictions (``weights`` sum to 1)."""
        raise TinyDistillError(f"several teachers are not supported for task kind {self.kind} yet")

    # --- evaluation ---------------------------------------------------------------------------------------------
    def side_metrics(self, model: nn.Module, tokenizer, batch_size: int) -> dict[str, float]:
        """Scores beside the metric that need no split of the task's data (most tasks: none)."""
        return {}

    def collect(self, logits: Tensor, batch: dict) -> tuple[list, list | None]:
        """Per-example outputs and gold labels (None: the batch has none) of one evaluated batch."""
        raise NotImplementedError

    def metrics(self, outputs, golds) -> dict[str, float]:
        """The task's metrics from everything :meth:`collect` returned (joined in order)."""
        raise NotImplementedError

    def details(self, outputs, golds) -> list[tuple[str, list[str], list[list[str]]]]:
        """The report's tables beyond the metric, from dev outputs as :meth:`collect` returns them: (heading, column
        titles, rows of text). Most tasks have none."""
        return []


def _has_label_names(config) -> bool:
    """True when a config carries real label names (not transformers' LABEL_0, LABEL_1 defaults)."""
    id2label = getattr(config, "id2label", None) or {}
    return bool(id2label) and any(str(v) != f"LABEL_{k}" for k, v in id2label.items())


def as_arrays(outputs: list, golds: list | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-example outputs (and golds) of a sequence-level task stacked into arrays."""
    return np.stack(outputs) if outputs else np.zeros((0, 0)), np.asarray(golds) if golds is not None else None
