"""How much of the teacher's macro F1 does a multi-label student keep? GoEmotions (28 labels) on a 2-core CPU.

    python -m benchmarks.multilabel.run WORK [--train-examples 8000] [--epochs 3] [--seeds 1 2] [--tune-threshold]
        [--every-k 2]

Teacher: all-MiniLM-L6-v2 (PyPI) fine-tuned on the first --train-examples rows of GoEmotions train (a seeded subset;
0: all 43,410). Student, per seed: every 2nd teacher layer (3 x 384; --every-k 3: 2 x 384)
  kd     copied from the fine-tuned teacher, then prediction-layer distillation (soft BCE at T=1 + hard BCE)
  alone  copied from the *pre-trained* MiniLM with a new head, fine-tuned on the labels alone
for the same epochs at the same rate. Every model is scored on all of GoEmotions test (5,427 rows: macro, micro and
example-based F1 at threshold 0.5, or --tune-threshold: at the threshold each model's stage tuned on dev, which a model
finished before is given now, as its stage would have); speed is measured teacher vs student side by side in this
process (batch 32 on 512 test rows and batch 1 on 64, medians of 3). Resumable: finished folders are skipped.
Writes WORK/results.json and WORK/results.md.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.common import copied_start, mean_wall_seconds, once, parser, split_speed, write_speed_table
from tinydistill.model_folders import minilm_path

GOEMOTIONS = Path(__file__).resolve().parents[3] / "shared" / "data" / "multilabel" / "goemotions"


def config(args, seed: int, teacher: str, student: dict | None = None):
    from tinydistill.config import config_from_dict

    train = {"epochs": args.epochs, "batch_size": 32, "group_by_length": True}
    tree = {
        "seed": seed,
        "teacher": teacher,
        "data": {
            "task": "multi-label",
            "dir": str(GOEMOTIONS),
            "header": False,
            "text_column": 0,
            "label_column": 1,
            "quoting": True,
            "max_train_examples": args.train_examples or None,
            "max_length": 64,
            "multilabel": {"label_names_file": str(GOEMOTIONS / "emotions.txt"), "tune_threshold": args.tune_threshold},
        },
        "report": {"enabled": False},
        "finetune": {"train": {**train, "learning_rate": args.teacher_lr}},
        "prediction": {"train": {**train, "learning_rate": args.student_lr}, "losses": {"hard_weight": 1.0}},
    }
    if student is not None:
        tree["student"] = student
    return config_from_dict(tree)


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(seeds=[1, 2])
    p.add_argument("--train-examples", type=int, default=8000, help="0: all of train")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--teacher-lr", type=float, default=1e-4, help="also the fine-tuned-alone student's")
    p.add_argument("--student-lr", type=float, default=1e-4)
    p.add_argument("--tune-threshold", action="store_true", help="score each model at its dev-tuned threshold")
    p.add_argument("--every-k", type=int, default=2, help="the student copies every k-th teacher layer")
    args = p.parse_args()

    from tinydistill.evaluate import evaluate
    from tinydistill.stages import distill, finetune
    from tinydistill.tasks import task_info

    work, base = args.work, str(minilm_path())
    work.mkdir(parents=True, exist_ok=True)
    task = task_info(config(args, 0, base).data)
    teacher = once(work / "teacher", lambda: finetune(config(args, 0, base), work / "teacher"))
    runs = {"teacher": teacher}
    for seed in args.seeds:
        kd = work / f"kd-s{seed}"
        cfg = config(args, seed, str(teacher), {"every_k_teacher_layers": args.every_k})
        runs[kd.name] = once(kd, lambda cfg=cfg, kd=kd: distill(cfg, "prediction", kd, task))
        alone = work / f"alone-s{seed}"
        name = "alone-start" if args.every_k == 2 else f"alone-start-k{args.every_k}"  # one start per depth
        start = copied_start(base, work / name, task, every_k=args.every_k)
        runs[alone.name] = once(alone, lambda a=alone, s=seed, st=start: finetune(config(args, s, str(st)), a))
    if args.tune_threshold:
        for folder in runs.values():
            tuned_once(folder, config(args, 0, base))
    scores = {k: evaluate(config(args, 0, base), f, "test") | {"threshold": _threshold(f)} for k, f in runs.items()}
    timing = split_speed({"teacher": teacher, "student": runs[f"kd-s{args.seeds[0]}"]}, config(args, 0, base))
    write(work, args, runs, scores, timing)


def tuned_once(folder: Path, cfg) -> None:
    """Give a model its stage left untuned (finished without tune_threshold) the threshold its stage would have chosen
    on dev, in its config.json."""
    from tinydistill.evaluate import predict
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.tasks import task_info

    if _threshold(folder) is not None:
        return
    task = task_info(cfg.data)
    model, tokenizer = load_classifier(str(folder), task), load_tokenizer(str(folder))
    outputs, golds = predict(model, task.eval_loader(cfg.data, "dev", tokenizer, 64, seed=cfg.seed), task)
    task.tune(model, outputs, golds)
    model.config.save_pretrained(folder)


def _nth(k: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(k, f"{k}th")


def _threshold(folder: Path) -> float | None:
    from tinydistill.tasks.multilabel import THRESHOLD_KEY

    return json.loads((folder / "config.json").read_text(encoding="utf-8")).get(THRESHOLD_KEY)


def write(work: Path, args, runs: dict[str, Path], scores: dict, timing: dict) -> None:
    t = scores["teacher"]
    cut = "dev-tuned threshold" if args.tune_threshold else "threshold"
    rows = [
        f"| teacher (MiniLM-L6) | {t['macro_f1']:.4f} | {t['micro_f1']:.4f} | {t['example_f1']:.4f} | 100.0 | – | "
        f"{t['threshold'] or 0.5:g} |"
    ]
    summary = {}
    for kind in ("kd", "alone"):
        got = [scores[f"{kind}-s{s}"] for s in args.seeds]
        macro = [g["macro_f1"] for g in got]
        cuts = [g["threshold"] or 0.5 for g in got]
        summary[kind] = {"macro_f1": macro, "micro_f1": [g["micro_f1"] for g in got], "threshold": cuts}
        spread = f" ({', '.join(f'{m:.4f}' for m in macro)})" if len(macro) > 1 else ""
        micro, example = (statistics.mean(g[k] for g in got) for k in ("micro_f1", "example_f1"))
        seconds = mean_wall_seconds(runs, [f"{kind}-s{s}" for s in args.seeds])
        kept = 100 * statistics.mean(macro) / t["macro_f1"]
        rows.append(
            f"| student {kind} | {statistics.mean(macro):.4f}{spread} | {micro:.4f} | {example:.4f} | {kept:.1f} | "
            f"{seconds:.0f} | {', '.join(f'{c:g}' for c in cuts)} |"
        )
    head = (
        f"GoEmotions test (5,427 rows), {args.train_examples or 43410} training rows, {args.epochs:g} epochs, seeds "
        f"{args.seeds}; student = every {_nth(args.every_k)} teacher layer. Student {{ratio}}x the teacher's "
        "throughput at batch 32, {latency}x at batch 1.\n\n"
        f"| model | macro F1 (seeds) | micro F1 | example F1 | % of teacher macro F1 | train s | {cut} |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )
    write_speed_table(work, head, rows, {"scores": scores, "summary": summary}, timing)


if __name__ == "__main__":
    main()
