"""The model side of sentence embeddings: :class:`SentenceEncoder` (a transformers encoder, sentence-transformers'
Pooling, an optional Dense layer and normalisation, saved as a sentence-transformers folder) and the fitting of a new
Dense layer. Imported when a model is built, so that reading and checking embedding data needs no torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.utils import ModelOutput

from tinydistill.data.keys import CACHED_LOGITS
from tinydistill.data.loaders import split_inputs
from tinydistill.errors import TinyDistillError
from tinydistill.ui import track


@dataclass
class EmbeddingOutput(ModelOutput):
    logits: Tensor | None = None  # (B, D) sentence vectors: what the prediction-layer loss and the cache read


class SentenceEncoder(nn.Module):
    """A transformers encoder, then pooling, an optional Dense layer and an optional normalisation; called like a
    transformers model (``.logits`` are the sentence vectors) and saved as a sentence-transformers folder."""

    def __init__(self, backbone: nn.Module, pooling, dense: nn.Module | None = None, normalize: bool = False) -> None:
        super().__init__()
        self.backbone, self.pooling, self.dense, self.normalize = backbone, pooling, dense, normalize
        self.dense_is_new = False  # set when the task adds the Dense layer: fitted before training (task.prepare)

    @property
    def config(self):
        return self.backbone.config

    @property
    def base_model(self) -> nn.Module:
        return self.backbone.base_model

    @property
    def cache_key(self) -> str:
        """What its vectors depend on beyond weights and config (the teacher-output cache's key includes it)."""
        pooling = self.pooling.get_config_dict() if self.pooling is not None else None
        return json.dumps({"pooling": pooling, "normalize": self.normalize}, sort_keys=True)

    @property
    def output_size(self) -> int:
        """The width of the sentence vectors."""
        if self.dense is not None:
            return self.dense.linear.out_features
        return self.pooling.get_embedding_dimension() if self.pooling is not None else self.config.hidden_size

    def pooled(self, input_ids: Tensor, attention_mask: Tensor, **inputs) -> Tensor:
        """(B, H) pooled token vectors, before the Dense layer and normalisation."""
        if self.pooling is None:
            raise TinyDistillError(
                "this model has no pooling (no sentence-transformers modules.json): set data.embedding.pooling "
                "(mean, cls, max, last)"
            )
        tokens = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        return self.pooling({"token_embeddings": tokens, "attention_mask": attention_mask})["sentence_embedding"]

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **inputs) -> EmbeddingOutput:
        vec = self.pooled(input_ids, attention_mask, **inputs)
        if self.dense is not None:
            vec = self.dense({"sentence_embedding": vec})["sentence_embedding"]
        return EmbeddingOutput(logits=F.normalize(vec, dim=-1) if self.normalize else vec)

    def save_pretrained(self, folder: str | Path, **kwargs) -> None:
        """The encoder at the top of ``folder`` (plain ``AutoModel``) and the sentence-transformers modules beside it
        (the tokenizer is saved by the caller, as for every model)."""
        folder = Path(folder)
        self.backbone.save_pretrained(folder, **kwargs)
        modules = [("0", "", "Transformer")]
        (folder / "1_Pooling").mkdir(exist_ok=True)
        self.pooling.save(str(folder / "1_Pooling"))
        modules.append(("1", "1_Pooling", "Pooling"))
        if self.dense is not None:
            (folder / "2_Dense").mkdir(exist_ok=True)
            self.dense.save(str(folder / "2_Dense"))
            modules.append(("2", "2_Dense", "Dense"))
        if self.normalize:
            modules.append((str(len(modules)), f"{len(modules)}_Normalize", "Normalize"))
        (folder / "modules.json").write_text(
            json.dumps(
                [
                    {"idx": int(i), "name": i, "path": path, "type": f"sentence_transformers.models.{kind}"}
                    for i, path, kind in modules
                ],
                indent=2,
            ),
            encoding="utf-8",
        )
        length = getattr(self.config, "max_position_embeddings", 512)
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": min(length, 512), "do_lower_case": False}), encoding="utf-8"
        )


def check_pooling_width(name: str, backbone: nn.Module, pooling) -> None:
    """The Pooling module must pool vectors as wide as the encoder's."""
    width = getattr(backbone.config, "hidden_size", None)
    if width is not None and pooling.embedding_dimension != width:
        raise TinyDistillError(
            f"{name}: its Pooling module expects {pooling.embedding_dimension}-dimensional token vectors, the "
            f"encoder gives {width}; fix word_embedding_dimension in the pooling folder's config.json"
        )


@torch.no_grad()
def fit_vectors(student: SentenceEncoder, teacher: nn.Module, loader) -> tuple[Tensor, Tensor]:
    """(N, H) the student's pooled vectors and (N, D) the teacher's sentence vectors (cached in the batches, or
    computed) for every row of ``loader``, on the teacher's device."""
    device, training = next(teacher.parameters()).device, student.training
    student.to(device).eval()  # no dropout in the vectors fitted to
    pooled, target = [], []
    for batch in track(loader, "fitting the student's projection"):
        batch = {k: v.to(device) for k, v in batch.items()}
        pooled.append(student.pooled(batch["input_ids"], batch["attention_mask"]).float().cpu())
        if CACHED_LOGITS in batch:
            target.append(batch[CACHED_LOGITS].float().cpu())
        else:
            target.append(teacher(**split_inputs(batch)[1]).logits.float().cpu())
    student.train(training)
    return torch.cat(pooled), torch.cat(target)


def least_squares(linear: nn.Linear, x: Tensor, y: Tensor, ridge: float = 1e-4) -> None:
    """Set ``linear`` (H -> D, with bias) to the ridge least-squares map from x (N, H) to y (N, D)."""
    x1 = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    gram = x1.T @ x1
    gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=torch.float64)
    w = torch.linalg.solve(gram, x1.T @ y.double())  # (H + 1, D)
    with torch.no_grad():
        linear.weight.copy_(w[:-1].T.to(linear.weight.dtype))
        linear.bias.copy_(w[-1].to(linear.bias.dtype))
