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

from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from tinydistill.augment.core import augment_data, augmented_data_config
from tinydistill.checkpoints import checkpoint_root
from tinydistill.config import Config, StudentConfig, config_changes, dump_config
from tinydistill.data.readers import read_split, with_dev
from tinydistill.errors import TinyDistillError
from tinydistill.models import load_classifier, load_tokenizer
from tinydistill.outputs import MANIFEST, OutputFolder, is_complete, read_metrics, write_json
from tinydistill.preflight import check_inputs
from tinydistill.process import is_main_process, wait_for_everyone
from tinydistill.report import (
    ModelEntry,
    model_table,
    model_table_view,
    own_tokenizer,
    plot_curves,
    stage_table,
    write_report,
)
from tinydistill.stages import distill, finetune, general
from tinydistill.tasks import task_info
from tinydistill.ui import say

STAGES = ("1-general", "2-teacher", "3-intermediate", "4-prediction")
RUN_CONFIG = "pipeline.yaml"
#: everything a pipeline writes into its folder (stages' staging, checkpoint and lock entries are hidden beside them)
ENTRIES = ("0-augment", *STAGES, "summary.json", "report.html", "report.md", "plots", RUN_CONFIG, MANIFEST)


def _run_or_skip(
    name: str, folder: Path, fn: Callable[[], Path], log: Callable[[str], None], run: OutputFolder
) -> Path:
    if is_complete(folder):
        log(f"[pipeline] {name}: {folder} is complete, skipped")
        return folder
    log(f"[pipeline] {name}: running -> {folder}")
    run.claim(folder.name)
    return fn()


def _resumed(cfg: Config, folder: Path) -> Config:
    """A stage's settings: resumed where an earlier run of it left checkpoints, else started afresh."""
    return cfg.model_copy(update={"resume": checkpoint_root(folder).exists()})


def _augment(cfg: Config, folder: Path) -> Path:
    augment_data(cfg, folder)
    return folder


def _final_table(cfg: Config, teacher_dir: Path, student_dir: Path) -> list[dict]:
    """Stage 4's teacher-vs-student table, or (reports off) one measured now."""
    table = read_metrics(student_dir).get("table")
    if table:
        return table
    task = task_info(cfg.data)
    tokenizer = load_tokenizer(str(student_dir))
    entries = []
    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        model, own = load_classifier(str(folder), task), own_tokenizer(folder, tokenizer)
        score = ((read_metrics(folder)["dev"] or {}) if is_complete(folder) else {}).get(task.metric)
        side = task.side_metrics(model, own or tokenizer, cfg.prediction.train.eval_batch_size)
        entries.append(ModelEntry(name, model, folder, score, own, side))
    data = task.encode(read_split(cfg.data, "dev", task, seed=cfg.seed), tokenizer, cfg.data.max_length)
    return model_table(entries, data.head(cfg.report.speed_examples), tokenizer, task.metric)


def summarize(cfg: Config, paths: dict[str, Path]) -> dict:
    """Teacher vs student (metric, % kept, parameters, size, speed measured side by side) and one row per stage."""
    rows = {r["model"]: r for r in _final_table(cfg, paths["2-teacher"], paths["4-prediction"])}
    t, s = rows["teacher"], rows["student"]
    return {
        "task": task_info(cfg.data).name,
        "metric": t["metric"],
        "threads": torch.get_num_threads(),
        "rows": rows,
        "kept_percent": s["kept_percent"],
        "compression": t["parameters"] / s["parameters"],
        "speedup_batch32": s["examples_per_s"] / t["examples_per_s"],
        "speedup_batch1": t["latency_ms"] / s["latency_ms"],
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
            ("Teacher vs student", model_table_view(list(summary["rows"].values()))),
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


def pipeline(cfg: Config, log: Callable[[str], None] = say) -> dict:
    """Run the four stages of ``cfg`` (teacher = the pre-trained model) and return the summary."""
    out = Path(cfg.output_dir)
    cfg = cfg.model_copy(update={"data": with_dev(cfg.data)})  # every stage, and the saved run config, hold it out
    stages = (("general",) if cfg.general.enabled else ()) + ("finetune", "intermediate", "prediction")
    check_inputs(cfg, stages)  # every input of every stage, before stage 1 spends minutes
    folder = OutputFolder(out, "pipeline", cfg.input_paths(), cfg.overwrite, holds=ENTRIES)
    with folder:
        _start_or_continue(cfg, folder, log)
        wait_for_everyone()
        # a re-run continues unfinished stages from their checkpoints; the stages write only inside the run
        return _run_stages(cfg.model_copy(update={"overwrite": False}), folder, log)


def _run_stages(cfg: Config, run: OutputFolder, log: Callable[[str], None]) -> dict:
    out = run.final
    paths = {name: out / name for name in (("0-augment",) if cfg.augment.enabled else ()) + STAGES}
    student_spec = cfg.student
    if cfg.general.enabled:
        _run_or_skip(
            "stage 1 (general distillation)",
            paths["1-general"],
            lambda: general(_resumed(cfg, paths["1-general"]), paths["1-general"]),
            log,
            run,
        )
        student_spec = StudentConfig(checkpoint=str(paths["1-general"]))
    if task_info(cfg.data).teacher_needs_finetuning:
        teacher = _run_or_skip(
            "stage 2 (teacher fine-tuning)",
            paths["2-teacher"],
            lambda: finetune(_resumed(cfg, paths["2-teacher"]), paths["2-teacher"]),
            log,
            run,
        )
    else:
        log(f"[pipeline] stage 2 (teacher fine-tuning): not needed for task {cfg.data.task}, the teacher serves as is")
        teacher = paths["2-teacher"] = Path(cfg.teacher)
    task_data = cfg.data
    if cfg.augment.enabled:  # the teacher learns the task from the original data; the student from the augmented
        _run_or_skip("data augmentation", paths["0-augment"], lambda: _augment(cfg, paths["0-augment"]), log, run)
        task_data = augmented_data_config(cfg, paths["0-augment"])
    task_cfg = cfg.model_copy(update={"teacher": str(teacher), "student": student_spec, "data": task_data})
    _run_or_skip(
        "stage 3 (intermediate-layer distillation)",
        paths["3-intermediate"],
        lambda: distill(_resumed(task_cfg, paths["3-intermediate"]), "intermediate", paths["3-intermediate"]),
        log,
        run,
    )
    pred_cfg = task_cfg.model_copy(update={"student": StudentConfig(checkpoint=str(paths["3-intermediate"]))})
    _run_or_skip(
        "stage 4 (prediction-layer distillation)",
        paths["4-prediction"],
        lambda: distill(_resumed(pred_cfg, paths["4-prediction"]), "prediction", paths["4-prediction"]),
        log,
        run,
    )
    summary = summarize(cfg, paths)
    run.claim("summary.json", *(("report.html", "report.md", "plots") if cfg.report.enabled else ()))
    if is_main_process():
        write_json(out / "summary.json", summary)
        if cfg.report.enabled:
            write_pipeline_report(cfg, out, summary, paths)
    return summary
