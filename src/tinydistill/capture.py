"""Record hidden states and pre-softmax attention scores from Hugging Face encoders with forward hooks.

Only the layers a layer map uses are hooked. Attention scores are rebuilt from the outputs of each
hooked layer's query and key projections, ``Q K^T / sqrt(d_head)`` (plus MPNet's relative position
bias), so they are the exact pre-softmax logits the model used, before any mask, on any attention
backend (SDPA included: no eager attention and no attention probabilities are needed). Gradients
flow through them for the student. The recorder only records; losses decide what to do with it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from tinydistill.errors import TinyDistillError


@dataclass(frozen=True)
class ArchSpec:
    """Where an architecture keeps its parts, relative to ``model.base_model``."""

    layers: str = "encoder.layer"
    embeddings: str = "embeddings"
    query: str = "attention.self.query"
    key: str = "attention.self.key"
    bias_module: str | None = None  # module whose forward receives a position bias to add to scores
    bias_arg: int | None = None  # its positional index (args) / name in kwargs: "position_bias"


_BERT_LIKE = ArchSpec()
ARCHITECTURES: dict[str, ArchSpec] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "camembert": _BERT_LIKE,
    "electra": _BERT_LIKE,
    "ernie": _BERT_LIKE,
    "mpnet": ArchSpec(query="attention.attn.q", key="attention.attn.k",
                      bias_module="attention.attn", bias_arg=2),
}


def arch_spec(model: nn.Module) -> ArchSpec:
    model_type = getattr(model.config, "model_type", "?")
    if model_type not in ARCHITECTURES:
        raise TinyDistillError(f"intermediate-layer distillation does not know the '{model_type}' architecture; "
                               f"supported: {', '.join(sorted(ARCHITECTURES))} (prediction-layer distillation works for any)")
    return ARCHITECTURES[model_type]


def _get(module: nn.Module, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _first(output: Any) -> Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer layers of any supported encoder (with or without a task head)."""
    return _get(model.base_model, arch_spec(model).layers)


def num_layers(model: nn.Module) -> int:
    return int(model.config.num_hidden_layers)


class Recorder:
    """Holds what the hooks saw during one forward pass.

    hidden[0]: embedding output (B, L, D); hidden[n]: output of layer n (1-based), (B, L, D).
    scores[n]: pre-softmax attention scores of layer n, (B, H, L, L), no mask added.
    """

    def __init__(self) -> None:
        self.hidden: dict[int, Tensor] = {}
        self._q: dict[int, Tensor] = {}
        self._k: dict[int, Tensor] = {}
        self._bias: dict[int, Tensor] = {}
        self.num_heads = 1

    def clear(self) -> None:
        self.hidden.clear(), self._q.clear(), self._k.clear(), self._bias.clear()

    def score(self, layer: int) -> Tensor:
        q, k = self._q[layer], self._k[layer]
        b, length, width = q.shape
        d = width // self.num_heads
        q = q.view(b, length, self.num_heads, d).transpose(1, 2)
        k = k.view(b, k.shape[1], self.num_heads, d).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / (d ** 0.5)
        if layer in self._bias:
            scores = scores + self._bias[layer]
        return scores

    @property
    def score_layers(self) -> list[int]:
        return sorted(self._q)


@contextmanager
def capture(model: nn.Module, hidden_layers: list[int], attention_layers: list[int]) -> Iterator[Recorder]:
    """Hook ``model`` for the duration of the block; yields a :class:`Recorder` filled by each forward.

    hidden_layers: 0 (embeddings) and/or 1..N; attention_layers: 1..N.
    """
    spec = arch_spec(model)
    base = model.base_model
    layers = _get(base, spec.layers)
    n = len(layers)
    for idx in [*hidden_layers, *attention_layers]:
        if not 0 <= idx <= n:
            raise TinyDistillError(f"layer {idx} does not exist: the model has layers 1..{n} (0 = embeddings)")
    if 0 in attention_layers:
        raise TinyDistillError("the embedding layer (0) has no attention scores")
    rec = Recorder()
    rec.num_heads = int(model.config.num_attention_heads)
    handles = []

    def store(table: dict[int, Tensor], idx: int):
        def hook(_module, _inputs, output):
            table[idx] = _first(output)
        return hook

    def store_bias(idx: int):
        def hook(_module, args, kwargs):
            bias = kwargs.get("position_bias")
            if bias is None and spec.bias_arg is not None and len(args) > spec.bias_arg:
                bias = args[spec.bias_arg]
            if bias is not None:
                rec._bias[idx] = bias
        return hook

    try:
        for idx in sorted(set(hidden_layers)):
            module = _get(base, spec.embeddings) if idx == 0 else layers[idx - 1]
            handles.append(module.register_forward_hook(store(rec.hidden, idx)))
        for idx in sorted(set(attention_layers)):
            layer = layers[idx - 1]
            handles.append(_get(layer, spec.query).register_forward_hook(store(rec._q, idx)))
            handles.append(_get(layer, spec.key).register_forward_hook(store(rec._k, idx)))
            if spec.bias_module:
                handles.append(_get(layer, spec.bias_module).register_forward_pre_hook(store_bias(idx), with_kwargs=True))
        yield rec
    finally:
        for h in handles:
            h.remove()
