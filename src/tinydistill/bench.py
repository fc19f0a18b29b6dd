"""``tinydistill bench``: teacher and student served three ways (PyTorch fp32, ONNX fp32, ONNX int8),
scored and timed side by side in one run, with the architectures' FLOP ratio beside the measured speedup.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tinydistill.config import Config, load_config
from tinydistill.data.loaders import EncodedDataset, inputs_only, make_loader
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.export import INT8_FILE, ONNX_FILE, OnnxClassifier, export
from tinydistill.models import check_model_folder, load_classifier, load_tokenizer
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
    own = {name: own_tokenizer(folder, tokenizer) for name, folder in folders.items()}
    inputs = {
        name: (data, tokenizer) if tok is None else (task.encode(texts, tok, cfg.data.max_length), tok)
        for name, tok in own.items()
    }

    runners: dict[str, object] = {}
    torch_models: dict[str, nn.Module] = {}
    for name, folder in folders.items():
        torch_models[name] = load_classifier(str(folder), task, who=str(folder)).eval()
        if "pytorch" in runtimes:
            runners[f"{name} pytorch"] = torch_models[name]
        if {"onnx", "onnx_int8"} & set(runtimes):
            onnx_dir = _onnx_folder(folder, out)
            if "onnx" in runtimes:
                runners[f"{name} onnx"] = OnnxClassifier(onnx_dir / ONNX_FILE)
            if "onnx_int8" in runtimes:
                runners[f"{name} onnx_int8"] = OnnxClassifier(onnx_dir / INT8_FILE)

    def of(runner_name: str) -> tuple[EncodedDataset, object]:
        return inputs[runner_name.split(" ")[0]]

    scores: dict[str, float] = {}
    if score and data.rows and "labels" in data.rows[0]:
        for name, runner in runners.items():
            say(f"scoring {name}")
            loader = task.loader(*of(name), cfg.prediction.train.eval_batch_size)
            scores[name] = evaluate_model(runner, loader, task)[task.metric]

    timing_data = data.head(examples)
    say(f"timing {len(runners)} models on {len(timing_data)} {split} rows (interleaved)")
    own_rows = {n: (of(n)[0].head(examples), of(n)[1]) for n in runners}
    speed = measure_speed(runners, timing_data, tokenizer, own=own_rows)
    for size in larger_batches:  # throughput only; the batch-1 latency was measured above
        more = measure_speed(runners, timing_data, tokenizer, batch_size=size, latency_examples=1, own=own_rows)
        for name in runners:
            speed[name][f"examples_per_s_at_{size}"] = more[name]["examples_per_s"]
    flops = {
        name: forward_flops(
            m, next(iter(make_loader(inputs_only(inputs[name][0].head(examples)), inputs[name][1], 32, shuffle=False)))
        )
        for name, m in torch_models.items()
    }
    base = speed[next(iter(runners))]
    rows = [
        {
            "model": name,
            "score": scores.get(name),
            **speed[name],
            "speedup_vs_first": speed[name]["examples_per_s"] / base["examples_per_s"],
        }
        for name in runners
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
