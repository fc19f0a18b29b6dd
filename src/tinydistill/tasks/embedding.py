"""Sentence embeddings (``task: embedding``): a student learns to reproduce a sentence-transformers teacher's vectors.

The models are :class:`SentenceEncoder`s: a transformers encoder, sentence-transformers' own ``Pooling`` (and
``Dense``) modules, and an optional unit-length normalisation, read from and written as a sentence-transformers folder
(``modules.json``), so a student loads with ``SentenceTransformer(path)`` and its encoder with ``AutoModel``. Training
data is unlabelled sentences (both sides of pair files); dev and test are STS files (two sentences and a 0-5 score),
scored by the Spearman correlation of cosine similarity with the gold scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tinydistill.config import DataConfig, InputPath, LossConfig
from tinydistill.data.files import data_path
from tinydistill.data.keys import LABELS
from tinydistill.data.readers import Examples, column, kept_rows, read_table, read_texts, read_transfer, subset
from tinydistill.errors import TinyDistillError
from tinydistill.registry import register_kind
from tinydistill.tasks.base import Task
from tinydistill.tasks.sequence import numbers

if TYPE_CHECKING:
    from torch import Tensor, nn

    from tinydistill.data.loaders import EncodedDataset
    from tinydistill.tasks.sentence_encoder import SentenceEncoder


class EmbeddingSettings(BaseModel):
    """``data.embedding``: how sentence vectors are formed and learnt, and the optional classification probe."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    #: keys these settings had at the top of the data config, where their names differ
    old_keys: ClassVar[dict[str, str]] = {"embedding_loss": "loss"}

    pooling: Literal["mean", "cls", "max", "last"] | None = Field(
        None,
        description="how token vectors become a sentence vector (default: the teacher's sentence-transformers "
        "pooling; required for a teacher without one)",
    )
    normalize: bool | None = Field(
        None, description="unit-length sentence vectors (default: as the teacher's sentence-transformers)"
    )
    loss: Literal["mse", "cosine", "similarity"] = Field(
        "mse",
        description="the student-to-teacher sentence-vector loss (soft_weight weighs it): mse or cosine distance "
        "between the vectors; similarity: MSE between the cosine similarities of every pair in the batch (any "
        "width, no projection: the student keeps its own vector space)",
    )
    projection: Literal["dense", "pca", "none"] = Field(
        "dense",
        description="a student narrower than the teacher: dense: a learned Dense layer (kept in the saved model) maps "
        "its vectors to the teacher's width; pca: the student learns the teacher's vectors reduced to its own width "
        "by a fixed PCA of the teacher's training vectors; none: refuse different widths",
    )
    projection_init: Literal["least-squares", "random"] = Field(
        "least-squares",
        description="a new Dense layer starts as the least-squares map from the student's pooled vectors to the "
        "teacher's on the training sentences (random: as initialised, which disturbs the student early on)",
    )
    probe_train_file: str | None = InputPath(
        "probe train file",
        description="labelled texts (a table with a header; probe_text_column, probe_label_column) on whose frozen "
        "sentence vectors a logistic regression is trained; its accuracy on probe_dev_file is reported beside the "
        "STS score (stage reports, evaluate, compare)",
    )
    probe_dev_file: str | None = InputPath("probe dev file", description="the probe's scored texts")
    probe_text_column: str = Field("sentence", description="the probe files' text column")
    probe_label_column: str = Field("label", description="the probe files' label column")
    probe_max_train: int = Field(4000, gt=0, description="the probe learns from this many first rows")


#: data.embedding.pooling -> sentence-transformers' pooling mode
POOLING = {"mean": "mean", "cls": "cls", "max": "max", "last": "lasttoken"}
MAX_SCORE = 5.0  # STS gold scores lie in 0..5
_KNOWN = ("Transformer", "Pooling", "Dense", "Normalize")  # the sentence-transformers modules a model may have


