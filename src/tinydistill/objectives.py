"""Turn a loss config into the list of weighted loss terms a stage optimises.

The training loop only sees ``LossTerm``s: a name, a weight and a function of the step's
:class:`StepContext`. Losses stay pure (tensors in, scalar out); capture only records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinydistill import losses as L
from tinydistill.capture import Recorder
from tinydistill.config import LossConfig
from tinydistill.errors import TinyDistillError
from tinydistill.mapping import LayerPairs
from tinydistill.tasks import Task


@dataclass
class StepContext:
    """Everything one step's loss terms may read."""

    attention_mask: Tensor  # (B, L)
    labels: Tensor | None  # (B,), or (B, L) per token (-100: not counted)
    student_logits: Tensor | None  # (B, C), or (B, L, C) per token
    teacher_logits: Tensor | None  # as student_logits
    student: Recorder | None
    teacher: Recorder | None
    projected: dict[str, Tensor]  # student hidden states through their projections, keyed like the projections
    alignment: dict[str, Tensor] | None = None  # teacher of another tokenizer: align_positions, or *_words


def _hidden_pair(c: StepContext, student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(student, teacher, mask) to compare: as they are, the teacher's at the student's positions, or both
    mean-pooled per word (see tinydistill.data.alignment)."""
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


def _score_pair(c: StepContext, s_layer: int, t_layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """(student scores, teacher scores, mask, allowed) to compare; teacher's at the student's positions."""
    s_allowed, t_allowed = c.student.allowed.get(s_layer), c.teacher.allowed.get(t_layer)
    t_scores = c.teacher.score(t_layer)
    mask = c.attention_mask
    if c.alignment:
        pos = c.alignment["align_positions"]
        t_scores, mask = L.gather_scores(t_scores, pos), mask * (pos >= 0)
        t_allowed = None if t_allowed is None else L.gather_scores(t_allowed, pos)
    return c.student.score(s_layer), t_scores, mask, _both_allow(s_allowed, t_allowed)


@dataclass(frozen=True)
class LossTerm:
    name: str
    weight: float
    fn: Callable[[StepContext], Tensor]
    reads_logits: bool = False  # the term trains the task head (so every parameter is used in the step)


@dataclass(frozen=True)
class CapturePlan:
    """Which layers each model must record: hidden (0 = embeddings) and attention layers, 1-based."""

    student_hidden: list[int]
    student_attention: list[int]
    teacher_hidden: list[int]
    teacher_attention: list[int]


def capture_plan(cfg: LossConfig, pairs: LayerPairs) -> CapturePlan:
    hidden_s = ([0] if cfg.embedding_weight else []) + ([s for s, _ in pairs] if cfg.hidden_weight else [])
    hidden_t = ([0] if cfg.embedding_weight else []) + ([t for _, t in pairs] if cfg.hidden_weight else [])
    att_s = [s for s, _ in pairs] if cfg.attention_weight else []
    att_t = [t for _, t in pairs] if cfg.attention_weight else []
    return CapturePlan(hidden_s, att_s, hidden_t, att_t)


def projection_layer(name: str) -> int:
    """The hidden layer a projection reads: 'embeddings' -> 0, 'layer_3' -> 3."""
    return 0 if name == "embeddings" else int(name.removeprefix("layer_"))


def make_projections(cfg: LossConfig, pairs: LayerPairs, student_width: int, teacher_width: int) -> nn.ModuleDict:
    """One learnable Linear(student_width -> teacher_width) per distilled hidden layer, and one for the
    embeddings. They train with the student, live in the training state, and are never exported."""
    names = (["embeddings"] if cfg.embedding_weight else []) + (
        [f"layer_{s}" for s, _ in pairs] if cfg.hidden_weight else []
    )
    return nn.ModuleDict({n: nn.Linear(student_width, teacher_width) for n in names})


def build_terms(cfg: LossConfig, pairs: LayerPairs, task: Task | None, has_teacher: bool) -> list[LossTerm]:
    """The weighted terms of a stage, in a fixed order: soft, hard, embedding, hidden, attention. The task says
    what the prediction terms compare (and over which positions); ``task`` None: intermediate terms only."""
    terms: list[LossTerm] = []
    if cfg.prediction and task is None:
        raise TinyDistillError("soft_weight and hard_weight need a task (labels or task logits)")
    if cfg.soft_weight:
        if not has_teacher:
            raise TinyDistillError("soft_weight needs a teacher")
        soft = lambda c: task.soft_loss(cfg, c.student_logits, c.teacher_logits, c.labels, c.attention_mask)  # noqa: E731
        terms.append(LossTerm("soft", cfg.soft_weight, soft, reads_logits=True))
    if cfg.hard_weight:
        terms.append(
            LossTerm("hard", cfg.hard_weight, lambda c: task.hard_loss(c.student_logits, c.labels), reads_logits=True)
        )
    if cfg.embedding_weight:
        terms.append(
            LossTerm(
                "embedding",
                cfg.embedding_weight,
                lambda c: L.hidden_mse(*_hidden_pair(c, c.projected["embeddings"], c.teacher.hidden[0]), cfg.mode),
            )
        )
    if cfg.hidden_weight:

        def hidden(c: StepContext) -> Tensor:  # summed over mapped layers, as TinyBERT does
            return torch.stack(
                [
                    L.hidden_mse(*_hidden_pair(c, c.projected[f"layer_{s}"], c.teacher.hidden[t]), cfg.mode)
                    for s, t in pairs
                ]
            ).sum()

        terms.append(LossTerm("hidden", cfg.hidden_weight, hidden))
    if cfg.attention_weight:

        def attention(c: StepContext) -> Tensor:
            return torch.stack(
                [L.attention_mse(*pair[:3], cfg.mode, pair[3]) for pair in (_score_pair(c, s, t) for s, t in pairs)]
            ).sum()

        terms.append(LossTerm("attention", cfg.attention_weight, attention))
    if not terms:
        raise TinyDistillError("every loss weight is 0: nothing to train")
    return terms


def _both_allow(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """Entries neither model's own mask hides (None: both attend everywhere but padding)."""
    return a if b is None else b if a is None else a & b


def check_compatible(cfg: LossConfig, student_config, teacher_config) -> None:
    """Refuse loss settings the two architectures cannot support, before any training starts."""
    if cfg.attention_weight and student_config.num_attention_heads != teacher_config.num_attention_heads:
        raise TinyDistillError(
            f"attention distillation needs equal head counts (student {student_config.num_attention_heads}, "
            f"teacher {teacher_config.num_attention_heads}); set attention_weight: 0 or give the student "
            f"{teacher_config.num_attention_heads} heads"
        )
