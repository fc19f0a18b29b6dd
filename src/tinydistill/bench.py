"""``tinydistill bench``: teacher and student served three ways (PyTorch fp32, ONNX fp32, ONNX int8),
scored and timed side by side in one run, with the architectures' FLOP ratio beside the measured speedup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tinydistill.config import Config, load_config
from tinydistill.data.keys import LABELS
from tinydistill.data.loaders import inputs_only, make_loader
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.export import INT8_FILE, ONNX_FILE, OnnxClassifier, export
from tinydistill.model_folders import check_model_folder
from tinydistill.models import load_classifier, load_tokenizer
from tinydistill.outputs import CONFIG_FILE, StagingDir, write_json
from tinydistill.report import Table, own_tokenizer
from tinydistill.speed import measure_speed
from tinydistill.tasks import task_info
from tinydistill.ui import say

RUNTIMES = ("pytorch", "onnx", "onnx_int8")


@torch.inference_mode()
def forward_flops(model: nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass on ``batch`` (matrix products and attention, counted by torch)."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(**batch)
    return counter.get_total_flops()


def _onnx_folder(model_dir: Path, work_dir: Path) -> Path:
    """The model's ONNX export: the folder itself when it already is one, else a fresh export under work_dir."""
    if (model_dir / ONNX_FILE).is_file() and (model_dir / INT8_FILE).is_file():
        return model_dir
    target = work_dir / f"{model_dir.name}-onnx"
    if not ((target / ONNX_FILE).is_file() and (target / INT8_FILE).is_file()):
        export(model_dir, target, quantize=True)
    return target


def bench(
    teacher_dir: str | Path,
    student_dir: str | Path,
    output_dir: str | Path = "bench",
    cfg: Config | None = None,
    split: str = "dev",
    examples: int = 256,
    score: bool = True,
    runtimes: tuple[str, ...] = RUNTIMES,
    overwrite: bool = False,
    larger_batches: tuple[int, ...] = (),
) -> dict:
    """Score (on ``split``) and time teacher and student in each runtime, interleaved in one process (throughput at
    batch 32, and at each of ``larger_batches``; latency at batch 1).

    Returns the rows plus the FLOP ratio; writes bench.json and bench.md into ``output_dir`` (which appears
    only once complete).
    """
    folders = {"teacher": Path(teacher_dir), "student": Path(student_dir)}
    for name, folder in folders.items():
        if not folder.exists():
            raise TinyDistillError(f"{name} folder not found: {folder}")
        check_model_folder(folder)
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        raise TinyDistillError(f"unknown runtime(s) {sorted(unknown)}; choose from {', '.join(RUNTIMES)}")
    if cfg is None:
        found = [f / CONFIG_FILE for f in folders.values() if (f / CONFIG_FILE).is_file()]
        if not found:
            raise TinyDistillError("no task data: pass --config (neither folder holds a tinydistill.yaml)")
        cfg = load_config(found[-1])
    with StagingDir(output_dir, "bench", {**cfg.input_paths(), **folders}, overwrite or cfg.overwrite) as tmp:
        result = _measure(folders, cfg, split, examples, score, runtimes, tmp, larger_batches)
        write_json(tmp / "bench.json", result)
        (tmp / "bench.md").write_text(format_bench(result) + "\n", encoding="utf-8")
    return result


@dataclass(frozen=True)
class Runner:
    """One model in one runtime, as timed and scored."""

    model: str  # teacher | student
    runtime: str  # pytorch | onnx | onnx_int8
    run: object  # the torch model, or an OnnxClassifier

    @property
    def label(self) -> str:
        return f"{self.model} {self.runtime}"


