"""The loss-term registry: each term declares its config key, what it needs and how it is built.

A term is one function of the step's :class:`StepContext` plus one :class:`TermSpec` registered with
:func:`register_term`. Everything else is derived from the registered specs (``tinydistill.objectives``): which
layers each model records, whether the stage needs a live teacher or only the teacher's outputs (cacheable), which
projections train with the student, which config keys exist, and the compatibility checks run before training.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor

from tinydistill.errors import TinyDistillError

if TYPE_CHECKING:
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


@dataclass(frozen=True)
class Option:
    """A setting of a registered term (a config key beside its weight)."""

    default: int | float | str
    description: str
    choices: tuple[str, ...] | None = None
    minimum: int | float | None = None  # the smallest value a number may take

    def coerce(self, key: str, value: Any) -> int | float | str:
        kind = type(self.default)
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{key} must be {kind.__name__} ({self.description}), got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{key} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{key} must be at least {self.minimum} ({self.description}), got {value!r}")
        return value


@dataclass(frozen=True)
class TermSpec:
    """A loss term: its config key is ``<name>_weight`` (0 switches it off).

    build(cfg, setup) -> the function of a step's context (a scalar tensor);
    needs(cfg, setup) -> what the student and teacher must record for it;
    teacher: "none" (gold labels only), "outputs" (the teacher's logits alone: a stage may cache them), "live"
    (the teacher model runs in every step);
    reads_logits: it trains the task head (the student's logits);
    projections(cfg, setup) -> hidden layers ("embeddings", "layer_3") read through a learnable projection;
    check(cfg, student_config, teacher_config): raise TinyDistillError on settings the two models cannot support;
    alignments: the teacher/student token alignments it supports when their tokenizers differ;
    options: its other config keys;
    cacheable(cfg): whether it reads the teacher's recording at real tokens only, so a stage may replay a cached
    recording (zeros at padding) instead of running the teacher (None: not declared, the teacher runs live).
    """

    name: str
    build: Callable[[Any, Setup], Callable[[StepContext], Tensor]]
    needs: Callable[[Any, Setup], CapturePlan] | None = None
    teacher: Literal["none", "outputs", "live"] = "live"
    reads_logits: bool = False
    projections: Callable[[Any, Setup], list[str]] | None = None
    check: Callable[[Any, Any, Any], None] | None = None
    alignments: tuple[str, ...] = ("positions", "words")
    options: dict[str, Option] = field(default_factory=dict)
    cacheable: Callable[[Any], bool] | None = None

    @property
    def key(self) -> str:
        return f"{self.name}_weight"


#: every registered term by name, in registration order (the order a stage's terms are built and logged in)
REGISTRY: dict[str, TermSpec] = {}


def register_term(spec: TermSpec) -> TermSpec:
    """Add ``spec`` to the registry; a name or config key another term already uses is refused."""
    taken = {k: s.name for s in REGISTRY.values() for k in (s.name, s.key, *s.options)}
    clash = [k for k in (spec.name, spec.key, *spec.options) if k in taken]
    if clash:
        owner = taken[clash[0]]
        raise TinyDistillError(
            f"loss term {spec.name!r}: {', '.join(clash)} already belongs to term {owner!r}; rename it"
        )
    REGISTRY[spec.name] = spec
    return spec


def weight(cfg: Any, spec: TermSpec) -> float:
    """The term's weight in a loss config (0 when the config does not mention it)."""
    return float(getattr(cfg, spec.key, None) or 0.0)


def option(cfg: Any, spec: TermSpec, name: str) -> Any:
    """One of the term's options as the config sets it, or its default."""
    value = getattr(cfg, name, None)
    return spec.options[name].default if value is None else value


def active(cfg: Any) -> list[TermSpec]:
    """The registered terms a loss config switches on, in registration order."""
    return [s for s in REGISTRY.values() if weight(cfg, s) > 0]


def check_extra_keys(extra: dict[str, Any], declared: list[str]) -> dict[str, Any]:
    """Validate the keys of a loss config beyond its declared fields: registered terms' weights and options, each
    coerced to its type; anything else is refused with the closest known key."""
    known: dict[str, Option] = {}
    for s in REGISTRY.values():
        known[s.key] = Option(0.0, f"weight of the {s.name} term")
        known |= s.options
    out = {}
    for key, value in extra.items():
        if key not in known:
            close = difflib.get_close_matches(key, [*declared, *known], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted([*declared, *known]))}"
            raise ValueError(f"{key}: unknown key ({hint})")
        out[key] = known[key].coerce(key, value)
        if key.endswith("_weight") and out[key] < 0:
            raise ValueError(f"{key} must be >= 0, got {value!r}")
    return out
