"""ModernBERT: ``layers``, fused ``Wqkv`` with rotary embeddings (the recorded query and key are after them),
and local layers whose sliding-window mask is recorded with the scores (losses leave out what it hides)."""

from tinydistill.families.base import Family

FAMILY = Family(
    "modernbert",
    ("modernbert",),
    layers="layers",
    attention="attn",
    qkv=("Wqkv",),
    keep=(
        "vocab_size",
        "max_position_embeddings",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "cls_token_id",
        "sep_token_id",
        "norm_eps",
        "hidden_activation",
        "global_attn_every_n_layers",
        "local_attention",
        "global_rope_theta",
        "local_rope_theta",
        "rope_parameters",
    ),
    layer_key=r"(^|\.)layers\.(\d+)\.",
)