def _measure(
    folders: dict[str, Path],
    cfg: Config,
    split: str,
    examples: int,
    score: bool,
    runtimes: tuple[str, ...],
    out: Path,
    larger_batches: tuple[int, ...] = (),
) -> dict:
    """Score and time every (model, runtime) pair; ONNX exports are written under ``out``."""
    task = task_info(cfg.data)
    tokenizer = load_tokenizer(str(folders["teacher"]))
    texts = read_split(cfg.data, split, task, seed=cfg.seed)
    data = task.encode(texts, tokenizer, cfg.data.max_length)
    # each model reads its own tokenization of the split (teacher and student may differ in vocabulary)
    inputs = {}
    for name, folder in folders.items():
        tok = own_tokenizer(folder, tokenizer)
        inputs[name] = (data, tokenizer) if tok is None else (task.encode(texts, tok, cfg.data.max_length), tok)
    models = {name: load_classifier(str(folder), task, who=str(folder)).eval() for name, folder in folders.items()}
    runners = _runners(folders, models, runtimes, out)
    scores = {}
    if score and data.rows and LABELS in data.rows[0]:
        scores = {r.label: _score(r, inputs[r.model], task, cfg) for r in runners}
    speed = _speed(runners, inputs, data.head(examples), tokenizer, examples, larger_batches, split)
    flops = {
        name: forward_flops(
            m, next(iter(make_loader(inputs_only(inputs[name][0].head(examples)), inputs[name][1], 32, shuffle=False)))
        )
        for name, m in models.items()
    }
    base = speed[runners[0].label]["examples_per_s"]
    rows = [
        {
            "model": r.label,
            "score": scores.get(r.label),
            **speed[r.label],
            "speedup_vs_first": speed[r.label]["examples_per_s"] / base,
        }
        for r in runners
    ]
    result = {
        "task": task.name,
        "split": split,
        "metric": task.metric,
        "threads": torch.get_num_threads(),
        "flops_per_batch32": flops,
        "flop_ratio": flops["teacher"] / flops["student"],
        "larger_batches": list(larger_batches),
        "rows": rows,
    }
    if "pytorch" in runtimes:
        measured = speed["student pytorch"]["examples_per_s"] / speed["teacher pytorch"]["examples_per_s"]
        result["pytorch_speedup_at_32"] = measured
        result["speedup_over_flop_ratio"] = measured / result["flop_ratio"]
    return result


def _runners(folders: dict[str, Path], models: dict[str, nn.Module], runtimes: tuple[str, ...], out: Path) -> list:
    """Each model in each runtime asked for (ONNX exports written under ``out``)."""
    runners = []
    for name, folder in folders.items():
        if "pytorch" in runtimes:
            runners.append(Runner(name, "pytorch", models[name]))
        if {"onnx", "onnx_int8"} & set(runtimes):
            onnx_dir = _onnx_folder(folder, out)
            for runtime, file in (("onnx", ONNX_FILE), ("onnx_int8", INT8_FILE)):
                if runtime in runtimes:
                    runners.append(Runner(name, runtime, OnnxClassifier(onnx_dir / file, config=models[name].config)))
    return runners


def _score(runner: Runner, inputs: tuple, task, cfg: Config) -> float:
    say(f"scoring {runner.label}")
    loader = task.loader(*inputs, cfg.prediction.train.eval_batch_size)
    return evaluate_model(runner.run, loader, task)[task.metric]


def _speed(runners: list, inputs: dict, timed, tokenizer, examples: int, larger: tuple[int, ...], split: str) -> dict:
    """Throughput at batch 32 (and each ``larger`` batch) and latency at batch 1 of every runner, interleaved."""
    say(f"timing {len(runners)} models on {len(timed)} {split} rows (interleaved)")
    by_label = {r.label: r.run for r in runners}
    own = {r.label: (inputs[r.model][0].head(examples), inputs[r.model][1]) for r in runners}
    speed = measure_speed(by_label, timed, tokenizer, own=own)
    for size in larger:  # throughput only; the batch-1 latency was measured above
        more = measure_speed(by_label, timed, tokenizer, batch_size=size, latency_examples=1, own=own)
        for label in by_label:
            speed[label][f"examples_per_s_at_{size}"] = more[label]["examples_per_s"]
    return speed


def bench_table(result: dict) -> Table:
    rows = [
        [
            r["model"],
            "–" if r["score"] is None else f"{r['score']:.4f}",
            f"{r['examples_per_s']:.1f}",
            *(f"{r[f'examples_per_s_at_{b}']:.1f}" for b in result.get("larger_batches", [])),
            f"{r['latency_ms']:.2f}",
            f"{r['speedup_vs_first']:.2f}x",
        ]
        for r in result["rows"]
    ]
    larger = [f"ex/s @{b}" for b in result.get("larger_batches", [])]
    first = result["rows"][0]["model"]
    header = ["model / runtime", result["metric"], "ex/s @32", *larger, "ms @1", f"speed vs {first}"]
    return Table(header, rows, "l" + "r" * (len(header) - 1))


def format_bench(result: dict) -> str:
    """The table, then one line comparing the FLOP ratio with the measured PyTorch speedup."""
    flops = result["flops_per_batch32"]
    lines = [
        bench_table(result).markdown(),
        "",
        f"forward FLOPs on one batch of 32: teacher {flops['teacher'] / 1e9:.2f} G, student "
        f"{flops['student'] / 1e9:.2f} G; FLOP ratio {result['flop_ratio']:.2f}x",
    ]
    if "pytorch_speedup_at_32" in result:
        lines[-1] += (
            f"; measured PyTorch speedup at batch 32 {result['pytorch_speedup_at_32']:.2f}x "
            f"({100 * result['speedup_over_flop_ratio']:.0f}% of the FLOP ratio)"
        )
    lines.append(f"({result['threads']} threads, {result['split']} split)")
    return "\n".join(lines)
