"""ELECTRA: BERT's layout, plus ``embeddings_project`` (embedding_size -> hidden_size) when the two differ.
Hidden state 0 is the projected embedding, the one the first layer reads (as ``output_hidden_states`` gives it)."""

from tinydistill.families.base import COMMON_KEEP, Family

FAMILY = Family(
    "electra", ("electra",), embeddings=("embeddings_project", "embeddings"), keep=(*COMMON_KEEP, "embedding_size")
)
