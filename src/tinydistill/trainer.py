"""The one training loop every stage uses (Accelerate: devices, mixed precision, gradient accumulation).

A stage hands in a student, an optional frozen teacher, weighted loss terms and what to capture; the
loop knows each term only by its name, weight, function and whether it reads the logits. One step: teacher
forward (no grad, hooks record its mapped layers; or its recording replayed from the target cache) -> student
forward (hooks record) -> terms -> weighted sum -> backward -> step.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedDataParallelKwargs
from torch import Tensor, nn
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from tinydistill import checkpoints, precision
from tinydistill.capture import Recorder, capture
from tinydistill.config import TrainConfig
from tinydistill.data.loaders import split_inputs
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.objectives import CapturePlan, LossTerm, StepContext, projection_layer
from tinydistill.process import process_state
from tinydistill.targets import TARGET_ROW, TargetStore
from tinydistill.tasks import Task
from tinydistill.ui import detail, progress, say


class Trainee(nn.Module):
    """What the optimizer trains: the student and its projections. The teacher is deliberately not a
    submodule, so ``train()`` here cannot reach it and DDP never wraps it.

    The projections run inside ``forward`` (on the hidden states the student's hooks recorded), so DDP
    sees every trained parameter used in the forward pass.
    """

    def __init__(self, student: nn.Module, projections: nn.ModuleDict) -> None:
        super().__init__()
        self.student = student
        self.projections = projections
        self.recorder: Recorder | None = None

    def forward(self, **inputs):
        out = self.student(**inputs)
        projected = (
            {name: proj(self.recorder.hidden[projection_layer(name)]) for name, proj in self.projections.items()}
            if self.recorder is not None
            else {}
        )
        return out, projected


@dataclass
class StageRun:
    """Everything a stage hands to :func:`train`."""

    student: nn.Module
    teacher: nn.Module | None
    terms: list[LossTerm]
    plan: CapturePlan | None
    projections: nn.ModuleDict
    train_loader: DataLoader
    eval_loader: DataLoader | None = None  # labelled dev data, for metrics and best-checkpoint choice
    probe_loader: DataLoader | None = None  # fixed training batches on which the objective is reported
    task: Task | None = None
    select_best: bool = False
    teacher_precision: str = "no"  # autocast of the live teacher's forward (see precision.py)
    targets: TargetStore | None = None  # the teacher's recording, replayed in place of it (rows carry TARGET_ROW)


@dataclass
class TrainResult:
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    best: dict | None = None
    objective_before: dict | None = None
    objective_after: dict | None = None
    precision: str = "no"  # what the student trained in, after resolving "auto"

    @property
    def final_eval(self) -> dict | None:
        """The dev evaluation the saved weights belong to: the best one, else the last (None: no evaluation)."""
        return self.best or (self.evals[-1] if self.evals else None)


def _optimizer(trainee: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in trainee.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel: one pass over all parameters (measured ~5x cheaper than foreach on CPU)
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4 on CPU, or parameters the fused kernel does not take
        return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def _step_losses(
    trainee: nn.Module,
    teacher: nn.Module | None,
    batch: dict,
    terms: list[LossTerm],
    recs: tuple[Recorder | None, Recorder | None],
    teacher_precision: str = "no",
    targets: TargetStore | None = None,
) -> dict[str, Tensor]:
    inputs, teacher_inputs, alignment = split_inputs(batch)
    teacher_logits = batch.get("teacher_logits")  # from the teacher-output cache, when the stage uses it
    if targets is not None:
        t_rec, stored = targets.replay(batch[TARGET_ROW], teacher_inputs["input_ids"].shape[1])
        recs, teacher_logits = (recs[0], t_rec), stored if stored is not None else teacher_logits
    elif teacher is not None:
        # no_grad, not inference_mode: the targets enter losses whose backward saves them
        with torch.no_grad(), precision.autocast(teacher_precision, batch["input_ids"].device):
            teacher_logits = getattr(teacher(**teacher_inputs), "logits", None)
    out, projected = trainee(**inputs)
    ctx = StepContext(
        batch["attention_mask"],
        batch.get("labels"),
        getattr(out, "logits", None),
        teacher_logits,
        recs[0],
        recs[1],
        projected,
        alignment,
    )
    return {t.name: t.fn(ctx) for t in terms}


def _total(losses: dict[str, Tensor], terms: list[LossTerm]) -> Tensor:
    return sum(t.weight * losses[t.name] for t in terms)


@torch.no_grad()
def _objective(
    trainee, teacher, loader, terms, recs, device, teacher_precision: str = "no", targets: TargetStore | None = None
) -> dict[str, float]:
    """Mean of each loss term (and the weighted total) over a fixed set of batches, in eval mode."""
    was = trainee.training
    trainee.eval()
    sums: dict[str, float] = {}
    n = 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        losses = _step_losses(trainee, teacher, batch, terms, recs, teacher_precision, targets)
        losses["total"] = _total(losses, terms)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n += 1
    trainee.train(was)
    return {k: v / max(n, 1) for k, v in sums.items()}


def train(
    run: StageRun,
    cfg: TrainConfig,
    *,
    cpu: bool,
    log_dir: Path,
    desc: str,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Optimise ``run.terms`` over ``run.train_loader``; leaves the best (or last) weights in ``run.student``.

    With ``checkpoint_dir`` and ``cfg.checkpoint_every``, a complete training state is saved every N
    steps; with ``resume``, training continues from the newest complete one there, exactly: same
    weights, optimizer and scheduler state, RNG states and position in the (per-epoch seeded) data.
    """
    # a fresh accelerator per stage (stages may differ in precision); the process group itself is kept
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    process_state()  # initialise the process group (gloo on CPU-only machines) before the accelerator
    # the frozen teacher is never wrapped; stages without a prediction loss leave the pooler/head unused
    predicts = any(t.reads_logits for t in run.terms)
    on_gpu = torch.cuda.is_available() and not cpu
    mixed = precision.resolve(cfg.mixed_precision, "cuda" if on_gpu else "cpu")
    acc = Accelerator(
        cpu=cpu,
        mixed_precision=mixed,
        gradient_accumulation_steps=cfg.grad_accum_steps,
        log_with="tensorboard",
        project_dir=str(log_dir),
        step_scheduler_with_optimizer=False,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=not predicts)],
    )
    acc.init_trackers(desc)
    trainee = Trainee(run.student, run.projections)
    trainee, optimizer, train_loader = acc.prepare(trainee, _optimizer(trainee, cfg), run.train_loader)
    steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum_steps)  # per process, after sharding
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    scheduler = acc.prepare(get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total))
    eval_loader = acc.prepare(run.eval_loader) if run.eval_loader is not None else None
    teacher = run.teacher.to(acc.device) if run.teacher is not None else None
    teacher_mode = precision.resolve(run.teacher_precision, acc.device)  # once, not on every step
    inner = acc.unwrap_model(trainee)
    projections = inner.projections
    result = TrainResult(steps=0, seconds=0.0, precision=mixed)
    best_state, best_score = None, -math.inf
    epoch, skip = 0, 0  # position in the data: epoch, and micro-batches already consumed in it
    found = checkpoints.usable(checkpoint_dir) if (resume and checkpoint_dir) else None
    if found is not None:
        saved, best_state = checkpoints.load(acc, found)
        epoch, skip = saved["epoch"], saved["batch_in_epoch"]
        best_score = saved["best_score"] if saved["best_score"] is not None else -math.inf
        for key in ("steps", "seconds", "history", "evals", "best", "objective_before"):
            setattr(result, key, saved[key])
        say(f"[{desc}] resumed from {found} (step {result.steps} of {total})")
    elif resume:
        say(
            f"[{desc}] --resume: no complete checkpoint in {checkpoint_dir} (train.checkpoint_every not set, or the "
            "run stopped before its first one): starting at step 0"
        )

    with ExitStack() as hooks:
        plan = run.plan
        s_rec = (
            hooks.enter_context(capture(inner.student, plan.student_hidden, plan.student_attention, plan.student_qkv))
            if plan
            else None
        )
        t_rec = (
            hooks.enter_context(capture(teacher, plan.teacher_hidden, plan.teacher_attention, plan.teacher_qkv))
            if plan and teacher is not None
            else None
        )
        recs = (s_rec, t_rec)
        inner.recorder = s_rec
        if run.probe_loader is not None and result.objective_before is None:
            result.objective_before = _objective(
                trainee, teacher, run.probe_loader, run.terms, recs, acc.device, teacher_mode, run.targets
            )

        def evaluate_now() -> None:
            nonlocal best_state, best_score
            if eval_loader is None or run.task is None:
                return
            metrics = evaluate_model(inner.student, eval_loader, run.task, acc)
            result.evals.append({"step": result.steps, "epoch": round(result.steps / steps_per_epoch, 3), **metrics})
            acc.log({f"eval/{k}": v for k, v in metrics.items()}, step=result.steps)
            score = metrics[run.task.metric]
            if run.select_best and score > best_score:
                best_score = score
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in inner.student.state_dict().items()}
                result.best = result.evals[-1]
            say(f"[{desc}] step {result.steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

        def checkpoint(batch_in_epoch: int) -> None:
            state = {
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "best_score": None if best_score == -math.inf else best_score,
                "steps": result.steps,
                "seconds": result.seconds + time.perf_counter() - start,
                "history": result.history,
                "evals": result.evals,
                "best": result.best,
                "objective_before": result.objective_before,
            }
            checkpoints.save(acc, checkpoint_dir, result.steps, state, best_state)

        start = time.perf_counter()
        bar = progress(total, desc)
        bar.update(result.steps)
        trainee.train()
        while result.steps < total:
            train_loader.set_epoch(epoch)
            loader = acc.skip_first_batches(train_loader, skip) if skip else train_loader
            consumed = skip
            summed: dict[str, Tensor] = {}  # each term over the micro-batches of the current optimizer step
            micro = 0
            for batch in loader:
                consumed += 1
                with acc.accumulate(trainee), acc.autocast() if mixed != "no" else nullcontext():
                    losses = _step_losses(trainee, teacher, batch, run.terms, recs, teacher_mode, run.targets)
                    loss = _total(losses, run.terms)
                    micro += 1
                    for k, v in {"loss": loss, **losses}.items():
                        summed[k] = summed.get(k, 0) + v.detach()
                    if not torch.isfinite(loss):
                        raise TinyDistillError(
                            f"the loss became {loss.item()} at step {result.steps} "
                            f"({', '.join(f'{k}={v.item():.4g}' for k, v in losses.items())}); "
                            "lower the learning rate, or turn off fp16"
                        )
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm:
                        acc.clip_grad_norm_(trainee.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    if acc.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad()
                if not acc.sync_gradients:
                    continue
                step_mean = {k: (v / micro).item() for k, v in summed.items()}  # the step's loss, not the last part's
                summed, micro = {}, 0
                result.steps += 1
                bar.update(1)
                if result.steps % cfg.log_every == 0 or result.steps == 1:
                    row = {"step": result.steps, "lr": scheduler.get_last_lr()[0], **step_mean}
                    result.history.append(row)
                    acc.log({f"train/{k}": v for k, v in row.items() if k != "step"}, step=result.steps)
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                    detail(f"[{desc}] " + " ".join(f"{k}={v:.4g}" for k, v in row.items()))
                if cfg.eval_every and result.steps % cfg.eval_every == 0:
                    evaluate_now()
                if (
                    checkpoint_dir
                    and cfg.checkpoint_every
                    and result.steps % cfg.checkpoint_every == 0
                    and result.steps < total
                ):
                    checkpoint(consumed)
                if result.steps >= total:
                    break
            epoch, skip = epoch + 1, 0  # after a break at `total` the loop ends, so this is harmless there
            if not cfg.eval_every or result.steps % cfg.eval_every:  # end of epoch (or of training)
                evaluate_now()
        bar.close()
        result.seconds += time.perf_counter() - start
        if best_state is not None:
            inner.student.load_state_dict(best_state)
        if run.probe_loader is not None:
            result.objective_after = _objective(
                trainee, teacher, run.probe_loader, run.terms, recs, acc.device, teacher_mode, run.targets
            )
    for tracker in acc.trackers:  # not acc.end_training(): that destroys the process group the next stage needs
        tracker.finish()
    run.student = inner.student
    run.projections = projections
    return result
