"""Record hidden states and pre-softmax attention scores from Hugging Face encoders with hooks.

Where the parts are and how scores are formed is each family's business (:mod:`tinydistill.families`). Scores
are computed *during the model's own forward pass*, from the query and key it actually used (after rotary
embeddings, with relative-position terms), scaled as it scales them, before any mask, so they are exact on any
attention backend and in the model's own precision (a bf16 student step never makes the fp32 teacher's targets
bf16). The model's own mask is recorded beside them (``allowed``) for losses to leave out what it hides.

Families that call transformers' ``ALL_ATTENTION_FUNCTIONS`` are recorded by one registered attention
function (``tinydistill:<implementation>``) that records and then delegates to the implementation the model
was using, masks included; MPNet and DeBERTa-v2 have their own hooks. Only mapped layers are recorded.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface

from tinydistill.errors import TinyDistillError
from tinydistill.families import family_of, require_family
from tinydistill.families.base import Sink


class Recorder:
    """What the hooks saw during one forward pass.

    hidden[0]: the embedding output the first layer reads (B, L, D); hidden[n]: output of layer n (1-based).
    scores[n]: pre-softmax attention scores of layer n, (B, H, L, L), no mask added.
    allowed[n]: the model's own mask for layer n (True: the key is attended), broadcastable to scores, or None.
    qkv[n]: layer n's query, key and value projections' outputs, each (B, L, D) (before any rotary embedding).
    """

    def __init__(self) -> None:
        self.hidden: dict[int, Tensor] = {}
        self.scores: dict[int, Tensor] = {}
        self.allowed: dict[int, Tensor | None] = {}
        self.qkv: dict[int, list[Tensor]] = {}

    def score(self, layer: int) -> Tensor:
        return self.scores[layer]


_SINKS: dict[int, Sink] = {}  # id(attention module) -> where its scores go, while a capture is open


def _allowed(mask: Tensor | None) -> Tensor | None:
    if mask is None:
        return None
    return mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min / 2


def _recording(implementation: str):
    def attention(
        module: nn.Module,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attention_mask: Tensor | None,
        scaling: float | None = None,
        **kwargs: Any,
    ):
        sink = _SINKS.get(id(module))
        if sink is not None:
            scale = scaling if scaling is not None else query.size(-1) ** -0.5
            sink(torch.matmul(query, key.transpose(-1, -2)) * scale, _allowed(attention_mask))
        if implementation == "eager":  # each modeling file has its own eager function
            fn = sys.modules[type(module).__module__].eager_attention_forward
        else:
            fn = ALL_ATTENTION_FUNCTIONS[implementation]
        return fn(module, query, key, value, attention_mask, scaling=scaling, **kwargs)

    return attention


def _recording_name(config) -> str:
    """Register (once) the recording twin of the model's attention implementation; flash kernels never form the
    scores, so a model using one is recorded through SDPA (the same attention)."""
    current = config._attn_implementation or "eager"
    base = current if current in ("eager", "sdpa") else "sdpa"
    name = f"tinydistill:{base}"
    if name not in ALL_ATTENTION_FUNCTIONS:
        AttentionInterface.register(name, _recording(base))
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])
    return name


@contextmanager
def _attention_implementation(model: nn.Module, name: str) -> Iterator[None]:
    before = model.config._attn_implementation
    model.config._attn_implementation = name
    try:
        yield
    finally:
        model.config._attn_implementation = before


@contextmanager
def _hidden_states_from_outputs(model: nn.Module, rec: Recorder, wanted: list[int]) -> Iterator[None]:
    """For a family without an adapter: hidden states from ``output_hidden_states``."""
    before = model.config.output_hidden_states
    model.config.output_hidden_states = True

    def hook(_module, _inputs, output):
        states = getattr(output, "hidden_states", None)
        if states is None:
            raise TinyDistillError(
                f"{type(model).__name__} returns no hidden_states; hidden-state distillation needs a family adapter"
            )
        rec.hidden.update({i: states[i] for i in wanted})

    handle = model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
        model.config.output_hidden_states = before


def _qkv_hooks(family, attn: nn.Module, serves: Callable[[], int], wanted: set[int], rec: Recorder) -> list[Any]:
    """Record each call's query, key and value projections of the tokens: the first output of each projection per
    call of the attention module (DeBERTa-v3 calls the same projections again on its relative embeddings).
    ``serves()`` is the layer number of the call that starts."""
    call: dict[str, Any] = {"idx": None, "taken": set()}

    def start(_module, _args):
        call["idx"], call["taken"] = serves(), set()

    parts = family.qkv_modules(attn)
    width = 3 // len(parts)  # a fused projection holds all three

    def hook_for(j: int):
        def hook(_m, _inputs, out):
            if call["idx"] in wanted and j not in call["taken"]:
                call["taken"].add(j)
                rec.qkv.setdefault(call["idx"], [None, None, None])[j : j + width] = out.chunk(width, dim=-1)

        return hook

    return [attn.register_forward_pre_hook(start), *(p.register_forward_hook(hook_for(j)) for j, p in enumerate(parts))]


class _Hooks:
    """The hooks of one capture: each records what a layer computed, numbered by which layer a call serves (a module
    shared by several layers, as ALBERT's, serves them in call order within a forward)."""

    def __init__(self, rec: Recorder, stack: ExitStack, family) -> None:
        self.rec, self.stack, self.family = rec, stack, family
        self.calls: dict[Hashable, int] = {}  # per key: how often it ran in this forward

    def position(self, key: Hashable, serves: list[int]) -> int:
        k = self.calls.get(key, 0)
        self.calls[key] = k + 1
        return serves[k % len(serves)]

    def on(self, handle) -> None:
        self.stack.callback(handle.remove)

    def hidden(self, module: nn.Module, serves: list[int], wanted: set[int]) -> None:
        def hook(m, _inputs, out):
            idx = self.position(id(m), serves)
            if idx in wanted:
                self.rec.hidden[idx] = out[0] if isinstance(out, (tuple, list)) else out

        self.on(module.register_forward_hook(hook))

    def scores(self, attn: nn.Module, serves: list[int], wanted: set[int]) -> None:
        def sink(scores: Tensor, allowed: Tensor | None) -> None:
            idx = self.position(id(attn), serves)
            if idx in wanted:
                self.rec.scores[idx], self.rec.allowed[idx] = scores, allowed

        if self.family.score_hooks is not None:
            for h in self.family.score_hooks(attn, sink):
                self.on(h)
        else:
            _SINKS[id(attn)] = sink
            self.stack.callback(_SINKS.pop, id(attn), None)

    def qkv(self, attn: nn.Module, serves: list[int], wanted: set[int]) -> None:
        layer_of_call = functools.partial(self.position, ("qkv", id(attn)), serves)
        for h in _qkv_hooks(self.family, attn, layer_of_call, wanted, self.rec):
            self.on(h)


@contextmanager
def capture(
    model: nn.Module, hidden_layers: list[int], attention_layers: list[int], qkv_layers: list[int] = ()
) -> Iterator[Recorder]:
    """Hook ``model`` for the duration of the block; yields a :class:`Recorder` filled by each forward.

    hidden_layers: 0 (embeddings) and/or 1..N; attention_layers and qkv_layers: 1..N.
    """
    n = int(model.config.num_hidden_layers)
    for idx in [*hidden_layers, *attention_layers, *qkv_layers]:
        if not 0 <= idx <= n:
            raise TinyDistillError(f"layer {idx} does not exist: the model has layers 1..{n} (0 = embeddings)")
    if 0 in [*attention_layers, *qkv_layers]:
        raise TinyDistillError("the embedding layer (0) has no attention")
    rec = Recorder()
    needs = attention_layers or qkv_layers
    family = require_family(model.config, "attention distillation") if needs else family_of(model.config)
    with ExitStack() as stack:
        if family is None:
            stack.enter_context(_hidden_states_from_outputs(model, rec, sorted(set(hidden_layers))))
            yield rec
            return
        hooks, base = _Hooks(rec, stack, family), model.base_model
        hooks.on(model.register_forward_pre_hook(lambda *_: hooks.calls.clear()))
        if 0 in hidden_layers:
            hooks.on(
                family.embedding_module(base).register_forward_hook(
                    lambda _m, _i, out: rec.hidden.__setitem__(0, out[0] if isinstance(out, (tuple, list)) else out)
                )
            )
        layers = family.layer_modules(base)
        wanted_hidden, wanted_scores, wanted_qkv = set(hidden_layers) - {0}, set(attention_layers), set(qkv_layers)
        for module in {id(m): m for m in layers}.values():
            serves = [i + 1 for i, m in enumerate(layers) if m is module]
            if wanted_hidden & set(serves):
                hooks.hidden(module, serves, wanted_hidden)
            if wanted_scores & set(serves):
                hooks.scores(family.attention_module(module), serves, wanted_scores)
            if wanted_qkv & set(serves):
                hooks.qkv(family.attention_module(module), serves, wanted_qkv)
        if wanted_scores and family.score_hooks is None:
            stack.enter_context(_attention_implementation(model, _recording_name(model.config)))
        yield rec
