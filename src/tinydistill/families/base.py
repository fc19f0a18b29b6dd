"""What tinydistill needs to know about one model family, in one record: where the embeddings and the encoder
layers are, how the pre-softmax attention scores are recorded, which config keys a student of the family keeps,
and how copied layers are numbered in parameter names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

#: a scores sink: called once per attention call with (scores (B, H, L, L) before any mask, allowed or None);
#: ``allowed`` broadcasts to the scores and is False where the model's own mask hides a key (padding, or a local
#: layer's window)
Sink = Callable[[Tensor, Tensor | None], None]
#: a family's own score recorder: hooks one attention module so each forward feeds the sink; returns the handles
ScoreHooks = Callable[[nn.Module, Sink], list[Any]]

#: config keys every student keeps from its teacher (vocabulary, positions, normalisation, activation)
COMMON_KEEP = (
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "pad_token_id",
    "layer_norm_eps",
    "hidden_act",
    "bos_token_id",
    "eos_token_id",
)


def get(module: nn.Module, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def has(module: nn.Module, dotted: str) -> bool:
    try:
        get(module, dotted)
        return True
    except AttributeError:
        return False


@dataclass(frozen=True)
class Family:
    """One model family. Paths are relative to ``model.base_model``."""

    name: str
    model_types: tuple[str, ...]
    layers: str = "encoder.layer"
    #: the module whose output is hidden state 0: the first path that exists (an embedding projection first)
    embeddings: tuple[str, ...] = ("embeddings",)
    #: path, inside a layer, to the module that calls transformers' ALL_ATTENTION_FUNCTIONS (scores recorded there)
    attention: str | None = "attention.self"
    #: or, for a family that computes attention in its own code: the path to that module and its own hooks
    score_hooks: ScoreHooks | None = None
    #: paths, inside the attention module, to the query, key and value projections (one path: fused, split in 3)
    qkv: tuple[str, ...] = ("query", "key", "value")
    keep: tuple[str, ...] = COMMON_KEEP
    #: config names of (layers, hidden, heads, ffn)
    shape: tuple[str, str, str, str] = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
    #: how parameter names number the layers (group 2 is the index); None: layers cannot be copied one by one
    layer_key: str | None = r"(^|\.)layer\.(\d+)\."

    def layer_modules(self, base: nn.Module) -> list[nn.Module]:
        """The module that computes each layer, in order (the same module repeated where layers share weights)."""
        return list(get(base, self.layers))

    def embedding_module(self, base: nn.Module) -> nn.Module:
        return get(base, next(p for p in self.embeddings if has(base, p)))

    def attention_module(self, layer: nn.Module) -> nn.Module:
        return get(layer, self.attention)

    def qkv_modules(self, attention: nn.Module) -> list[nn.Module]:
        return [get(attention, p) for p in self.qkv]

    def check(self, config) -> None:
        """Refuse a configuration this adapter cannot read (raise TinyDistillError); most accept every one."""
