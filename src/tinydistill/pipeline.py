"""The four-stage recipe from one config: each stage's output feeds the next, finished stages are skipped.

output_dir/0-augment       augmented training set (only with augment.enabled; stages 3 and 4 train on it)
output_dir/1-general       stage 1: general distillation (skipped when general.enabled is false)
output_dir/2-teacher       stage 2: the teacher fine-tuned on the task
output_dir/3-intermediate  stage 3: task distillation, intermediate layers (student from stage 1)
output_dir/4-prediction    stage 4: task distillation, prediction layer (student from stage 3)
output_dir/summary.json    teacher vs student: metric, parameters, size, speed
output_dir/report.html     the run report (also report.md and plots/)
output_dir/pipeline.yaml   the configuration the run was started with (a re-run must match it)
output_dir/tinydistill-manifest.json   what the run wrote there (all that --overwrite may remove)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from tinydistill.augment.core import augment_data, augmented_data_config
from tinydistill.checkpoints import checkpoint_root
from tinydistill.config import Config, StudentConfig, config_changes, dump_config
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.models import load_classifier, load_tokenizer
from tinydistill.outputs import MANIFEST, OutputFolder, is_complete, read_metrics, write_json
from tinydistill.preflight import check_pipeline
from tinydistill.process import is_main_process, wait_for_everyone
from tinydistill.report import (
    ModelEntry,
    ModelRow,
    model_table,
    model_table_view,
    own_tokenizer,
    plot_curves,
    stage_table,
    write_report,
)
from tinydistill.stages import distill, finetune, general
from tinydistill.tasks import Task
from tinydistill.trainer import Callback
from tinydistill.ui import say

STAGES = ("1-general", "2-teacher", "3-intermediate", "4-prediction")
RUN_CONFIG = "pipeline.yaml"
#: everything a pipeline writes into its folder (stages' staging, checkpoint and lock entries are hidden beside them)
ENTRIES = ("0-augment", *STAGES, "summary.json", "report.html", "report.md", "plots", RUN_CONFIG, MANIFEST)


def _teacher(cfg: Config, r: _Run) -> Path:
    """Stage 2's fine-tuned teacher, or the teacher as given (a kind that needs no fine-tuning, or finetune off)."""
    if r.task.teacher_needs_finetuning and cfg.finetune.enabled:
        return r.stage(
            "stage 2 (teacher fine-tuning)", "2-teacher", lambda f: finetune(_resumed(cfg, f), f, r.task, r.callbacks)
        )
    why = "finetune.enabled: false" if cfg.finetune.enabled is False else f"not needed for task {cfg.data.task}"
    r.log(f"[pipeline] stage 2 (teacher fine-tuning): {why}, the teacher serves as is")
    return Path(cfg.teacher)


def _resumed(cfg: Config, folder: Path) -> Config:
    """A stage's settings: resumed where an earlier run of it left checkpoints, else started afresh."""
    return cfg.model_copy(update={"resume": checkpoint_root(folder).exists()})


def _augment(cfg: Config, folder: Path) -> Path:
    augment_data(cfg, folder)
    return folder


def _final_table(cfg: Config, task: Task, teacher_dir: Path, student_dir: Path) -> list[ModelRow]:
    """Stage 4's teacher-vs-student table, or (reports off) one measured now."""
    table = read_metrics(student_dir).get("table")
    if table:
        return [ModelRow.from_json(r) for r in table]
    tokenizer = load_tokenizer(str(student_dir))
    entries = []
    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        model, own = load_classifier(str(folder), task), own_tokenizer(folder, tokenizer)
        score = _dev_score(cfg, task, model, folder, own or tokenizer)
        side = task.side_metrics(model, own or tokenizer, cfg.prediction.train.eval_batch_size)
        entries.append(ModelEntry(name, model, folder, score, own, side))
    data = task.eval_data(cfg.data, "dev", tokenizer, seed=cfg.seed)
    return model_table(entries, data.head(cfg.report.speed_examples), tokenizer, task.metric)


