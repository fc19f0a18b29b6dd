"""The recipe's stages as small configurations of the one training loop.

- :func:`finetune`  (stage 2): the teacher learns the task (hard labels).
- :func:`general`   (stage 1): a pre-trained teacher's embeddings, hidden states and attention scores
  into a new student, on unlabelled text.
- :func:`distill`   (stages 3 and 4): task distillation, ``intermediate`` (embedding + hidden +
  attention losses), ``prediction`` (soft targets, optional hard labels), or ``both`` in sequence.

Each writes a model folder that loads with plain ``transformers``, plus ``metrics.json`` and the
resolved config; the folder appears only once complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import yaml
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Subset

from tinydistill.cache import default_cache_dir, teacher_fingerprint
from tinydistill.checkpoints import checkpoint_root
from tinydistill.config import (
    Config,
    DistillStage,
    GeneralStage,
    LossConfig,
    StudentConfig,
    TrainConfig,
    config_changes,
    dump_config,
)
from tinydistill.data.alignment import same_vocabulary
from tinydistill.data.corpus import encode_corpus
from tinydistill.data.loaders import (
    EncodedDataset,
    by_length,
    encode_examples,
    encode_passages,
    make_loader,
)
from tinydistill.data.readers import (
    Examples,
    concat,
    held_out_dev,
    read_corpus,
    read_split,
    with_dev,
)
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.models import (
    check_vocab,
    freeze,
    load_backbone,
    load_classifier,
    load_tokenizer,
    usable_length,
)
from tinydistill.objectives import (
    build_terms,
    capture_plan,
    check_alignment,
    check_compatible,
    live_teacher,
    make_projections,
    reads_logits,
    reads_teacher,
    setup_between,
)
from tinydistill.outputs import (
    CONFIG_FILE,
    METRICS_FILE,
    TRAINING_STATE_DIR,
    OutputFolder,
    StagingDir,
    is_complete,
    read_metrics,
    write_json,
)
from tinydistill.process import is_main_process, process_state, wait_for_everyone
from tinydistill.report import (
    ModelEntry,
    Table,
    model_table,
    model_table_view,
    plot_curves,
    stage_table,
    write_report,
)
from tinydistill.reuse import TeacherReuse
from tinydistill.speed import count_parameters
from tinydistill.students import build_student
from tinydistill.tasks import Task, task_info
from tinydistill.terms import Setup
from tinydistill.trainer import StageRun, TrainResult, train
from tinydistill.ui import say

Stage = Literal["intermediate", "prediction", "both"]
PROBE_BATCHES = 2  # the objective before/after training is reported on this many fixed training batches
PREPARE_ROWS = 20_000  # training rows a task fits its data-dependent start on (task.prepare)


def _require_teacher(cfg: Config) -> str:
    if not cfg.teacher:
        raise TinyDistillError("no teacher given: set `teacher:` in the config or pass --teacher")
    return cfg.teacher


def _student_tokenizer(spec: StudentConfig):
    if spec.checkpoint and (Path(spec.checkpoint) / "tokenizer_config.json").exists():
        return load_tokenizer(spec.checkpoint)
    return None


def _task_loaders(
    cfg: Config,
    tokenizer,
    task: Task,
    train_cfg: TrainConfig,
    prepare_train: Callable[[EncodedDataset], EncodedDataset] | None = None,
    teacher_tokenizer=None,
    transfer: bool = False,
):
    """(train, dev, probe) loaders and the encoded train and dev sets. With ``teacher_tokenizer`` (a teacher of
    another vocabulary) training rows carry the teacher's tokenization too; dev rows are the student's alone."""
    batch_size, eval_batch_size = train_cfg.batch_size, train_cfg.eval_batch_size
    train_ex = read_split(cfg.data, "train", task, seed=cfg.seed)
    if transfer and cfg.data.transfer_files:  # the teacher labels them; the hard-label term skips them
        more = [task.read_transfer(cfg.data, f) for f in cfg.data.transfer_files]
        say(f"transfer set: {sum(len(m) for m in more):,} unlabelled examples beside {len(train_ex):,} labelled ones")
        train_ex = concat(train_ex, *more)
    dev_ex = read_split(cfg.data, "dev", task, seed=cfg.seed)
    train_ds = task.encode(train_ex, tokenizer, cfg.data.max_length, teacher_tokenizer, training=True)
    if prepare_train is not None:
        train_ds = prepare_train(train_ds)
    dev_ds = task.encode(dev_ex, tokenizer, cfg.data.max_length)
    probe = Subset(train_ds, range(min(len(train_ds), PROBE_BATCHES * eval_batch_size)))
    loaders = (
        task.loader(
            train_ds,
            tokenizer,
            batch_size,
            shuffle=True,
            seed=cfg.seed,
            group_by_length=train_cfg.group_by_length,
            teacher_tokenizer=teacher_tokenizer,
        ),
        task.loader(by_length(dev_ds), tokenizer, eval_batch_size),  # metrics ignore order
        task.loader(probe, tokenizer, eval_batch_size, teacher_tokenizer=teacher_tokenizer),
    )
    return loaders, train_ds, dev_ds


def _carry_projections(projections: nn.ModuleDict, checkpoint: Path) -> None:
    """Start ``projections`` from those saved with the student checkpoint, where names and shapes match."""
    saved_file = checkpoint / TRAINING_STATE_DIR / "projections.safetensors"
    if not saved_file.is_file() or not len(projections):
        return
    own = projections.state_dict()
    same = {k: v for k, v in load_file(str(saved_file)).items() if k in own and own[k].shape == v.shape}
    projections.load_state_dict(same, strict=False)
    names = sorted({k.split(".")[0] for k in same})
    say(f"hidden-state projections {', '.join(names) or 'none'} carried over from {checkpoint}")


def _device(cfg: Config) -> torch.device:
    """Where this process runs the stage: the accelerator Accelerate picks, or the CPU with ``cpu: true``."""
    return torch.device("cpu") if cfg.cpu else process_state().device


def _tokenizers(cfg: Config, teacher_name: str, teacher: nn.Module, student: nn.Module):
    """(the student's tokenizer, the teacher's when it is another vocabulary, else None: one tokenization
    feeds both models and their vocabularies must agree)."""
    teacher_tok = load_tokenizer(teacher_name)
    own = _student_tokenizer(cfg.student)
    if own is None or same_vocabulary(own, teacher_tok):
        check_vocab(teacher_tok, own, teacher, student)
        return teacher_tok, None
    return own, teacher_tok


def _check_alignment(losses: LossConfig, data: EncodedDataset) -> None:
    """Refuse intermediate losses the two tokenizations cannot support (see tinydistill.data.alignment)."""
    if not (data.alignment and live_teacher(losses)):
        return
    if losses.mode == "tinybert":
        raise TinyDistillError(
            "mode: tinybert reproduces the reference arithmetic for one shared tokenization; "
            "with a teacher of another tokenizer use mode: masked"
        )
    check_alignment(losses, data.alignment)


def _report(
    cfg: Config, folder: Path, title: str, metrics: dict, entries: list[ModelEntry], data, tokenizer, metric: str | None
) -> None:
    """Final table (measured now, side by side) into metrics, plus report.html / report.md."""
    if not cfg.report.enabled or not is_main_process():
        return
    sample = data.head(cfg.report.speed_examples)
    metrics["table"] = model_table(entries, sample, tokenizer, metric)
    held = metrics.get("dev_held_out")
    split = (
        [
            (
                "Dev split",
                Table(
                    ["held out of train", "seed", "dev examples"],
                    [[f"{held['dev_fraction']:g}", str(held["seed"]), str(held["examples"])]],
                    "rrr",
                ),
            )
        ]
        if held
        else []
    )
    write_report(
        folder,
        title,
        [
            ("Teacher vs student", model_table_view(metrics["table"])),
            (f"Stage: {metrics['stage']}", stage_table({metrics["stage"]: metrics})),
            *split,
        ],
        plot_curves(metrics, folder),
        dump_config(cfg),
    )


def _save_model(folder: Path, model: nn.Module, tokenizer, projections: nn.ModuleDict | None, cfg: Config) -> None:
    """Model + tokenizer (plain transformers), projections in training_state/, the resolved config."""
    if not is_main_process():
        return
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if projections is not None and len(projections):
        (folder / TRAINING_STATE_DIR).mkdir()
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in projections.state_dict().items()},
            str(folder / TRAINING_STATE_DIR / "projections.safetensors"),
        )
    (folder / CONFIG_FILE).write_text(dump_config(cfg), encoding="utf-8")


def _metrics(stage: str, result: TrainResult, model: nn.Module, final: dict | None) -> dict:
    return {
        "stage": stage,
        "parameters": count_parameters(model),
        "dev": final,
        "best": result.best,
        "evals": result.evals,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 2),
        "precision": result.precision,
        "objective_before": result.objective_before,
        "objective_after": result.objective_after,
        "history": result.history,
    }


def _dev_split(cfg: Config, dev_ds: EncodedDataset) -> dict:
    """``dev_held_out`` for metrics.json: how dev was held out of train (None: dev data was given)."""
    how = held_out_dev(cfg.data)
    return {"dev_held_out": None if how is None else how | {"examples": len(dev_ds)}}


def _write_metrics(folder: Path, metrics: dict) -> None:
    if is_main_process():
        write_json(folder / METRICS_FILE, metrics)


RESUME_CONFIG = "config.yaml"  # beside a stage's checkpoints: the configuration they were written under


def _ckpt(cfg: Config, out: Path, section: str, train_cfg: TrainConfig) -> dict:
    """Checkpoint arguments for a stage writing ``out``: a fresh run starts from no old checkpoint; a resumed
    one is refused when a setting that changes the result differs from the one its checkpoints were made with."""
    root = checkpoint_root(out)
    saved = root / RESUME_CONFIG
    if cfg.resume and saved.is_file():
        changes = config_changes(
            yaml.safe_load(saved.read_text(encoding="utf-8")), cfg.model_dump(mode="json"), (section,)
        )
        if changes:
            raise TinyDistillError(
                f"cannot resume {out}: its checkpoints were made with other settings "
                f"({'; '.join(changes[:5])}{'; ...' if len(changes) > 5 else ''}); run without "
                "--resume to start the stage over, or restore those settings"
            )
    if is_main_process():
        if not cfg.resume and root.exists():
            shutil.rmtree(root)
        if train_cfg.checkpoint_every and not saved.is_file():
            root.mkdir(parents=True, exist_ok=True)
            saved.write_text(dump_config(cfg), encoding="utf-8")
    wait_for_everyone()
    return {"checkpoint_dir": root, "resume": cfg.resume}


def _fit(n: int, tokenizer, *models: nn.Module) -> int:
    """``n`` tokens, or fewer (with a message) where the teacher or the student takes fewer positions."""
    for name, model in zip(("teacher", "student"), models):
        n = usable_length(n, f"{name} ({model.config.model_type})", model.config, tokenizer)
    return n


def _fit_length(cfg: Config, *models: nn.Module, tokenizer=None) -> Config:
    """``cfg`` with data.max_length lowered (with a message) to what every model takes."""
    n = _fit(cfg.data.max_length, tokenizer, *models)
    return (
        cfg
        if n == cfg.data.max_length
        else cfg.model_copy(update={"data": cfg.data.model_copy(update={"max_length": n})})
    )


def _score(dev: dict | None, task: Task) -> float | None:
    return None if not dev else dev.get(task.metric)


def _output(cfg: Config, output_dir: str | Path | None) -> Path:
    return Path(output_dir or cfg.output_dir)


def finetune(cfg: Config, output_dir: str | Path | None = None) -> Path:
    """Stage 2: fine-tune ``cfg.teacher`` (a pre-trained model) on ``cfg.data``; keeps the best dev checkpoint.

    Returns the output folder (a sequence classifier with the task's labels in ``config.id2label``).
    """
    out = _output(cfg, output_dir)
    cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})
    with StagingDir(out, "finetune", cfg.input_paths(), cfg.overwrite) as tmp:
        task = task_info(cfg.data)
        tokenizer = load_tokenizer(_require_teacher(cfg))
        set_seed(cfg.seed)
        model = load_classifier(cfg.teacher, task, who="teacher")
        cfg = _fit_length(cfg, model, tokenizer=tokenizer)
        tcfg = cfg.finetune.train
        (train_loader, dev_loader, probe), _, dev_ds = _task_loaders(cfg, tokenizer, task, tcfg)
        terms = build_terms(LossConfig(hard_weight=1.0), Setup([], task, 0, 0), has_teacher=False)
        run = StageRun(
            model, None, terms, None, nn.ModuleDict(), train_loader, dev_loader, probe, task, select_best=True
        )
        result = train(
            run, tcfg, cpu=cfg.cpu, log_dir=tmp / "logs", desc="finetune", **_ckpt(cfg, out, "finetune", tcfg)
        )
        final = result.final_eval
        _save_model(tmp, run.student, tokenizer, None, cfg)
        metrics = _metrics("finetune", result, run.student, final) | _dev_split(cfg, dev_ds)
        _report(
            cfg,
            tmp,
            f"Stage 2: teacher fine-tuning ({task.name})",
            metrics,
            [ModelEntry("teacher", run.student, tmp, _score(final, task))],
            dev_ds,
            tokenizer,
            task.metric,
        )
        _write_metrics(tmp, metrics)
    return out


def _distill_run(
    stage_cfg: DistillStage | GeneralStage,
    teacher: nn.Module | None,
    student: nn.Module,
    loaders: tuple,
    task: Task | None,
    select_best: bool,
    carried_from: str | None = None,
) -> StageRun:
    losses = stage_cfg.losses
    if teacher is None:  # targets from a soft-label column: prediction-layer terms only
        setup, plan, projections = Setup([], task, 0, 0), None, nn.ModuleDict()
    else:
        check_compatible(losses, student.config, teacher.config)
        setup = setup_between(losses, student, teacher, task)
        plan = capture_plan(losses, setup) or None
        projections = make_projections(losses, setup, student.config.hidden_size, teacher.config.hidden_size)
    if carried_from:
        _carry_projections(projections, Path(carried_from))
    terms = build_terms(losses, setup, has_teacher=True)
    train_loader, eval_loader, probe = loaders
    return StageRun(
        student,
        teacher,
        terms,
        plan,
        projections,
        train_loader,
        eval_loader,
        probe,
        task,
        select_best,
        stage_cfg.teacher_precision,
    )


def general(cfg: Config, output_dir: str | Path | None = None) -> Path:
    """Stage 1: distil a pre-trained (not fine-tuned) ``cfg.teacher`` into a new ``cfg.student`` on
    unlabelled text (``cfg.general.corpus``, or the task's training text when unset), with the
    embedding, hidden-state and attention losses. Writes a bare encoder (no task head)."""
    out = _output(cfg, output_dir)
    g = cfg.general
    if reads_logits(g.losses):
        raise TinyDistillError(
            "general distillation has no labels or task logits: set general.losses soft_weight and hard_weight to 0"
        )
    with StagingDir(out, "general", cfg.input_paths(), cfg.overwrite) as tmp:
        set_seed(cfg.seed)
        teacher = freeze(load_backbone(cfg.teacher))
        student = build_student(cfg.student, teacher, task=None)
        tokenizer, teacher_tok = _tokenizers(cfg, cfg.teacher, teacher, student)
        max_length = _fit(g.max_length, tokenizer, teacher, student)
        if g.corpus and teacher_tok is None:  # read lazily: a corpus may be larger than memory
            cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
            data, passages = encode_corpus(g.corpus, tokenizer, max_length, g.max_passages, cfg.seed, cache)
        else:
            if g.corpus:
                texts = read_corpus(g.corpus, g.max_passages)
            else:
                ex = read_split(cfg.data, "train", task_info(cfg.data), seed=cfg.seed, require_labels=False)
                texts = [t if not ex.pairs else f"{t} {p}" for t, p in zip(ex.texts, ex.pairs or ex.texts)]
                texts = texts[: g.max_passages] if g.max_passages else texts
            passages = len(texts)
            if teacher_tok is None:
                data = encode_passages(texts, tokenizer, max_length)
            else:  # two tokenizations of one window cannot be cut alike: each passage is one window, truncated
                data = encode_examples(Examples(texts, None, None, "corpus"), tokenizer, max_length, teacher_tok)
                _check_alignment(g.losses, data)
        bs = g.train.batch_size
        loaders = (
            make_loader(
                data,
                tokenizer,
                bs,
                shuffle=True,
                seed=cfg.seed,
                group_by_length=g.train.group_by_length,
                teacher_tokenizer=teacher_tok,
            ),
            None,
            make_loader(
                Subset(data, range(min(len(data), PROBE_BATCHES * bs))),
                tokenizer,
                bs,
                shuffle=False,
                teacher_tokenizer=teacher_tok,
            ),
        )
        run = _distill_run(g, teacher, student, loaders, None, select_best=False)
        result = train(
            run, g.train, cpu=cfg.cpu, log_dir=tmp / "logs", desc="general", **_ckpt(cfg, out, "general", g.train)
        )
        metrics = _metrics("general", result, run.student, None) | {"passages": passages, "windows": len(data)}
        _save_model(tmp, run.student, tokenizer, run.projections, cfg)
        _report(
            cfg,
            tmp,
            "Stage 1: general distillation",
            metrics,
            [
                ModelEntry("teacher", teacher, Path(cfg.teacher), None, teacher_tok),
                ModelEntry("student", run.student, tmp, None),
            ],
            data,
            tokenizer,
            None,
        )
        _write_metrics(tmp, metrics)
    return out


def _external_soft_labels(cfg: Config, which: str) -> bool:
    """Whether this stage's targets come from data.soft_label_column instead of a teacher model (refused where a
    teacher model is still needed: intermediate losses, or a student that is not a checkpoint and no teacher)."""
    if cfg.data.soft_label_column is None or which != "prediction":
        return False
    if live_teacher(cfg.prediction.losses):
        raise TinyDistillError(
            "soft labels from a file replace the teacher's outputs, not its hidden states: set the prediction "
            "stage's intermediate weights (embedding, hidden, attention, relation) to 0"
        )
    if cfg.teacher is None and cfg.student.checkpoint is None:
        raise TinyDistillError(
            "with soft labels from a file and no teacher, the student must be a model folder (student.checkpoint); "
            "or give a teacher to build it from"
        )
    if cfg.teacher is not None:
        say(
            f"soft targets from data.soft_label_column {cfg.data.soft_label_column!r}: the teacher {cfg.teacher} is "
            "not run for them (its logits are not used; it builds the student and is scored in the report)"
        )
    return True


#: (teacher weights, data config) -> its dev score and side metrics: a pipeline's stages 3 and 4 measure them once
_TEACHER_SCORES: dict[str, tuple[float | None, dict[str, float]]] = {}


def _teacher_scores(
    cfg: Config, name: str, teacher: nn.Module, tokenizer, task: Task, t: TrainConfig
) -> tuple[float | None, dict[str, float]]:
    """The teacher's dev score for the report (from its stage folder, or measured now for a published teacher) and
    the task's side metrics, once per process for one teacher and data (none with reports off)."""
    if not cfg.report.enabled or not is_main_process():
        return None, {}
    key = teacher_fingerprint(teacher) + cfg.data.model_dump_json()
    if key not in _TEACHER_SCORES:
        if is_complete(name):
            score = _score(read_metrics(name)["dev"], task)
        else:
            dev = task.encode(read_split(cfg.data, "dev", task, seed=cfg.seed), tokenizer, cfg.data.max_length)
            score = _score(evaluate_model(teacher, task.loader(dev, tokenizer, t.eval_batch_size), task), task)
        _TEACHER_SCORES[key] = score, task.side_metrics(teacher, tokenizer, t.eval_batch_size)
    return _TEACHER_SCORES[key]


def _distill_one(cfg: Config, which: Literal["intermediate", "prediction"], out: Path) -> Path:
    cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})
    with StagingDir(out, which, cfg.input_paths(), cfg.overwrite) as tmp:
        task = task_info(cfg.data)
        external = _external_soft_labels(cfg, which)  # a soft-label column replaces the teacher's outputs
        teacher_name = cfg.teacher if external else _require_teacher(cfg)
        set_seed(cfg.seed)
        teacher = (
            freeze(load_classifier(teacher_name, task, who="teacher", require_head=True)) if teacher_name else None
        )
        scored = reads_logits(getattr(cfg, which).losses)  # a stage without one leaves the outputs untrained
        student = task.student_for(build_student(cfg.student, teacher, task), teacher, outputs=scored)
        if teacher is None:
            tokenizer, teacher_tok = load_tokenizer(cfg.student.checkpoint), None
        else:
            tokenizer, teacher_tok = _tokenizers(cfg, teacher_name, teacher, student)
        cfg = _fit_length(cfg, *[m for m in (teacher, student) if m is not None], tokenizer=tokenizer)
        stage_cfg: DistillStage = getattr(cfg, which)
        if cfg.data.transfer_files:
            if external or not reads_teacher(stage_cfg.losses):
                raise TinyDistillError(
                    "data.transfer_files are labelled by the teacher model: the stage needs one (not soft labels from "
                    "a column) and a soft or intermediate loss"
                )
            task.check_transfer(stage_cfg.losses)
        t = stage_cfg.train
        cache = (
            None
            if external
            else TeacherReuse(stage_cfg, teacher, teacher_tok or tokenizer, student, task, _device(cfg), cfg.cache_dir)
        )
        (train_loader, dev_loader, probe), train_ds, dev_ds = _task_loaders(
            cfg, tokenizer, task, t, cache.attach if cache and cache.kind else None, teacher_tok, transfer=True
        )
        _check_alignment(stage_cfg.losses, train_ds)
        if scored and not external:
            fit = Subset(train_ds, range(min(len(train_ds), PREPARE_ROWS)))
            rows = task.loader(fit, tokenizer, t.eval_batch_size, teacher_tokenizer=teacher_tok)
            task.prepare(student, teacher, rows)
        # without a prediction loss the head is untrained: dev metrics would only be noise, so none are taken
        run = _distill_run(
            stage_cfg,
            None if external else teacher,
            student,
            (train_loader, dev_loader if scored else None, probe),
            task,
            select_best=scored,
            carried_from=cfg.student.checkpoint if stage_cfg.carry_projections else None,
        )
        run.targets = cache.store if cache else None
        if external or (cache and cache.replaces_teacher) or not reads_teacher(stage_cfg.losses):
            run.teacher = None  # cached or given outputs are read from the batch; hard labels alone need no teacher
        result = train(run, t, cpu=cfg.cpu, log_dir=tmp / "logs", desc=which, **_ckpt(cfg, out, which, t))
        final = result.final_eval
        _save_model(tmp, run.student, tokenizer, run.projections, cfg)
        metrics = _metrics(which, result, run.student, final) | _dev_split(cfg, dev_ds)
        number = {"intermediate": 3, "prediction": 4}[which]
        reported = cfg.report.enabled and is_main_process()
        side = task.side_metrics(run.student, tokenizer, t.eval_batch_size) if reported else {}
        entries = [ModelEntry("student", run.student, tmp, _score(final, task), None, side)]
        if teacher is not None:
            t_score, t_side = _teacher_scores(cfg, teacher_name, teacher, teacher_tok or tokenizer, task, t)
            entries.insert(0, ModelEntry("teacher", teacher, Path(teacher_name), t_score, teacher_tok, t_side))
        _report(
            cfg,
            tmp,
            f"Stage {number}: {which}-layer distillation ({task.name})",
            metrics,
            entries,
            dev_ds,
            tokenizer,
            task.metric,
        )
        _write_metrics(tmp, metrics)
    return out


def distill(cfg: Config, stage: Stage = "both", output_dir: str | Path | None = None) -> Path:
    """Task distillation from a fine-tuned ``cfg.teacher`` into ``cfg.student`` on ``cfg.data``.

    ``intermediate`` / ``prediction`` write one folder at ``output_dir``; ``both`` runs intermediate
    into ``output_dir/intermediate`` and then prediction, starting from it, into ``output_dir/prediction``
    (returned). The prediction stage keeps its best dev checkpoint; the intermediate stage its last.
    """
    out = _output(cfg, output_dir)
    if stage in ("intermediate", "prediction"):
        return _distill_one(cfg, stage, out)
    if stage != "both":
        raise TinyDistillError(f"unknown stage {stage!r}: use intermediate, prediction or both")
    folder = OutputFolder(out, "distill", cfg.input_paths(), cfg.overwrite, holds=("intermediate", "prediction"))
    with folder:
        folder.claim("intermediate")
        first = _distill_one(cfg, "intermediate", out / "intermediate")
        nxt = cfg.model_copy(update={"student": StudentConfig(checkpoint=str(first))})
        folder.claim("prediction")
        return _distill_one(nxt, "prediction", out / "prediction")
