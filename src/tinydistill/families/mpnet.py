"""MPNet: attention computed in its own code, ``QKᵀ/√d`` plus the relative position bias the encoder passes in."""

import math

import torch
from torch import nn

from tinydistill.families.base import COMMON_KEEP, Family, Sink


def _allowed(mask):
    return None if mask is None else mask > torch.finfo(mask.dtype).min / 2


def mpnet_score_hooks(attn: nn.Module, sink: Sink) -> list:
    """Hooks on ``attention.attn``: q and k outputs, the position bias and mask it receives, then the scores."""
    seen: dict = {}

    def keep(name):
        def hook(_module, _inputs, output):
            seen[name] = output

        return hook

    def inputs(_module, args, kwargs):
        names = ("hidden_states", "attention_mask", "position_bias")
        seen.update({n: args[i] if len(args) > i else kwargs.get(n) for i, n in enumerate(names)})

    def scores(module, _args, _output):
        b, length, _ = seen["q"].shape
        d = module.attention_head_size
        q = seen["q"].view(b, length, -1, d).transpose(1, 2)
        k = seen["k"].view(b, length, -1, d).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
        if seen.get("position_bias") is not None:
            s = s + seen["position_bias"]
        sink(s, _allowed(seen.get("attention_mask")))
        seen.clear()

    return [
        attn.q.register_forward_hook(keep("q")),
        attn.k.register_forward_hook(keep("k")),
        attn.register_forward_pre_hook(inputs, with_kwargs=True),
        attn.register_forward_hook(scores),
    ]


FAMILY = Family(
    "mpnet",
    ("mpnet",),
    attention="attention.attn",
    score_hooks=mpnet_score_hooks,
    qkv=("q", "k", "v"),
    keep=(*COMMON_KEEP, "relative_attention_num_buckets"),
)
