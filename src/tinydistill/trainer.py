"""The one training loop every stage uses (Accelerate: devices, mixed precision, gradient accumulation).

A stage hands in a student, an optional frozen teacher, weighted loss terms and what to capture; the
loop knows each term only by its name, weight, function and whether it reads the logits. One step: teacher
forward (no grad, hooks record its mapped layers; or its recording replayed from the target cache) -> student
forward (hooks record) -> terms -> weighted sum -> backward -> step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
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
from tinydistill.data.keys import CACHED_LOGITS, LABELS, TARGET_ROW
from tinydistill.data.loaders import split_inputs
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import scored_outputs
from tinydistill.objectives import CapturePlan, LossTerm, StepContext, projection_layer
from tinydistill.process import process_state
from tinydistill.targets import TargetStore
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
class TrainState:
    """Where training stands (as the HF Trainer's ``TrainerState``): saved as JSON with each checkpoint and read
    back on resume. ``epoch`` and ``batch_in_epoch`` are the position in the data (micro-batches consumed)."""

    stage: str = ""
    epoch: int = 0
    batch_in_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    best_score: float | None = None
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    best: dict | None = None
    objective_before: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainState:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


class Callback:
    """Hooks into the loop (as the HF Trainer's ``TrainerCallback``); a hook may raise to stop training."""

    def on_train_begin(self, state: TrainState, run: StageRun) -> None:
        """Before the first step (or the first after a resume): the run as it starts (student, projections)."""

    def on_micro_step(self, state: TrainState, loss: Tensor) -> None:
        """After one micro-batch's weighted loss, before its backward pass."""

    def on_step_end(self, state: TrainState, losses: dict[str, float]) -> None:
        """After an optimizer step (``state.steps`` counts it); ``losses``: the step's mean of each term."""

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After a dev evaluation."""


@dataclass(frozen=True)
class CheckpointSpec:
    """Where a stage's checkpoints go (``root``), how often (``every`` optimizer steps; None: never) and whether to
    continue from the newest intact one there."""

    root: Path
    every: int | None = None
    resume: bool = False


@dataclass
class TrainResult:
    """What training did: the trained student and projections (the best dev checkpoint's weights where one is
    kept), the steps, time, logged losses, evaluations and the objective before and after."""

    student: nn.Module
    projections: nn.ModuleDict
    steps: int
    seconds: float
    history: list[dict]
    evals: list[dict]
    best: dict | None
    objective_before: dict | None
    objective_after: dict | None
    precision: str  # what the student trained in, after resolving "auto"
    dev_outputs: tuple[list, list] | None = None  # final_eval's dev outputs and gold labels, where they are kept

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
    teacher_logits = batch.get(CACHED_LOGITS)  # from the teacher-output cache, when the stage uses it
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
        batch.get(LABELS),
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


class _Loop:
    """One stage's training machinery: the accelerator, the trainee, optimizer, scheduler and loaders, the teacher,
    the recorders and the best weights so far; :func:`train` drives it step by step."""

    def __init__(
        self, run: StageRun, cfg: TrainConfig, cpu: bool, log_dir: Path, desc: str, callbacks: Sequence[Callback]
    ) -> None:
        # a fresh accelerator per stage (stages may differ in precision); the process group itself is kept
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
        process_state()  # initialise the process group (gloo on CPU-only machines) before the accelerator
        self.run, self.cfg, self.desc, self.callbacks = run, cfg, desc, list(callbacks)
        predicts = any(t.reads_logits for t in run.terms)  # the frozen teacher is never wrapped; the head may idle
        self.mixed = precision.resolve(cfg.mixed_precision, "cuda" if torch.cuda.is_available() and not cpu else "cpu")
        acc = self.acc = Accelerator(
            cpu=cpu,
            mixed_precision=self.mixed,
            gradient_accumulation_steps=cfg.grad_accum_steps,
            log_with="tensorboard",
            project_dir=str(log_dir),
            step_scheduler_with_optimizer=False,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=not predicts)],
        )
        acc.init_trackers(desc)
        trainee = Trainee(run.student, run.projections)
        self.trainee, self.optimizer, self.train_loader = acc.prepare(
            trainee, _optimizer(trainee, cfg), run.train_loader
        )
        self.steps_per_epoch = math.ceil(len(self.train_loader) / cfg.grad_accum_steps)  # per process, sharded
        self.total = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        warmup = get_linear_schedule_with_warmup(self.optimizer, int(cfg.warmup_ratio * self.total), self.total)
        self.scheduler = acc.prepare(warmup)
        self.eval_loader = acc.prepare(run.eval_loader) if run.eval_loader is not None else None
        self.teacher = run.teacher.to(acc.device) if run.teacher is not None else None
        self.teacher_mode = precision.resolve(run.teacher_precision, acc.device)  # once, not on every step
        self.inner = acc.unwrap_model(self.trainee)
        self.recs: tuple[Recorder | None, Recorder | None] = (None, None)
        self.best_weights: dict | None = None
        self.kept: tuple[int, tuple[list, list]] | None = None  # the step and dev outputs the weights may belong to

    def resume(self, checkpoint: CheckpointSpec | None) -> TrainState:
        """A fresh state, or the one of the newest intact checkpoint (weights, optimizer, RNG restored)."""
        state = TrainState(stage=self.desc)
        found = checkpoints.usable(checkpoint.root) if checkpoint and checkpoint.resume else None
        if found is not None:
            saved, self.best_weights = checkpoints.load(self.acc, found)
            state = TrainState.from_json(saved)
            state.stage = self.desc
            say(f"[{self.desc}] resumed from {found} (step {state.steps} of {self.total})")
        elif checkpoint and checkpoint.resume:
            say(
                f"[{self.desc}] --resume: no complete checkpoint in {checkpoint.root} (train.checkpoint_every not set, "
                "or the run stopped before its first one): starting at step 0"
            )
        return state

    @contextmanager
    def recording(self) -> Iterator[None]:
        """The student's and the teacher's recorders, hooked for the duration."""
        plan = self.run.plan
        with ExitStack() as hooks:
            s_rec = hooks.enter_context(_capture(self.inner.student, plan, "student")) if plan else None
            t_rec = hooks.enter_context(_capture(self.teacher, plan, "teacher")) if plan and self.teacher else None
            self.recs, self.inner.recorder = (s_rec, t_rec), s_rec
            yield

    def objective(self) -> dict[str, float]:
        """The loss terms on the fixed probe batches (the objective before and after training)."""
        r = self.run
        return _objective(
            self.trainee,
            self.teacher,
            r.probe_loader,
            r.terms,
            self.recs,
            self.acc.device,
            self.teacher_mode,
            r.targets,
        )

    def epoch(self, state: TrainState, bar, checkpoint: CheckpointSpec | None, started: float) -> None:
        """Train from the state's position to the end of the epoch (or to the last step)."""
        self.train_loader.set_epoch(state.epoch)
        skip = state.batch_in_epoch
        loader = self.acc.skip_first_batches(self.train_loader, skip) if skip else self.train_loader
        summed: dict[str, Tensor] = {}  # each term over the micro-batches of the current optimizer step
        micro = 0
        for batch in loader:
            state.batch_in_epoch += 1
            micro += 1
            self.micro_step(state, batch, summed)
            if not self.acc.sync_gradients:
                continue
            self.step_end(state, {k: (v / micro).item() for k, v in summed.items()}, bar)
            summed, micro = {}, 0
            self.after_step(state, checkpoint, started)
            if state.steps >= self.total:
                break
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0  # after the last step the loop ends: harmless
        if not self.cfg.eval_every or state.steps % self.cfg.eval_every:  # end of epoch (or of training)
            self.evaluate(state)

    def micro_step(self, state: TrainState, batch: dict, summed: dict[str, Tensor]) -> None:
        """Forward, loss, backward (and, at an accumulation boundary, the optimizer and scheduler step)."""
        acc, cfg = self.acc, self.cfg
        with acc.accumulate(self.trainee), acc.autocast() if self.mixed != "no" else nullcontext():
            r = self.run
            losses = _step_losses(self.trainee, self.teacher, batch, r.terms, self.recs, self.teacher_mode, r.targets)
            loss = _total(losses, r.terms)
            for k, v in {"loss": loss, **losses}.items():
                summed[k] = summed.get(k, 0) + v.detach()
            for cb in self.callbacks:
                cb.on_micro_step(state, loss)
            if not torch.isfinite(loss):
                raise TinyDistillError(
                    f"the loss became {loss.item()} at step {state.steps} "
                    f"({', '.join(f'{k}={v.item():.4g}' for k, v in losses.items())}); "
                    "lower the learning rate, or turn off fp16"
                )
            acc.backward(loss)
            if acc.sync_gradients and cfg.max_grad_norm:
                acc.clip_grad_norm_(self.trainee.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            if acc.sync_gradients:
                self.scheduler.step()
            self.optimizer.zero_grad()

    def step_end(self, state: TrainState, step_mean: dict[str, float], bar) -> None:
        """Count the optimizer step, log it every ``log_every`` steps (and the first), tell the callbacks."""
        state.steps += 1
        bar.update(1)
        if state.steps % self.cfg.log_every == 0 or state.steps == 1:
            row = {"step": state.steps, "lr": self.scheduler.get_last_lr()[0], **step_mean}
            state.history.append(row)
            self.acc.log({f"train/{k}": v for k, v in row.items() if k != "step"}, step=state.steps)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            detail(f"[{self.desc}] " + " ".join(f"{k}={v:.4g}" for k, v in row.items()))
        for cb in self.callbacks:
            cb.on_step_end(state, step_mean)

    def after_step(self, state: TrainState, checkpoint: CheckpointSpec | None, started: float) -> None:
        """Evaluate every ``eval_every`` steps; save a checkpoint every ``checkpoint.every`` (not at the last)."""
        if self.cfg.eval_every and state.steps % self.cfg.eval_every == 0:
            self.evaluate(state)
        if checkpoint and checkpoint.every and state.steps % checkpoint.every == 0 and state.steps < self.total:
            saved = TrainState.from_json(state.to_json())
            saved.seconds += time.perf_counter() - started
            checkpoints.save(self.acc, checkpoint.root, state.steps, saved.to_json(), self.best_weights)

    def evaluate(self, state: TrainState) -> None:
        """Score the student on dev; keep its weights when the run selects the best checkpoint and this one is."""
        run = self.run
        if self.eval_loader is None or run.task is None:
            return
        metrics, outputs = scored_outputs(self.inner.student, self.eval_loader, run.task, self.acc)
        state.evals.append({"step": state.steps, "epoch": round(state.steps / self.steps_per_epoch, 3), **metrics})
        self.acc.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.steps)
        score = metrics[run.task.metric]
        if run.select_best and score > (state.best_score if state.best_score is not None else -math.inf):
            state.best_score = score
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in self.inner.student.state_dict().items()}
            state.best = state.evals[-1]
        if state.best is state.evals[-1] or not run.select_best:
            self.kept = (state.steps, outputs)
        say(f"[{self.desc}] step {state.steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        for cb in self.callbacks:
            cb.on_evaluate(state, metrics)

    def final_outputs(self, steps: int) -> tuple[list, list] | None:
        """The dev outputs the trained weights belong to: the best evaluation's, else the last one's where it ran
        at the last step (``steps``); None where this process made no such evaluation (e.g. it resumed after it)."""
        if self.kept is None or (self.best_weights is None and self.kept[0] != steps):
            return None
        return self.kept[1]

    def close(self) -> None:
        for (
            tracker
        ) in self.acc.trackers:  # not acc.end_training(): that destroys the process group the next stage needs
            tracker.finish()


def _capture(model: nn.Module, plan: CapturePlan, who: str):
    """A recorder of what ``plan`` says ``who`` (student or teacher) must record."""
    return capture(
        model, getattr(plan, f"{who}_hidden"), getattr(plan, f"{who}_attention"), getattr(plan, f"{who}_qkv")
    )


def train(
    run: StageRun,
    cfg: TrainConfig,
    *,
    cpu: bool,
    log_dir: Path,
    desc: str,
    checkpoint: CheckpointSpec | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Optimise ``run.terms`` over ``run.train_loader`` and return the trained student (the best dev checkpoint's
    weights where the run selects one) in a :class:`TrainResult`; ``run`` is left as it was handed in.

    With ``checkpoint.every``, a complete training state is saved every N steps under ``checkpoint.root``; with
    ``checkpoint.resume``, training continues from the newest intact one there, exactly: same weights, optimizer and
    scheduler state, RNG states and position in the (per-epoch seeded) data. ``callbacks`` see every step and
    evaluation.
    """
    loop = _Loop(run, cfg, cpu, log_dir, desc, callbacks)
    state = loop.resume(checkpoint)
    for cb in callbacks:
        cb.on_train_begin(state, run)
    with loop.recording():
        if run.probe_loader is not None and state.objective_before is None:
            state.objective_before = loop.objective()
        started = time.perf_counter()
        bar = progress(loop.total, desc)
        bar.update(state.steps)
        loop.trainee.train()
        while state.steps < loop.total:
            loop.epoch(state, bar, checkpoint, started)
        bar.close()
        state.seconds += time.perf_counter() - started
        if loop.best_weights is not None:
            loop.inner.student.load_state_dict(loop.best_weights)
        after = loop.objective() if run.probe_loader is not None else None
    loop.close()
    return TrainResult(
        loop.inner.student,
        loop.inner.projections,
        state.steps,
        state.seconds,
        state.history,
        state.evals,
        state.best,
        state.objective_before,
        after,
        loop.mixed,
        loop.final_outputs(state.steps),
    )
