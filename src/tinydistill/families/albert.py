"""ALBERT: every layer of a group runs the same weights (one group in all released models).

Layer n of the layer map is the n-th *application* of the shared layer, so a 12-layer ALBERT maps like any
12-layer model and its n-th hidden state is the one ``output_hidden_states`` gives. Hidden state 0 is the
embedding after ``embedding_hidden_mapping_in`` (embedding_size -> hidden_size), the input of layer 1. Layers
cannot be copied one by one (they are one set of weights): build an ALBERT student by shape or from a checkpoint.
"""

from dataclasses import dataclass

from torch import nn

from tinydistill.errors import TinyDistillError
from tinydistill.families.base import COMMON_KEEP, Family, get


@dataclass(frozen=True)
class AlbertFamily(Family):
    def layer_modules(self, base: nn.Module) -> list[nn.Module]:
        groups = get(base, "encoder.albert_layer_groups")
        n, g = base.config.num_hidden_layers, base.config.num_hidden_groups
        return [groups[int(i / (n / g))] for i in range(n)]

    def check(self, config) -> None:
        if config.inner_group_num != 1:
            raise TinyDistillError(
                f"ALBERT with inner_group_num={config.inner_group_num} runs several attention "
                "blocks per layer; intermediate distillation supports inner_group_num=1"
            )


FAMILY = AlbertFamily(
    "albert",
    ("albert",),
    layers="encoder.albert_layer_groups",
    embeddings=("encoder.embedding_hidden_mapping_in",),
    attention="albert_layers.0.attention",
    keep=(*COMMON_KEEP, "embedding_size", "num_hidden_groups", "inner_group_num"),
    layer_key=None,
)