def _dev_score(cfg: Config, task: Task, model: torch.nn.Module, folder: Path, tokenizer) -> float | None:
    """A model's dev score: the one its stage recorded, else measured now (a teacher given fine-tuned, a student
    whose last stage did not evaluate)."""
    recorded = (read_metrics(folder)["dev"] or {}) if is_complete(folder) else {}
    if task.metric in recorded:
        return recorded[task.metric]
    loader = task.eval_loader(cfg.data, "dev", tokenizer, cfg.prediction.train.eval_batch_size, seed=cfg.seed)
    return evaluate_model(model, loader, task).get(task.metric)


def summarize(cfg: Config, paths: dict[str, Path], task: Task, student: Path) -> dict:
    """Teacher vs student (metric, % kept, parameters, size, speed measured side by side) and one row per stage."""
    rows = {r.model: r for r in _final_table(cfg, task, paths["2-teacher"], student)}
    t, s = rows["teacher"], rows["student"]
    return {
        "task": task.name,
        "metric": t.metric,
        "threads": torch.get_num_threads(),
        "rows": {name: r.to_json() for name, r in rows.items()},
        "kept_percent": s.kept_percent,
        "compression": t.parameters / s.parameters,
        "speedup_batch32": s.examples_per_s / t.examples_per_s,
        "speedup_batch1": t.latency_ms / s.latency_ms,
        "stages": {
            name: {k: v for k, v in read_metrics(p).items() if k not in ("history", "evals")}
            for name, p in paths.items()
            if is_complete(p)
        },
    }


def format_summary(summary: dict) -> str:
    """The teacher-vs-student table as plain text."""
    head = f"{'model':<8} {summary['metric']:>18} {'params':>12} {'size MB':>9} {'ex/s @32':>10} {'ms @1':>8}"
    lines = [head, "-" * len(head)]
    for name, r in summary["rows"].items():
        score = f"{r['score']:.4f}" if r["score"] is not None else "n/a"
        lines.append(
            f"{name:<8} {score:>18} {r['parameters']:>12,} {r['size_mb']:>9.1f} "
            f"{r['examples_per_s']:>10.1f} {r['latency_ms']:>8.2f}"
        )
    kept = f"{summary['kept_percent']:.1f}%" if summary["kept_percent"] is not None else "n/a"
    lines.append(
        f"student keeps {kept} of the teacher's {summary['metric']}, is {summary['compression']:.1f}x "
        f"smaller, {summary['speedup_batch32']:.1f}x faster at batch 32 and "
        f"{summary['speedup_batch1']:.1f}x at batch 1 ({summary['threads']} threads)"
    )
    return "\n".join(lines)


def write_pipeline_report(cfg: Config, out: Path, summary: dict, paths: dict[str, Path]) -> None:
    """report.html / report.md for the whole run: final table, one row per stage, every stage's curves."""
    stage_metrics = {name: read_metrics(p) for name, p in paths.items() if is_complete(p)}
    plots = [p for name, m in stage_metrics.items() for p in plot_curves(m, out, prefix=f"{name}-")]
    write_report(
        out,
        f"tinydistill pipeline: {summary['task']}",
        [
            ("Teacher vs student", model_table_view([ModelRow.from_json(r) for r in summary["rows"].values()])),
            ("Stages", stage_table(stage_metrics)),
        ],
        plots,
        dump_config(cfg),
    )


def _start_or_continue(cfg: Config, folder: OutputFolder, log: Callable[[str], None]) -> None:
    """Record the run's configuration; a re-run must match it (finished stages are reused, unfinished ones
    resume) unless ``overwrite`` asks to start over, which removes what the pipeline wrote (its manifest's
    entries) and nothing else."""
    out = folder.final
    saved = out / RUN_CONFIG
    if saved.is_file() and not cfg.overwrite:  # check_output let it through: an earlier run wrote it
        changes = config_changes(yaml.safe_load(saved.read_text(encoding="utf-8")), cfg.model_dump(mode="json"))
        if changes:
            raise TinyDistillError(
                f"{out} holds a pipeline run made with other settings "
                f"({'; '.join(changes[:5])}{'; ...' if len(changes) > 5 else ''}); continuing it "
                "would mix the two: pass --overwrite to start the run over, or choose another -o"
            )
    if cfg.overwrite:
        removed = folder.start_over(keep=(RUN_CONFIG,))
        if removed:
            log(f"[pipeline] --overwrite: starting over, removing {removed} entries the earlier run wrote")
    folder.claim(RUN_CONFIG)
    if is_main_process():
        saved.write_text(dump_config(cfg), encoding="utf-8")


