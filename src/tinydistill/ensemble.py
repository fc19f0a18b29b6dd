"""Several teachers at once (``teachers:``): each fine-tuned teacher's logits on the training examples, in its own
tokenization and cached per teacher, combined by the task into one soft target (the weighted mean of the teachers'
tempered predictions) that the prediction stage reads as it reads soft labels from a column."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinydistill.config import Config
from tinydistill.errors import TinyDistillError
from tinydistill.ui import say

if TYPE_CHECKING:  # the checks run before torch loads; the teachers' outputs import it
    from tinydistill.data.readers import Examples
    from tinydistill.tasks import Task


def weights(cfg: Config) -> list[float]:
    """The teachers' weights, normalised to sum to 1 (equal by default)."""
    given = cfg.teacher_weights or [1.0] * len(cfg.teachers)
    return [w / sum(given) for w in given]


def check_ensemble(cfg: Config, task: Task) -> None:
    """Refuse, before any model loads, what several teachers cannot do."""
    if not task.ensembles:
        raise TinyDistillError(f"several teachers are not supported for task kind {task.kind} yet (one per text only)")
    if cfg.data.soft_label_column:
        raise TinyDistillError("teachers and data.soft_label_column both give the soft targets: give one")


def ensemble_targets(cfg: Config, task: Task, examples: Examples, batch_size: int) -> list[np.ndarray]:
    """One soft target per row of ``examples`` (training rows and any transfer-file rows; per window for QA): each
    teacher's logits (its label set checked against the task's), combined by :meth:`Task.ensemble_logits` at the
    prediction stage's temperature."""
    check_ensemble(cfg, task)
    outputs = [_teacher_outputs(cfg, task, path, examples, batch_size) for path in cfg.teachers]
    shares = weights(cfg)
    say(
        f"soft targets: the weighted mean of {len(outputs)} teachers' predictions "
        f"({', '.join(f'{p} {w:.2f}' for p, w in zip(cfg.teachers, shares))})"
    )
    return list(task.ensemble_logits(outputs, shares, cfg.prediction.losses.temperature))


def _teacher_outputs(cfg: Config, task: Task, path: str, examples: Examples, batch_size: int) -> np.ndarray | list:
    """(N, C) logits of the teacher at ``path`` on ``examples`` read with its own tokenizer (cached per teacher); a
    list of (L, C) per row for per-token outputs."""
    from tinydistill.cache import teacher_logits
    from tinydistill.evaluate import predict
    from tinydistill.models import freeze, load_classifier, load_tokenizer, usable_length

    model = freeze(load_classifier(path, task, who=f"teacher {path}", require_head=True))
    tokenizer = load_tokenizer(path)
    length = usable_length(cfg.data.max_length, f"teacher {path}", model.config, tokenizer)
    data = task.encode(examples, tokenizer, length)
    cached = teacher_logits(
        model,
        data,
        tokenizer,
        batch_size,
        cfg.cache_dir,
        per_token=task.per_token_outputs,
        budget_gb=cfg.prediction.teacher_cache_gb,
    )
    if cached is not None:
        return list(cached) if task.per_token_outputs else np.asarray(cached, dtype=np.float32)
    if task.per_token_outputs:
        raise TinyDistillError(f"teacher {path}: several teachers of per-token outputs need the teacher-output cache")
    outputs, _ = predict(model, task.loader(data, tokenizer, batch_size), task)
    return np.stack(outputs).astype(np.float32)
