"""Which of its teacher's outputs a task stage computes once and reuses (``teacher_cache``).

- Logits, when they are the teacher's only signal: :mod:`tinydistill.cache`, always (the cost of one pass).
- The layers the terms read, when every live term declares replay exact (``TermSpec.cacheable``):
  :mod:`tinydistill.targets`, built when the stage reads each row at least twice (``auto``) or always (``true``),
  and used whenever an entry exists.
- Otherwise the teacher runs live in every step; a line says why.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tinydistill.cache import teacher_logits, with_teacher_logits
from tinydistill.config import DistillStage, TrainConfig
from tinydistill.data.loaders import EncodedDataset, teacher_view
from tinydistill.objectives import capture_plan, live_teacher, setup_between, teacher_outputs, unreplayable
from tinydistill.process import process_state
from tinydistill.targets import TargetStore, teacher_targets, with_target_rows
from tinydistill.tasks import Task
from tinydistill.ui import say


class TeacherReuse:
    """``kind`` "logits" when the teacher's outputs are its only signal, "targets" when the terms read its layers
    and can replay them, else None (live). ``attach`` adds the cached logits, or each row's index into the target
    store (then ``store``), to the training rows."""

    def __init__(
        self,
        stage_cfg: DistillStage,
        teacher: nn.Module | None,
        tokenizer,
        student: nn.Module,
        task: Task,
        device: torch.device,
        cache_dir: str | Path | None,
    ) -> None:
        self.stage_cfg, self.teacher, self.tokenizer = stage_cfg, teacher, tokenizer
        self.student, self.task, self.device, self.cache_dir = student, task, device, cache_dir
        self.store: TargetStore | None = None
        self.kind = None
        losses = stage_cfg.losses
        if stage_cfg.teacher_cache is False or teacher is None:
            return
        blocked = unreplayable(losses)
        if not live_teacher(losses):
            self.kind = "logits" if teacher_outputs(losses) else None
        elif not blocked:
            self.kind = "targets"
        else:
            say(
                f"teacher targets not cached: {', '.join(blocked)} read(s) the teacher at padding too "
                "(mode tinybert, or a term that does not declare cacheable); the teacher runs live"
            )

    @property
    def replaces_teacher(self) -> bool:
        return self.kind == "logits" or self.store is not None

    def attach(self, data: EncodedDataset) -> EncodedDataset:
        stage, t = self.stage_cfg, self.stage_cfg.train
        teacher = self.teacher.to(self.device)  # on the accelerator the stage trains on, not where it was loaded
        view = teacher_view(data)
        if self.kind == "logits":
            logits = teacher_logits(
                teacher,
                view,
                self.tokenizer,
                t.eval_batch_size,
                self.cache_dir,
                stage.teacher_precision,
                self.task.cache_dtype,
                stage.teacher_cache_gb,
                self.task.per_token_outputs,
            )
            if logits is None:  # over the budget, or the cache cannot be written: the teacher runs live
                self.kind = None
                return data
            return with_teacher_logits(data, logits)
        plan = capture_plan(stage.losses, setup_between(stage.losses, self.student, teacher, self.task))
        reads = passes(t, len(data))
        self.store = teacher_targets(
            teacher,
            view,
            self.tokenizer,
            plan,
            logits=teacher_outputs(stage.losses),
            batch_size=t.eval_batch_size,
            budget_gb=stage.teacher_cache_gb,
            cache_dir=self.cache_dir,
            teacher_precision=stage.teacher_precision,
            build=stage.teacher_cache is True or reads >= 2,
        )
        if self.store is None and reads < 2 and stage.teacher_cache == "auto":
            say(
                f"teacher targets not cached: the stage reads each row {reads:.1f} time(s); the teacher runs live "
                "(teacher_cache: true caches them for later runs on the same data)"
            )
        return with_target_rows(data) if self.store is not None else data


def passes(t: TrainConfig, rows: int) -> float:
    """How many times a stage reads each training row (epochs, or max_steps' worth of batches)."""
    if not t.max_steps:
        return float(t.epochs)
    return t.max_steps * t.batch_size * t.grad_accum_steps * process_state().num_processes / max(rows, 1)