def pipeline(
    cfg: Config,
    log: Callable[[str], None] = say,
    callbacks: Sequence[Callback] = (),
    checked: tuple[Config, tuple[str, ...], Task] | None = None,
) -> dict:
    """Run the four stages of ``cfg`` (teacher = the pre-trained model) and return the summary; ``callbacks`` see
    every training step and evaluation of every stage; ``checked``: what :func:`check_pipeline` returned for
    ``cfg``, where the caller ran it already (the command line does, before the training libraries load)."""
    out = Path(cfg.output_dir)
    cfg, _, task = checked or check_pipeline(cfg)  # every input of every stage, before stage 1 spends minutes
    folder = OutputFolder(out, "pipeline", cfg.input_paths(), cfg.overwrite, holds=ENTRIES)
    with folder:
        _start_or_continue(cfg, folder, log)
        wait_for_everyone()
        # a re-run continues unfinished stages from their checkpoints; the stages write only inside the run
        return _run_stages(cfg.model_copy(update={"overwrite": False}), _Run(task, folder, log, callbacks))


@dataclass
class _Run:
    """What every stage of one pipeline run shares: the task (built once), the folder, the log, the callbacks and
    the teacher's report scores (measured once for stages 3 and 4)."""

    task: Task
    folder: OutputFolder
    log: Callable[[str], None]
    callbacks: Sequence[Callback]
    scores: dict = field(default_factory=dict)

    def stage(self, title: str, name: str, fn: Callable[[Path], Path]) -> Path:
        """Run stage ``name`` into its folder (``fn(folder)``), or skip it when that folder is complete."""
        folder = self.folder.final / name
        if is_complete(folder):
            self.log(f"[pipeline] {title}: {folder} is complete, skipped")
            return folder
        self.log(f"[pipeline] {title}: running -> {folder}")
        self.folder.claim(name)
        return fn(folder)


def _run_stages(cfg: Config, r: _Run) -> dict:
    out, cb = r.folder.final, r.callbacks
    student = cfg.student
    if cfg.general.enabled:
        r.stage("stage 1 (general distillation)", "1-general", lambda f: general(_resumed(cfg, f), f, r.task, cb))
        student = StudentConfig(checkpoint=str(out / "1-general"))
    teacher = _teacher(cfg, r)
    data = cfg.data
    if cfg.augment.enabled:  # the teacher learns the task from the original data; the student from the augmented
        r.stage("data augmentation", "0-augment", lambda f: _augment(cfg, f))
        data = augmented_data_config(cfg, out / "0-augment")
    last = out / "1-general"
    for which, name in (("intermediate", "3-intermediate"), ("prediction", "4-prediction")):
        if not getattr(cfg, which).enabled:
            r.log(f"[pipeline] stage {name[0]} ({which}-layer distillation): off ({which}.enabled: false)")
            continue
        task_cfg = cfg.model_copy(update={"teacher": str(teacher), "student": student, "data": data})
        title = f"stage {name[0]} ({which}-layer distillation)"
        last = r.stage(title, name, lambda f, c=task_cfg, w=which: distill(_resumed(c, f), w, f, r.task, cb, r.scores))
        student = StudentConfig(checkpoint=str(last))
    paths = {name: out / name for name in (("0-augment",) if cfg.augment.enabled else ()) + STAGES}
    paths["2-teacher"] = teacher
    summary = summarize(cfg, paths, r.task, last)
    r.folder.claim("summary.json", *(("report.html", "report.md", "plots") if cfg.report.enabled else ()))
    if is_main_process():
        write_json(out / "summary.json", summary)
        if cfg.report.enabled:
            write_pipeline_report(cfg, out, summary, paths)
    return summary
