"""Model families: one adapter module each (a :class:`Family` record), found by ``config.model_type``.

Adding a family is one module here that defines ``FAMILY``, listed in ``_MODULES``, plus its test.
A model whose family has no adapter still gets prediction-layer and hidden-state distillation
(hidden states from ``output_hidden_states``); attention distillation then names the families that have one.
"""

from __future__ import annotations

import importlib

from tinydistill.errors import TinyDistillError
from tinydistill.families.base import Family

_MODULES = ("bert", "electra", "distilbert", "albert", "mpnet", "deberta", "modernbert")
FAMILIES: dict[str, Family] = {}
for _name in _MODULES:
    _family = importlib.import_module(f"tinydistill.families.{_name}").FAMILY
    FAMILIES.update(dict.fromkeys(_family.model_types, _family))


def family_of(config) -> Family | None:
    """The adapter for a model's config (by ``model_type``), or None."""
    return FAMILIES.get(getattr(config, "model_type", None))


def require_family(config, what: str) -> Family:
    """The adapter, or one line naming the families that support ``what``."""
    family = family_of(config)
    if family is None:
        raise TinyDistillError(
            f"{what} needs a family adapter, and '{getattr(config, 'model_type', '?')}' has none; "
            f"supported: {', '.join(sorted(FAMILIES))} (prediction-layer and hidden-state "
            "distillation work for any family)"
        )
    family.check(config)
    return family