def _modules(name: str) -> list[dict] | None:
    """A sentence-transformers folder's module list (None: not one), each listed module's folder checked."""
    path = Path(name) / "modules.json"
    if not path.is_file():
        return None
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TinyDistillError(f"{path} is damaged: not valid JSON ({exc})") from None
    if not isinstance(listed, list) or not all(isinstance(m, dict) and "type" in m for m in listed):
        raise TinyDistillError(
            f"{path}: expected a list of modules, each an object with 'type' and 'path' "
            f"(it holds {type(listed).__name__ if not isinstance(listed, list) else 'other items'})"
        )
    for m in listed:
        kind, where = str(m["type"]).rsplit(".", 1)[-1], Path(name) / str(m.get("path", ""))
        if kind in ("Pooling", "Dense") and not (where / "config.json").is_file():
            raise TinyDistillError(f"{path} lists a {kind} module in {where}, which has no config.json (missing?)")
    return listed


class SentenceModels:
    """The task's model class: ``from_pretrained`` reads a sentence-transformers folder (or a plain encoder with
    data.embedding.pooling); ``from_config`` builds a bare encoder, which :meth:`SentenceEmbedding.student_for`
    completes."""

    def __init__(self, pooling: str | None, normalize: bool | None) -> None:
        self.pooling, self.normalize = pooling, normalize

    def from_config(self, config) -> nn.Module:
        from transformers import AutoModel

        return AutoModel.from_config(config)

    def from_pretrained(self, name: str, config=None, dtype=None) -> SentenceEncoder:
        import torch
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Pooling
        from transformers import AutoModel

        from tinydistill.tasks.sentence_encoder import SentenceEncoder, check_pooling_width

        dtype = dtype or torch.float32

        listed = _modules(name)
        if listed is None:  # a plain encoder: pooling only as data.embedding.pooling says
            backbone = AutoModel.from_pretrained(name, config=config, dtype=dtype)
            pooling = Pooling(backbone.config.hidden_size, POOLING[self.pooling]) if self.pooling else None
            return SentenceEncoder(backbone, pooling, None, bool(self.normalize))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in listed]
        odd = [k for k in kinds if k not in _KNOWN]
        if odd or kinds[:2] != ["Transformer", "Pooling"]:
            raise TinyDistillError(
                f"{name}: sentence-transformers modules {kinds}; tinydistill reads Transformer, Pooling, then an "
                "optional Dense and Normalize"
            )
        st = SentenceTransformer(name, device="cpu", model_kwargs={"dtype": dtype})
        by_kind = dict(zip(kinds, st))
        pooling = by_kind["Pooling"]
        check_pooling_width(name, by_kind["Transformer"].auto_model, pooling)
        if self.pooling:  # data.embedding.pooling overrides the folder's
            pooling = Pooling(pooling.embedding_dimension, POOLING[self.pooling])
        normalize = "Normalize" in by_kind if self.normalize is None else self.normalize
        return SentenceEncoder(by_kind["Transformer"].auto_model.float(), pooling, by_kind.get("Dense"), normalize)


def _probe_rows(cfg: EmbeddingSettings, path: str, limit: int | None = None) -> tuple[list[str], list[str]]:
    """The texts and labels of a probe file (the first ``limit`` rows)."""
    rows = read_table(path)[:limit]
    if not rows:
        raise TinyDistillError(f"probe file {path} has no rows")
    texts = column(rows, cfg.probe_text_column, path)
    labels = column(rows, cfg.probe_label_column, path)
    if len(set(map(str, labels))) < 2:
        raise TinyDistillError(f"probe file {path}: column {cfg.probe_label_column!r} needs at least two labels")
    return [str(t) for t in texts], [str(v) for v in labels]


