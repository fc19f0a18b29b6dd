"""What the benchmark scripts share: a parent argument parser, timing (one thing, or several interleaved, as medians),
the environment block, and one writer of results (JSON for tools, Markdown for people, the environment in both)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def parser(description: str, work: bool = True) -> argparse.ArgumentParser:
    """An argument parser with what every benchmark takes: the work folder (results and resumable state), the seeds."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if work:
        p.add_argument("work", type=Path, help="work folder: what the run writes, and what a re-run resumes from")
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds to run (medians and spreads over them)")
    return p


def timed(fn: Callable[[], object], repeats: int, warmup: int = 0) -> tuple[float, object]:
    """The median seconds of ``repeats`` calls of ``fn`` (after ``warmup`` uncounted ones), and the last result."""
    result = None
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each of ``fns``, called in turn (A B A B ...), so a drift of the machine's speed hits all."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def environment() -> dict[str, str]:
    """Versions, device, threads and cores: the block every result carries."""
    from tinydistill.report import environment as env

    return env()


def once(folder: Path, make: Callable[[], object]) -> Path:
    """``make()`` unless ``folder`` is a finished tinydistill output or an earlier ``make()`` finished it (a resumable
    benchmark step; ``distill --stage both`` finishes sub-folders); its wall seconds are written beside it."""
    from tinydistill.outputs import is_complete

    if not is_complete(folder) and not (folder / "wall_seconds.txt").is_file():
        start = time.perf_counter()
        make()
        (folder / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    return folder


def write_result(folder: Path, name: str, data: dict, table: str) -> None:
    """``folder/name.json`` (``data`` and the environment) and ``folder/name.md`` (``table``, then the environment)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = environment()
    (folder / f"{name}.json").write_text(json.dumps({**data, "environment": env}, indent=1, default=float))
    block = "\n".join(f"- {k}: {v}" for k, v in env.items())
    (folder / f"{name}.md").write_text(f"{table.rstrip()}\n\nEnvironment:\n{block}\n")


def copied_start(backbone: str, out: Path, task, head: bool = False, every_k: int = 2) -> Path:
    """Every ``every_k``-th layer of ``backbone`` saved once into ``out`` with its tokenizer: with a new head for
    ``task`` (the pre-trained model: the starting point of a student fine-tuned alone), or with ``head`` the fine-tuned
    backbone's own (the student a prediction stage builds from it as ``teacher:``)."""
    from tinydistill.config import StudentConfig
    from tinydistill.models import load_backbone, load_classifier, load_tokenizer
    from tinydistill.students import build_student

    if not (out / "config.json").is_file():
        source = load_classifier(backbone, task, require_head=True) if head else load_backbone(backbone)
        build_student(StudentConfig(every_k_teacher_layers=every_k), source, task).save_pretrained(out)
        load_tokenizer(backbone).save_pretrained(out)
    return out


def split_speed(runs: dict[str, Path], cfg, split: str = "test") -> dict:
    """Throughput at batch 32 (the first 512 rows of ``split``) and latency at batch 1 (64 rows) of each model folder
    in ``runs`` ("teacher" gives the tokenizer), measured side by side, medians of 3."""
    from tinydistill.data.readers import read_split
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.speed import measure_speed
    from tinydistill.tasks import task_info

    task = task_info(cfg.data)
    tok = load_tokenizer(str(runs["teacher"]))
    data = task.encode(read_split(cfg.data, split, task), tok, cfg.data.max_length).head(512)
    models = {k: load_classifier(str(f), task) for k, f in runs.items()}
    return measure_speed(models, data, tok, batch_size=32, repeats=3, latency_examples=64)


def write_speed_table(work: Path, head: str, rows: list[str], data: dict, timing: dict) -> None:
    """``work/results.{json,md}``: ``data`` with the student's speed against the teacher (``timing`` from
    :func:`split_speed`), ``head`` (``{ratio}`` and ``{latency}`` filled in) over the table ``rows``; then print it."""
    ratio = timing["student"]["examples_per_s"] / timing["teacher"]["examples_per_s"]
    latency = timing["teacher"]["latency_ms"] / timing["student"]["latency_ms"]
    data = data | {"speed": timing, "throughput_ratio": ratio, "latency_ratio": latency}
    write_result(work, "results", data, head.format(ratio=f"{ratio:.2f}", latency=f"{latency:.2f}") + "\n".join(rows))
    print((work / "results.md").read_text())


def mean_wall_seconds(runs: dict[str, Path], names: list[str]) -> float:
    """The mean of the ``wall_seconds.txt`` that :func:`once` wrote into the named run folders."""
    return sum(float((runs[n] / "wall_seconds.txt").read_text()) for n in names) / len(names)
