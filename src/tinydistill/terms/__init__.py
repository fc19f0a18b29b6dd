"""Loss terms: the built-in ones (TinyBERT's, MiniLM's), each registered in :mod:`tinydistill.registry` on import,
and what every term is built for and reads (:mod:`tinydistill.terms.base`).

A new term is one function plus one :func:`tinydistill.registry.register_term` call (see docs/losses.md);
``tinydistill.objectives`` derives capture, caching, projections and checks from the registered terms.
"""

from tinydistill.terms import minilm, tinybert  # noqa: F401  (registers the built-in terms)
from tinydistill.terms.base import CapturePlan, LossTerm, Setup, StepContext

__all__ = ["CapturePlan", "LossTerm", "Setup", "StepContext"]
