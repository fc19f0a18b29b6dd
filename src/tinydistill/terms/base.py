"""What a loss term is built for and reads: the step's :class:`StepContext`, the :class:`Setup` (layer map, task,
layer counts), the :class:`CapturePlan` of layers it needs recorded, and the :class:`LossTerm` a stage calls. Terms
register themselves in :mod:`tinydistill.registry`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # terms register (and configs validate their keys) without torch; they build with it
    from torch import Tensor

    from tinydistill.capture import Recorder
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


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of a stage, ready to call on a step."""

    name: str
    weight: float
    fn: Callable[[StepContext], Tensor]
    reads_logits: bool = False  # the term trains the task head (so every parameter is used in the step)


@dataclass(frozen=True)
class CapturePlan:
    """Which layers each model must record: hidden (0 = embeddings), attention scores and Q/K/V, 1-based."""

    student_hidden: list[int] = field(default_factory=list)
    student_attention: list[int] = field(default_factory=list)
    teacher_hidden: list[int] = field(default_factory=list)
    teacher_attention: list[int] = field(default_factory=list)
    student_qkv: list[int] = field(default_factory=list)
    teacher_qkv: list[int] = field(default_factory=list)

    def __or__(self, other: CapturePlan) -> CapturePlan:
        return CapturePlan(
            **{f.name: sorted({*getattr(self, f.name), *getattr(other, f.name)}) for f in dataclasses.fields(self)}
        )

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class Setup:
    """What a term is built for: the layer map, the task (None in general distillation) and the layer counts."""

    pairs: LayerPairs
    task: Task | None
    student_layers: int
    teacher_layers: int
