"""Loss terms: a registry (``terms.base``) and the built-in terms, registered on import.

A new term is one function plus one :func:`register_term` call (see docs/losses.md); ``tinydistill.objectives``
derives capture, caching, projections and checks from the registered terms.
"""

from tinydistill.terms import minilm, tinybert  # noqa: F401  (registers the built-in terms)
from tinydistill.terms.base import (
    REGISTRY,
    CapturePlan,
    LossTerm,
    Option,
    Setup,
    StepContext,
    TermSpec,
    active,
    option,
    register_term,
    weight,
)

__all__ = [
    "REGISTRY",
    "CapturePlan",
    "LossTerm",
    "Option",
    "Setup",
    "StepContext",
    "TermSpec",
    "active",
    "option",
    "register_term",
    "weight",
]
