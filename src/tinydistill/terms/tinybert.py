"""The prediction-layer terms (soft, hard) and TinyBERT's intermediate terms (embedding, hidden, attention)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinydistill.errors import TinyDistillError
from tinydistill.registry import TermSpec, register_term
from tinydistill.terms.base import CapturePlan, Setup, StepContext

if TYPE_CHECKING:
    from torch import Tensor


def hidden_pair(c: StepContext, student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(student, teacher, mask) to compare: as they are, the teacher's at the student's positions, or both
    mean-pooled per word (see tinydistill.data.alignment)."""
    from tinydistill import losses as L

    a = c.alignment
    if not a:
        return student, teacher, c.attention_mask
    if "align_positions" in a:
        pos = a["align_positions"]
        return student, L.gather_positions(teacher, pos), c.attention_mask * (pos >= 0)
    n = int(max(a["student_words"].max(), a["teacher_words"].max())) + 1
    s, s_count = L.pool_words(student, a["student_words"], n)
    t, t_count = L.pool_words(teacher, a["teacher_words"], n)
    return s, t, ((s_count > 0) & (t_count > 0)).long()


def score_pair(c: StepContext, s_layer: int, t_layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """(student scores, teacher scores, mask, allowed) to compare; teacher's at the student's positions."""
    from tinydistill import losses as L

    s_allowed, t_allowed = c.student.allowed.get(s_layer), c.teacher.allowed.get(t_layer)
    t_scores = c.teacher.score(t_layer)
    mask = c.attention_mask
    if c.alignment:
        pos = c.alignment["align_positions"]
        t_scores, mask = L.gather_scores(t_scores, pos), mask * (pos >= 0)
        t_allowed = None if t_allowed is None else L.gather_scores(t_allowed, pos)
    return c.student.score(s_layer), t_scores, mask, both_allow(s_allowed, t_allowed)


def both_allow(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """Entries neither model's own mask hides (None: both attend everywhere but padding)."""
    return a if b is None else b if a is None else a & b


# --- prediction layer: what the task compares (and over which positions) -------------------------------------------


def _soft(cfg, setup: Setup):
    task = setup.task
    return lambda c: task.soft_loss(cfg, c.student_logits, c.teacher_logits, c.labels, c.attention_mask)


def _hard(_cfg, setup: Setup):
    task = setup.task
    return lambda c: task.hard_loss(c.student_logits, c.labels)


register_term(TermSpec("soft", _soft, teacher="outputs", reads_logits=True))
register_term(TermSpec("hard", _hard, teacher="none", reads_logits=True))


# --- TinyBERT's intermediate layers ---------------------------------------------------------------------------------


def _embedding(cfg, _setup: Setup):
    from tinydistill import losses as L

    return lambda c: L.hidden_mse(*hidden_pair(c, c.projected["embeddings"], c.teacher.hidden[0]), cfg.mode)


def _hidden(cfg, setup: Setup):
    import torch

    from tinydistill import losses as L

    def hidden(c: StepContext) -> Tensor:  # summed over mapped layers, as TinyBERT does
        return torch.stack(
            [
                L.hidden_mse(*hidden_pair(c, c.projected[f"layer_{s}"], c.teacher.hidden[t]), cfg.mode)
                for s, t in setup.pairs
            ]
        ).sum()

    return hidden


def _attention(cfg, setup: Setup):
    import torch

    from tinydistill import losses as L

    def attention(c: StepContext) -> Tensor:
        pairs = (score_pair(c, s, t) for s, t in setup.pairs)
        return torch.stack([L.attention_mse(*p[:3], cfg.mode, p[3]) for p in pairs]).sum()

    return attention


def _check_heads(_cfg, student_config, teacher_config) -> None:
    if student_config.num_attention_heads != teacher_config.num_attention_heads:
        raise TinyDistillError(
            f"attention distillation needs equal head counts (student {student_config.num_attention_heads}, "
            f"teacher {teacher_config.num_attention_heads}); set attention_weight: 0 or give the student "
            f"{teacher_config.num_attention_heads} heads"
        )


def _masked(cfg) -> bool:
    """The reference's arithmetic (mode tinybert) also reads the teacher at padding: only masked mode replays."""
    return cfg.mode == "masked"


def _mapped(what: str):
    """The capture plan of a term that reads ``what`` (hidden, attention) of every mapped layer pair."""

    def needs(_cfg, setup: Setup) -> CapturePlan:
        pairs = setup.pairs
        return CapturePlan(**{f"student_{what}": [s for s, _ in pairs], f"teacher_{what}": [t for _, t in pairs]})

    return needs


register_term(
    TermSpec(
        "embedding",
        _embedding,
        needs=lambda _cfg, _setup: CapturePlan(student_hidden=[0], teacher_hidden=[0]),
        projections=lambda _cfg, _setup: ["embeddings"],
        cacheable=_masked,
    )
)
register_term(
    TermSpec(
        "hidden",
        _hidden,
        needs=_mapped("hidden"),
        projections=lambda _cfg, setup: [f"layer_{s}" for s, _ in setup.pairs],
        cacheable=_masked,
    )
)
register_term(
    TermSpec(
        "attention",
        _attention,
        needs=_mapped("attention"),
        check=_check_heads,
        alignments=("positions",),  # pre-softmax scores have no word-level counterpart
        cacheable=_masked,
    )
)
