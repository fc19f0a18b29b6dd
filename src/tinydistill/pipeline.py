"""The four-stage recipe from one config: each stage's output feeds the next, finished stages are skipped.

    output_dir/1-general       stage 1: general distillation (skipped when general.enabled is false)
    output_dir/2-teacher       stage 2: the teacher fine-tuned on the task
    output_dir/3-intermediate  stage 3: task distillation, intermediate layers (student from stage 1)
    output_dir/4-prediction    stage 4: task distillation, prediction layer (student from stage 3)
    output_dir/summary.json    teacher vs student: metric, parameters, size, speed
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from tinydistill.config import Config, StudentConfig
from tinydistill.data.loaders import encode_examples
from tinydistill.data.readers import read_split, task_info
from tinydistill.models import load_classifier, load_tokenizer
from tinydistill.outputs import is_complete, read_metrics, write_json
from tinydistill.speed import count_parameters, measure_speed, size_on_disk
from tinydistill.stages import distill, finetune, general

STAGES = ("1-general", "2-teacher", "3-intermediate", "4-prediction")


def _run_or_skip(name: str, folder: Path, fn: Callable[[], Path], log: Callable[[str], None]) -> Path:
    if is_complete(folder):
        log(f"[pipeline] {name}: {folder} is complete, skipped")
        return folder
    log(f"[pipeline] {name}: running -> {folder}")
    return fn()


def summarize(cfg: Config, teacher_dir: Path, student_dir: Path, speed_examples: int = 256) -> dict:
    """Teacher vs student on the dev set: metric, % kept, parameters, size on disk, speed (same run)."""
    task = task_info(cfg.data)
    tokenizer = load_tokenizer(str(teacher_dir))
    models = {"teacher": load_classifier(str(teacher_dir), task), "student": load_classifier(str(student_dir), task)}
    dev = read_split(cfg.data, "dev", task, seed=cfg.seed)
    data = encode_examples(dev, tokenizer, cfg.data.max_length)
    data.rows = data.rows[:speed_examples]
    speed = measure_speed(models, data, tokenizer)
    rows = {}
    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        dev_metrics = read_metrics(folder)["dev"] or {}
        rows[name] = {"folder": str(folder), "metric": task.metric, "dev": dev_metrics.get(task.metric),
                      "parameters": count_parameters(models[name]), "size_mb": size_on_disk(folder) / 2**20,
                      **speed[name]}
    t, s = rows["teacher"], rows["student"]
    summary = {"task": task.name, "metric": task.metric, "threads": torch.get_num_threads(), "rows": rows,
               "kept_percent": 100 * s["dev"] / t["dev"] if t["dev"] else None,
               "speedup_batch32": s["examples_per_s"] / t["examples_per_s"],
               "speedup_batch1": t["latency_ms"] / s["latency_ms"],
               "compression": t["parameters"] / s["parameters"]}
    return summary


def format_summary(summary: dict) -> str:
    """The teacher-vs-student table as plain text."""
    head = f"{'model':<8} {summary['metric']:>18} {'params':>12} {'size MB':>9} {'ex/s @32':>10} {'ms @1':>8}"
    lines = [head, "-" * len(head)]
    for name, r in summary["rows"].items():
        dev = f"{r['dev']:.4f}" if r["dev"] is not None else "n/a"
        lines.append(f"{name:<8} {dev:>18} {r['parameters']:>12,} {r['size_mb']:>9.1f} "
                     f"{r['examples_per_s']:>10.1f} {r['latency_ms']:>8.2f}")
    kept = f"{summary['kept_percent']:.1f}%" if summary["kept_percent"] is not None else "n/a"
    lines.append(f"student keeps {kept} of the teacher's {summary['metric']}, is {summary['compression']:.1f}x "
                 f"smaller, {summary['speedup_batch32']:.1f}x faster at batch 32 and "
                 f"{summary['speedup_batch1']:.1f}x at batch 1 ({summary['threads']} threads)")
    return "\n".join(lines)


def pipeline(cfg: Config, log: Callable[[str], None] = print) -> dict:
    """Run the four stages of ``cfg`` (teacher = the pre-trained model) and return the summary."""
    out = Path(cfg.output_dir)
    paths = {name: out / name for name in STAGES}
    student_spec = cfg.student
    if cfg.general.enabled:
        _run_or_skip("stage 1 (general distillation)", paths["1-general"],
                     lambda: general(cfg, paths["1-general"]), log)
        student_spec = StudentConfig(checkpoint=str(paths["1-general"]))
    teacher = _run_or_skip("stage 2 (teacher fine-tuning)", paths["2-teacher"],
                           lambda: finetune(cfg, paths["2-teacher"]), log)
    task_cfg = cfg.model_copy(update={"teacher": str(teacher), "student": student_spec})
    _run_or_skip("stage 3 (intermediate-layer distillation)", paths["3-intermediate"],
                 lambda: distill(task_cfg, "intermediate", paths["3-intermediate"]), log)
    pred_cfg = task_cfg.model_copy(update={"student": StudentConfig(checkpoint=str(paths["3-intermediate"]))})
    student = _run_or_skip("stage 4 (prediction-layer distillation)", paths["4-prediction"],
                           lambda: distill(pred_cfg, "prediction", paths["4-prediction"]), log)
    summary = summarize(cfg, teacher, student)
    summary["stages"] = {name: {"folder": str(p), "seconds": read_metrics(p).get("train_seconds"),
                                "dev": read_metrics(p).get("dev")} for name, p in paths.items() if is_complete(p)}
    write_json(out / "summary.json", summary)
    return summary
