"""tinydistill: knowledge distillation of transformer encoders for classification, regression, NER and sentence
embeddings (the TinyBERT recipe, done right).

Python API (each function mirrors a CLI subcommand)::

    from tinydistill import load_config, augment, finetune, general, distill, pipeline, evaluate
    cfg = load_config("my.yaml", overrides=["prediction.losses.temperature=2"])
    pipeline(cfg)
"""

from tinydistill.config import Config, load_config
from tinydistill.errors import TinyDistillError

__version__ = "0.1.0"

__all__ = [
    "Config",
    "load_config",
    "TinyDistillError",
    "augment",
    "finetune",
    "general",
    "distill",
    "pipeline",
    "evaluate",
]


def __getattr__(name: str):  # lazy: importing the package must not import torch
    if name in {"finetune", "general", "distill"}:
        from tinydistill import stages

        return getattr(stages, name)
    if name == "augment":
        from tinydistill.augment.core import augment_data

        return augment_data
    if name == "pipeline":
        from tinydistill.pipeline import pipeline

        return pipeline
    if name == "evaluate":
        from tinydistill.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
