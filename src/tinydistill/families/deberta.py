"""DeBERTa-v2 and v3 (one class): disentangled attention, content-to-content ``QKᵀ`` plus the content-to-position
and position-to-content terms, all divided by DeBERTa's own scale ``√(d · (1 + number of relative terms))``."""

import sys

import torch
from torch import nn

from tinydistill.families.base import COMMON_KEEP, Family, Sink


def deberta_score_hooks(attn: nn.Module, sink: Sink) -> list:
    """Hooks on ``attention.self``: the query and key the model used (the first projection outputs of the call, or
    the arguments it passes to its relative term: a released v3 config, ``share_att_key: true``, runs the same
    projections a second time on the relative embeddings), the relative term (its own method, wrapped on this
    instance), the mask it receives; then the scores exactly as ``DisentangledSelfAttention.forward`` adds them."""
    seen: dict = {}
    scaled_size_sqrt = sys.modules[type(attn).__module__].scaled_size_sqrt
    relative = attn.disentangled_attention_bias

    def first(name):
        def hook(_module, _inputs, output):
            seen.setdefault(name, output)  # a second call projects the relative embeddings, not the tokens

        return hook

    def inputs(_module, args, kwargs):
        seen.clear()
        seen["mask"] = args[1] if len(args) > 1 else kwargs.get("attention_mask")

    def record_relative(query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
        seen["q_heads"], seen["k_heads"] = query_layer, key_layer
        seen["rel"] = out = relative(query_layer, key_layer, relative_pos, rel_embeddings, scale_factor)
        return out

    def scores(module, _args, _output):
        heads = module.num_attention_heads
        q = seen["q_heads"] if "q_heads" in seen else module.transpose_for_scores(seen["q"], heads)
        k = seen["k_heads"] if "k_heads" in seen else module.transpose_for_scores(seen["k"], heads)
        scale_factor = 1 + ("c2p" in module.pos_att_type) + ("p2c" in module.pos_att_type)
        s = torch.bmm(q, k.transpose(-1, -2) / scaled_size_sqrt(q, scale_factor).to(dtype=q.dtype))
        if seen.get("rel") is not None:
            s = s + seen["rel"]
        s = s.view(-1, heads, s.size(-2), s.size(-1))
        sink(s, None if seen.get("mask") is None else seen["mask"].bool())
        seen.clear()

    attn.disentangled_attention_bias = record_relative

    class _Restore:
        def remove(self) -> None:
            del attn.disentangled_attention_bias  # back to the class's method

    return [
        attn.query_proj.register_forward_hook(first("q")),
        attn.key_proj.register_forward_hook(first("k")),
        attn.register_forward_pre_hook(inputs, with_kwargs=True),
        attn.register_forward_hook(scores),
        _Restore(),
    ]


FAMILY = Family(
    "deberta-v2",
    ("deberta-v2",),
    score_hooks=deberta_score_hooks,
    qkv=("query_proj", "key_proj", "value_proj"),
    keep=(
        *COMMON_KEEP,
        "relative_attention",
        "max_relative_positions",
        "position_buckets",
        "pos_att_type",
        "position_biased_input",
        "share_att_key",
        "norm_rel_ebd",
        "pooler_hidden_act",
    ),
)
