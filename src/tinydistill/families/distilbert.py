"""DistilBERT: ``transformer.layer``, attention in ``attention`` (q_lin / k_lin), its own config names."""

from tinydistill.families.base import Family

FAMILY = Family(
    "distilbert",
    ("distilbert",),
    layers="transformer.layer",
    attention="attention",
    qkv=("q_lin", "k_lin", "v_lin"),
    keep=("vocab_size", "max_position_embeddings", "pad_token_id", "sinusoidal_pos_embds", "activation"),
    shape=("n_layers", "dim", "n_heads", "hidden_dim"),
)
