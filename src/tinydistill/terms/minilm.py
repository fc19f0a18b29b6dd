"""MiniLM's self-attention distillation, one teacher layer into one student layer, as KL divergences.

minilmv2 (Wang et al., 2021, "MiniLMv2: Multi-Head Self-Attention Relation Distillation"): for each of the
queries, keys and values, split the layer's (B, L, D) vectors into ``relation_heads`` slices, form
softmax(x_r x_rᵀ / √(D/R)) per slice and take KL(teacher ‖ student); the three are summed. The relation heads are
independent of either model's attention heads, so widths and head counts may differ and no projection is needed.
The paper distils the last layer of a base-size teacher (an upper-middle one, e.g. 21 of 24, of a large one) into
the student's last layer with 48 relation heads (64 for large teachers).

minilmv1 (Wang et al., 2020): the attention distributions (softmax of each head's scores, the model's own masks
honoured) and the value relation per attention head, both KL; equal head counts required.

Q, K, V are the outputs of the attention's projections (before any rotary embedding). The authors released no
code for either; the functions are checked against a hand-written reference in tests/test_minilm.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinydistill.errors import TinyDistillError
from tinydistill.registry import Option, TermSpec, option, register_term
from tinydistill.terms.base import CapturePlan, Setup, StepContext
from tinydistill.terms.tinybert import score_pair

if TYPE_CHECKING:
    from torch import Tensor

KINDS = ("minilmv2", "minilmv1")


def _layer(value: int, count: int, key: str, who: str) -> int:
    """1-based layer from a config value (negative counts from the end: -1 is the last)."""
    layer = count + 1 + value if value < 0 else value
    if not 1 <= layer <= count:
        raise TinyDistillError(
            f"{key} {value} is out of range: the {who} has layers 1..{count} (-1 = the last, -2 the one before)"
        )
    return layer


def _layers(cfg, setup: Setup) -> tuple[int, int]:
    """(student layer, teacher layer) the term compares."""
    s = _layer(option(cfg, SPEC, "relation_student_layer"), setup.student_layers, "relation_student_layer", "student")
    t = _layer(option(cfg, SPEC, "relation_teacher_layer"), setup.teacher_layers, "relation_teacher_layer", "teacher")
    return s, t


def _aligned(c: StepContext, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """The teacher's (B, Lt, D) vectors at the student's positions, and the mask of positions both have."""
    from tinydistill import losses as L

    if not c.alignment:
        return teacher, c.attention_mask
    pos = c.alignment["align_positions"]
    return L.gather_positions(teacher, pos), c.attention_mask * (pos >= 0)


def _build(cfg, setup: Setup):
    from tinydistill import losses as L

    s_layer, t_layer = _layers(cfg, setup)
    kind, heads = option(cfg, SPEC, "relation_kind"), option(cfg, SPEC, "relation_heads")

    def v2(c: StepContext) -> Tensor:
        total = 0.0
        for s, t in zip(c.student.qkv[s_layer], c.teacher.qkv[t_layer], strict=True):
            t, mask = _aligned(c, t)
            total = total + L.relation_kl(s, t, mask, heads)
        return total

    def v1(c: StepContext) -> Tensor:
        s_scores, t_scores, mask, allowed = score_pair(c, s_layer, t_layer)
        s_v = c.student.qkv[s_layer][2]
        t_v, _ = _aligned(c, c.teacher.qkv[t_layer][2])
        return L.attention_kl(s_scores, t_scores, mask, allowed) + L.relation_kl(s_v, t_v, mask, s_scores.shape[1])

    return v2 if kind == "minilmv2" else v1


def _needs(cfg, setup: Setup) -> CapturePlan:
    s, t = _layers(cfg, setup)
    attention = option(cfg, SPEC, "relation_kind") == "minilmv1"
    return CapturePlan(
        student_qkv=[s], teacher_qkv=[t], student_attention=[s] * attention, teacher_attention=[t] * attention
    )


def _width(config) -> int:
    from tinydistill.families import family_of

    family = family_of(config)
    return int(getattr(config, family.shape[1] if family else "hidden_size"))


def _check(cfg, student_config, teacher_config) -> None:
    if option(cfg, SPEC, "relation_kind") == "minilmv1":
        s_heads, t_heads = student_config.num_attention_heads, teacher_config.num_attention_heads
        if s_heads != t_heads:
            raise TinyDistillError(
                f"relation_kind minilmv1 compares attention heads one to one: the student has {s_heads}, the teacher "
                f"{t_heads}; use relation_kind: minilmv2 (any head counts) or a student with {t_heads} heads"
            )
        return
    heads = option(cfg, SPEC, "relation_heads")
    for who, config in (("student", student_config), ("teacher", teacher_config)):
        width = _width(config)
        if width % heads:
            raise TinyDistillError(
                f"relation_heads {heads} does not divide the {who}'s width {width}: pick a divisor of both widths "
                f"({_width(student_config)} and {_width(teacher_config)})"
            )


SPEC = register_term(
    TermSpec(
        "relation",
        _build,
        needs=_needs,
        check=_check,
        alignments=("positions",),
        cacheable=lambda _cfg: True,  # every KL masks padded queries and keys
        options={
            "relation_kind": Option(
                "minilmv2", "minilmv2 (Q-Q, K-K, V-V relations) or minilmv1", ("minilmv2", "minilmv1")
            ),
            "relation_heads": Option(48, "relation heads (minilmv2): must divide both models' widths", minimum=1),
            "relation_teacher_layer": Option(-1, "teacher layer, 1-based; -1 the last (the paper's for base teachers)"),
            "relation_student_layer": Option(-1, "student layer, 1-based; -1 the last"),
        },
    )
)
