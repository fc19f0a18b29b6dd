"""Turn a loss config into the list of weighted loss terms a stage optimises, and everything that follows from it.

The training loop only sees ``LossTerm``s: a name, a weight and a function of the step's
:class:`StepContext`. Losses stay pure (tensors in, scalar out); capture only records. Which layers are
recorded, whether the teacher must run live, which projections train and which checks run are all derived
from the registered terms (:mod:`tinydistill.terms`).
"""

from __future__ import annotations

from functools import reduce

from torch import nn

from tinydistill.errors import TinyDistillError
from tinydistill.mapping import LayerPairs, resolve_map
from tinydistill.registry import active, weight
from tinydistill.tasks import Task
from tinydistill.terms import CapturePlan, LossTerm, Setup, StepContext

__all__ = ["CapturePlan", "LossTerm", "StepContext"]


def live_teacher(cfg) -> bool:
    """Whether a term needs the teacher model in every step (its hidden states, scores, Q/K/V), so its outputs
    cannot be cached."""
    return any(s.teacher == "live" for s in active(cfg))


def teacher_outputs(cfg) -> bool:
    """Whether a term reads the teacher's outputs (logits or sentence vectors), which a stage may cache."""
    return any(s.teacher == "outputs" for s in active(cfg))


def reads_teacher(cfg) -> bool:
    """Whether any term reads the teacher at all (live or its outputs); hard labels alone need none."""
    return teacher_outputs(cfg) or live_teacher(cfg)


def unreplayable(cfg) -> list[str]:
    """The active terms that need the live teacher and cannot read a cached recording of it instead."""
    return [s.name for s in active(cfg) if s.teacher == "live" and not (s.cacheable and s.cacheable(cfg))]


def reads_logits(cfg) -> bool:
    """Whether a term trains the student's outputs (its task head)."""
    return any(s.reads_logits for s in active(cfg))


def capture_plan(cfg, setup: Setup) -> CapturePlan:
    """What each model must record for the active terms (empty when none needs a recording)."""
    return reduce(CapturePlan.__or__, (s.needs(cfg, setup) for s in active(cfg) if s.needs), CapturePlan())


def projection_layer(name: str) -> int:
    """The hidden layer a projection reads: 'embeddings' -> 0, 'layer_3' -> 3."""
    return 0 if name == "embeddings" else int(name.removeprefix("layer_"))


def make_projections(cfg, setup: Setup, student_width: int, teacher_width: int) -> nn.ModuleDict:
    """One learnable Linear(student_width -> teacher_width) per hidden layer a term reads through a projection.
    They train with the student, live in the training state, and are never exported."""
    names = [n for s in active(cfg) if s.projections for n in s.projections(cfg, setup)]
    return nn.ModuleDict({n: nn.Linear(student_width, teacher_width) for n in dict.fromkeys(names)})


def build_terms(cfg, setup: Setup, has_teacher: bool) -> list[LossTerm]:
    """The weighted terms of a stage, in registration order (soft, hard, embedding, hidden, attention, relation,
    then any registered later). The task says what the prediction terms compare; ``setup.task`` None:
    intermediate terms only."""
    specs = active(cfg)
    if not specs:
        raise TinyDistillError("every loss weight is 0: nothing to train")
    for s in specs:
        if s.reads_logits and setup.task is None:
            raise TinyDistillError("soft_weight and hard_weight need a task (labels or task logits)")
        if s.teacher != "none" and not has_teacher:
            raise TinyDistillError(f"{s.key} needs a teacher")
    return [LossTerm(s.name, weight(cfg, s), s.build(cfg, setup), s.reads_logits) for s in specs]


def check_compatible(cfg, student_config, teacher_config) -> None:
    """Refuse loss settings the two architectures cannot support, before any training starts."""
    for s in active(cfg):
        if s.check:
            s.check(cfg, student_config, teacher_config)


def check_alignment(cfg, alignment: str | None) -> None:
    """Refuse a term that cannot compare the two tokenizations (see tinydistill.data.alignment)."""
    for s in active(cfg):
        if alignment and s.teacher == "live" and alignment not in s.alignments:
            raise TinyDistillError(
                f"teacher and student tokenizers cut the text into different pieces, so the {s.name} term has no "
                f"token-to-token correspondence: set {s.key}: 0 (hidden states are still compared, word by word: "
                "the mean of each word's pieces)"
            )


def setup_for(pairs: LayerPairs, task: Task | None, student_config, teacher_config) -> Setup:
    return Setup(pairs, task, int(student_config.num_hidden_layers), int(teacher_config.num_hidden_layers))


def setup_between(cfg, student: nn.Module, teacher: nn.Module, task: Task | None) -> Setup:
    """The terms' setup for two models: ``cfg.layer_map`` resolved over their depths."""
    pairs = resolve_map(cfg.layer_map, student.config.num_hidden_layers, teacher.config.num_hidden_layers)
    return setup_for(pairs, task, student.config, teacher.config)
