"""The ground floor's registries: loss terms (:class:`TermSpec`) and task kinds. Each built-in or third-party term and
kind adds itself here when its module is imported; everything else (config keys, capture plans, which kind reads a
``data.task`` name or a saved model) is derived from what is registered.

The built-in terms and kinds sit above this module, so it imports them by name the first time a registry is read
(:data:`BUILTINS`), as Python entry points name a plugin; a third-party term or kind registers by being imported.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tinydistill.errors import TinyDistillError

#: the modules that register the built-in loss terms and task kinds, imported on first use of a registry
BUILTINS = ("tinydistill.terms", "tinydistill.tasks")
_builtins_loaded: list[bool] = []


def load_builtins() -> None:
    """Import the built-in terms and kinds once (each registers itself)."""
    if not _builtins_loaded:
        _builtins_loaded.append(True)
        for name in BUILTINS:
            importlib.import_module(name)


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
    build: Callable[[Any, Any], Callable[[Any], Any]]  # (loss config, Setup) -> (StepContext -> scalar Tensor)
    needs: Callable[[Any, Any], Any] | None = None  # (loss config, Setup) -> CapturePlan
    teacher: Literal["none", "outputs", "live"] = "live"
    reads_logits: bool = False
    projections: Callable[[Any, Any], list[str]] | None = None
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


def terms() -> dict[str, TermSpec]:
    """Every registered term by name, the built-in ones included."""
    load_builtins()
    return REGISTRY


def active(cfg: Any) -> list[TermSpec]:
    """The registered terms a loss config switches on, in registration order."""
    return [s for s in terms().values() if weight(cfg, s) > 0]


def check_extra_keys(extra: dict[str, Any], declared: list[str]) -> dict[str, Any]:
    """Validate the keys of a loss config beyond its declared fields: registered terms' weights and options, each
    coerced to its type; anything else is refused with the closest known key."""
    known: dict[str, Option] = {}
    for s in terms().values():
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


#: every registered task kind (a :class:`tinydistill.tasks.Task` subclass) by its ``kind`` name
KINDS: dict[str, Any] = {}


def register_kind(cls: Any) -> Any:
    """Add a task kind (a class decorator): its ``kind`` name and ``aliases`` select it as ``data.task``, its
    ``settings_key`` names its section of the data config; a name another kind already uses is refused."""
    taken = {n: k.kind for k in KINDS.values() for n in (k.kind, *k.aliases, k.settings_key) if n}
    clash = [n for n in (cls.kind, *cls.aliases, cls.settings_key) if n and n in taken and taken[n] != cls.kind]
    if clash:
        raise TinyDistillError(
            f"task kind {cls.kind!r}: {', '.join(clash)} already belongs to kind {taken[clash[0]]!r}"
        )
    KINDS[cls.kind] = cls
    return cls


def kinds() -> dict[str, Any]:
    """Every registered task kind by name, the built-in ones included."""
    load_builtins()
    return KINDS


def kind_named(name: str) -> Any | None:
    """The kind ``name`` selects (its kind name or an alias, case and ``_``/``-`` alike), or None."""
    key = name.strip().lower().replace("_", "-")
    return next((k for k in kinds().values() if key in (k.kind, *k.aliases)), None)


def settings_sections() -> dict[str, Any]:
    """The data-config sections of the registered kinds: settings key -> the kind's settings model."""
    return {k.settings_key: k.settings_model for k in kinds().values() if k.settings_model is not None}