@register_kind
class SentenceEmbedding(Task):
    """Sentence vectors: MSE (or cosine distance) to the teacher's vectors; Spearman of cosine similarity on STS."""

    kind = "embedding"
    aliases = ("sentence-embedding",)
    settings_key = "embedding"
    settings_model = EmbeddingSettings
    side_metric_titles = {"probe_accuracy": "probe accuracy"}
    recognise_rank = 3
    auto_model: ClassVar = SentenceModels(None, None)  # the folder's pooling; an instance has data.embedding.pooling
    pipeline_tag = "feature-extraction"
    no_label = float("nan")
    teacher_needs_finetuning = False  # an embedding model already serves the task
    onnx_output = "sentence_embedding"  # the key sentence-transformers modules give the sentence vector
    cache_dtype = "float16"  # sentence vectors keep their cosines in 16 bits; half the disk and memory

    def __init__(self, name: str, cfg: DataConfig | None = None) -> None:
        cfg = cfg or DataConfig(task="embedding")
        super().__init__(name, None, "spearman", self.settings_of(cfg))
        self.auto_model = SentenceModels(self.settings.pooling, self.settings.normalize)
        self.reduce_to: int | None = None  # projection pca: the width the teacher's vectors are reduced to
        self.components: Tensor | None = None  # (reduce_to, D) the teacher's principal axes, fitted by prepare
        self.unit = False  # the teacher's (and so the student's) vectors are unit length
        self.max_length = cfg.max_length  # the probe's
        self._probe: tuple | None = None  # the probe files' (texts, labels), train and dev

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        return folder is not None and (Path(folder) / "modules.json").is_file()

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> SentenceEmbedding:
        if cfg.dev_fraction is not None:
            raise TinyDistillError(
                "task embedding is scored on STS pairs, which cannot be held out of unlabelled sentences: give "
                "data.dev_file (two sentences and a 0-5 score per row)"
            )
        settings = cls.settings_of(cfg)
        given = [f for f in (settings.probe_train_file, settings.probe_dev_file) if f]
        if len(given) == 1:
            raise TinyDistillError(
                "the probe needs both data.embedding.probe_train_file and data.embedding.probe_dev_file, or neither"
            )
        for f in given:
            data_path(f, "probe file", folder=False)
        return cls(name, cfg)

    @property
    def num_labels(self) -> int:
        return 0

    # --- data ---------------------------------------------------------------------------------------------------
    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        """train: every sentence (both sides of pairs, each once); dev / test: STS pairs with 0-5 scores."""
        cfg = cfg.for_split(split)
        if split == "train":
            if not cfg.train_file:
                raise TinyDistillError("no train data: set data.train_file (sentences: .txt, or a table)")
            ex = self._sentences(cfg, cfg.train_file, "train file")
            keep = kept_rows(cfg, split, len(ex), seed)  # data.max_train_examples sentences
            return ex if keep is None else subset(ex, keep)
        ex = read_texts(cfg, split, self, seed, require_labels)
        if ex.pairs is None:
            raise TinyDistillError(
                f"{ex.source}: an STS file needs two sentence columns and a score: set data.text_pair_column"
            )
        return ex

    def read_transfer(self, cfg: DataConfig, path: str | Path) -> Examples:
        return self._sentences(cfg, path, "transfer file")

    def _sentences(self, cfg: DataConfig, path: str | Path, what: str) -> Examples:
        """Every sentence of a file (both text columns of a table), each once, in order."""
        ex = read_transfer(cfg, path, self.no_label, what)
        sentences = list(dict.fromkeys([*ex.texts, *(ex.pairs or [])]))  # each once, in order
        return Examples(sentences, None, [self.no_label] * len(sentences), ex.source)

    def label_ids(self, raw: list, source: str) -> list[float]:
        return numbers(raw, source, "score", MAX_SCORE)

    def encode(
        self, ex: Examples, tokenizer, max_length: int, teacher_tokenizer=None, training: bool = False
    ) -> EncodedDataset:
        from tinydistill.data.loaders import encode_examples

        if ex.pairs is None:  # sentences
            return encode_examples(ex, tokenizer, max_length, teacher_tokenizer)
        # STS pairs: each side its own row; labels (pair key 2i or 2i+1, gold score) rejoin them in any order
        sides = Examples(
            [s for pair in zip(ex.texts, ex.pairs) for s in pair],
            None,
            [[2 * i + side, float(score)] for i, score in enumerate(ex.labels or []) for side in (0, 1)] or None,
            ex.source,
        )
        return encode_examples(sides, tokenizer, max_length, teacher_tokenizer)

    # --- the model ----------------------------------------------------------------------------------------------
    def config_kwargs(self) -> dict:
        return {}

    def trained_head(self, config) -> bool:
        return True  # any encoder with a pooling is a teacher

    def check_head(self, config, who: str) -> None:
        return None

    def student_for(self, student: nn.Module, teacher: nn.Module | None, outputs: bool = True) -> nn.Module:
        """``student`` as a sentence encoder with the teacher's pooling and normalisation (what the saved student
        serves with), and, when its width differs and the stage trains its vectors (``outputs``), a Dense layer to
        the teacher's width or, with data.embedding.projection pca, to its own width in the teacher's principal axes."""
        from sentence_transformers.sentence_transformer.modules import Dense, Pooling
        from torch import nn

        from tinydistill.tasks.sentence_encoder import SentenceEncoder

        if teacher is None:
            return student
        if teacher.pooling is None:
            raise TinyDistillError(
                "the teacher has no pooling information (no sentence-transformers modules.json): set "
                "data.embedding.pooling (mean, cls, max, last)"
            )
        if not isinstance(student, SentenceEncoder):
            student = SentenceEncoder(student, None)
        mode = teacher.pooling.pooling_mode
        if student.pooling is None or student.pooling.pooling_mode != mode:
            student.pooling = Pooling(student.config.hidden_size, mode)
        student.normalize = self.unit = bool(teacher.normalize)
        pooled, want = student.pooling.get_embedding_dimension(), teacher.output_size
        if self.settings.loss == "similarity":  # compares in-batch similarities: any width, the student's axes
            return student
        if pooled != want and self.settings.projection == "none":
            raise TinyDistillError(
                f"the student's sentence vectors have {pooled} dimensions, the teacher's {want}: set "
                "data.embedding.projection: dense (a learned layer to the teacher's width) or pca (the teacher's "
                "vectors reduced to the student's width), or pick a student of that width"
            )
        if pooled != want and self.settings.projection == "pca":
            self.reduce_to = want = pooled
        if not outputs:
            return student
        if self.reduce_to and student.dense is None:  # a fitted layer turns its own axes into the teacher's
            student.dense, student.dense_is_new = Dense(pooled, want, activation_function=nn.Identity()), True
        elif student.output_size != want and pooled == want:
            student.dense = None
        elif student.output_size != want:
            student.dense, student.dense_is_new = Dense(pooled, want, activation_function=nn.Identity()), True
        return student

    def prepare(self, student: nn.Module, teacher: nn.Module | None, loader) -> None:
        """The teacher's principal axes (data.embedding.projection pca) and a new Dense layer's least-squares start,
        from the student's pooled and the teacher's sentence vectors on the training sentences."""
        fit = getattr(student, "dense_is_new", False) and self.settings.projection_init == "least-squares"
        if teacher is None or not (fit or self.reduce_to):
            return
        import torch

        from tinydistill.tasks.sentence_encoder import fit_vectors, least_squares

        pooled, target = fit_vectors(student, teacher, loader)
        if self.reduce_to:
            from sklearn.decomposition import PCA

            if len(target) < self.reduce_to:
                raise TinyDistillError(
                    f"data.embedding.projection pca reduces the teacher's vectors to {self.reduce_to} dimensions, "
                    f"which needs at least that many training sentences ({len(target)} given): add sentences or use "
                    "projection: dense"
                )
            self.components = torch.from_numpy(PCA(self.reduce_to).fit(target.numpy()).components_).float()
            target = self.reduced(target)
        if fit:
            least_squares(student.dense.linear, pooled, target)

    def reduced(self, teacher: Tensor) -> Tensor:
        """(B, D) teacher vectors -> (B, reduce_to) in its principal axes (unit length if the student normalises)."""
        import torch.nn.functional as F

        vec = teacher.float() @ self.components.to(teacher.device).T
        return F.normalize(vec, dim=-1) if self.unit else vec

    # --- losses -------------------------------------------------------------------------------------------------
    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        """MSE between sentence vectors (B, D), or the mean cosine distance (data.embedding.loss); with
        data.embedding.projection pca the teacher's are first reduced to the student's width."""
        import torch.nn.functional as F

        if self.components is not None:
            teacher = self.reduced(teacher)
        if self.settings.loss == "similarity":
            s, t = F.normalize(student.float(), dim=-1), F.normalize(teacher.float(), dim=-1)
            return F.mse_loss(s @ s.T, t @ t.T)
        if self.settings.loss == "cosine":
            return (1 - F.cosine_similarity(student, teacher.to(student.dtype), dim=-1)).mean()
        return F.mse_loss(student, teacher.to(student.dtype))

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        raise TinyDistillError("task embedding has no labels to learn from: set hard_weight to 0")

    # --- evaluation ---------------------------------------------------------------------------------------------
    def side_metrics(self, model: nn.Module, tokenizer, batch_size: int) -> dict[str, float]:
        """probe_accuracy: a logistic regression on the model's frozen sentence vectors of
        data.embedding.probe_train_file, scored on data.embedding.probe_dev_file (none without them)."""
        from sklearn.linear_model import LogisticRegression

        cfg = self.settings
        if not cfg.probe_train_file:
            return {}
        if self._probe is None:  # read once: a report scores teacher and student
            train = _probe_rows(cfg, cfg.probe_train_file, cfg.probe_max_train)
            self._probe = train, _probe_rows(cfg, cfg.probe_dev_file)
        (texts, labels), (dev_texts, dev_labels) = self._probe
        probe = LogisticRegression(max_iter=2000).fit(self._embed(model, tokenizer, texts, batch_size), labels)
        return {"probe_accuracy": float(probe.score(self._embed(model, tokenizer, dev_texts, batch_size), dev_labels))}

    def _embed(self, model: nn.Module, tokenizer, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        data = self.encode(Examples(texts, None, None, "probe"), tokenizer, self.max_length)
        device, training, out = next(model.parameters()).device, model.training, []
        model.eval()
        for batch in self.loader(data, tokenizer, batch_size):
            with torch.no_grad():
                out.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy())
        model.train(training)
        return np.concatenate(out)

    def collect(self, logits: Tensor, batch: dict) -> tuple[list, list | None]:
        labels = batch.get(LABELS)
        return list(logits.float().cpu().numpy()), (list(labels.cpu().numpy()) if labels is not None else None)

    def metrics(self, outputs, golds) -> dict[str, float]:
        """Spearman (and Pearson) correlation of the pairs' cosine similarity with their gold scores."""
        from scipy.stats import pearsonr, spearmanr

        keys = np.asarray([g[0] for g in golds], dtype=np.int64)
        vecs = np.zeros((int(keys.max()) + 1, len(outputs[0])), dtype=np.float64)
        scores = np.zeros(len(vecs) // 2)
        for k, v, g in zip(keys, outputs, golds):
            vecs[k], scores[k // 2] = v, g[1]
        a, b = vecs[0::2], vecs[1::2]
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cos = (a * b).sum(1) / np.where(norms == 0, 1, norms)
        if len(cos) < 2 or np.std(cos) == 0 or np.std(scores) == 0:
            return {"spearman": 0.0, "pearson": 0.0}
        return {"spearman": float(spearmanr(cos, scores)[0]), "pearson": float(pearsonr(cos, scores)[0])}
