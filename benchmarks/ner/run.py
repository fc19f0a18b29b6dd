"""Token classification at TinyBERT's recipe (issue 14): CoNLL-2003 (and WNUT-17) NER on a 2-core CPU.

    python -m benchmarks.ner.run WORK [--data conll2003] [--train-examples 3000] [--epochs 3] [--kd-epochs 2 3]
                                      [--teacher-lr 5e-5] [--student-lr 1e-4] [--seeds 1 2]
                                      [--students every2 tinybert4] [--general-passages 3000] [--finished-only]
                                      [--temperature 1] [--soft-tokens labelled] [--transfer-sentences 0]

Teacher: all-MiniLM-L6-v2 (PyPI) fine-tuned on the training sentences. Students, each with --seeds:
  every2     every 2nd teacher layer (3 x 384), copied from the fine-tuned teacher; intermediate then prediction KD
  tinybert4  tinybert-4l-312d after general distillation (Wikipedia passages, from the pre-trained MiniLM);
             intermediate then prediction KD
(every2pred: every2 with prediction-layer KD alone, soft + hard, for as many epochs as both KD stages; every3pred
the same with every 3rd teacher layer (2 x 384); with
--temperature / --soft-tokens other than the defaults its folders and rows are named e.g. every2pred_T2_all;
--transfer-sentences N adds N untagged Wikipedia sentences (a seeded sample, split into CoNLL-like words, written to
WORK/wiki-sentences-N.txt) as data.transfer_files, which needs --soft-tokens all: every2pred_all_wiki20000)
and each student's baseline: the same starting point (every 2nd layer of the *pre-trained* MiniLM; the general
student) fine-tuned alone on the hard labels for as many epochs as both KD stages together, at the same rate.
Every model is scored on the full dev and test files (entity F1, seqeval); speed is measured teacher vs student
side by side in this process (batch 32 and batch 1, medians of 3). Resumable: finished stage folders are skipped;
--finished-only reports what is finished without training.
Writes WORK/results.json and WORK/results.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tinydistill.model_folders import minilm_path

ROOT = Path(__file__).resolve().parents[2]
NER = ROOT.parent / "shared" / "data" / "ner"
WIKI = ROOT.parent / "shared" / "data" / "corpus" / "wikipedia" / "train.txt"


def config(args, work: Path, seed: int, teacher: str, student: dict | None = None, **extra):
    from tinydistill.config import config_from_dict

    tree = {
        "output_dir": str(work),
        "seed": seed,
        "teacher": teacher,
        "data": {
            "task": "ner",
            "dir": str(NER / args.data),
            "max_train_examples": args.train_examples or None,  # 0: all of train
            "max_length": 128,
        },
        "report": {"enabled": False},
        "general": {
            "corpus": str(WIKI),
            "max_passages": args.general_passages,
            "max_length": 128,
            "train": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-4},
        },
        "finetune": {"train": {"epochs": args.epochs, "batch_size": 32, "learning_rate": args.teacher_lr}},
        "intermediate": {"train": {"epochs": args.kd_epochs[0], "batch_size": 32, "learning_rate": args.student_lr}},
        "prediction": {"train": {"epochs": args.kd_epochs[1], "batch_size": 32, "learning_rate": args.student_lr}},
    }
    if student is not None:
        tree["student"] = student
    for key, value in extra.items():
        tree[key] = value
    return config_from_dict(tree)


def once(folder: Path, make, done: Path | None = None, train: bool = True) -> bool:
    """Run ``make`` unless ``done`` (default: ``folder``) is a finished output, its wall time beside it; with
    ``train`` false only say whether it is finished."""
    from tinydistill.outputs import is_complete

    if train and not is_complete(done or folder):
        t = time.perf_counter()
        make()
        (folder / "wall_seconds.txt").write_text(f"{time.perf_counter() - t:.1f}\n")
    return is_complete(done or folder)


def wall(folder: Path) -> float:
    f = folder / "wall_seconds.txt"
    return float(f.read_text()) if f.is_file() else 0.0


PRED = {"every2pred": 2, "every3pred": 3}  # prediction-KD-only students: every k-th fine-tuned teacher layer


def pred_kind(args, kind: str) -> str:
    """A prediction-KD student's name, with its non-default soft-loss settings: every2pred, every2pred_T2_all, ..."""
    parts = [kind]
    if args.temperature != 1.0:
        parts.append(f"T{args.temperature:g}")
    if args.soft_tokens != "labelled":
        parts.append(args.soft_tokens)
    if args.transfer_sentences:
        parts.append(f"wiki{args.transfer_sentences}")
    return "_".join(parts)


def wiki_sentences(work: Path, n: int) -> Path:
    """WORK/wiki-sentences-N.txt: a seeded sample of N Wikipedia sentences of 6-50 words, punctuation split off
    the words as in CoNLL-2003, one per line (written once)."""
    import random
    import re

    out = work / f"wiki-sentences-{n}.txt"
    if not out.is_file():
        found = []
        for paragraph in WIKI.read_text(encoding="utf-8").splitlines():
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph.strip()):
                words = re.findall(r"\w+(?:[-'.,]\w+)*|[^\w\s]", sentence)
                if 6 <= len(words) <= 50:
                    found.append(" ".join(words))
        out.write_text("\n".join(random.Random(0).sample(found, n)) + "\n", encoding="utf-8")
    return out


def copied_layers_student(backbone: str, out: Path, task) -> None:
    """Every 2nd layer of the pre-trained backbone, with a new token head: the baseline's starting point."""
    from tinydistill.config import StudentConfig
    from tinydistill.models import load_backbone, load_tokenizer
    from tinydistill.outputs import write_json
    from tinydistill.students import build_student

    student = build_student(StudentConfig(every_k_teacher_layers=2), load_backbone(backbone), task)
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out)
    load_tokenizer(backbone).save_pretrained(out)
    write_json(out / "metrics.json", {"stage": "copied"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("--data", default="conll2003", choices=["conll2003", "wnut17"])
    p.add_argument("--train-examples", type=int, default=3000, help="0: all of train")
    p.add_argument("--epochs", type=float, default=3, help="teacher fine-tuning epochs")
    p.add_argument("--kd-epochs", type=float, nargs=2, default=[2, 3], help="intermediate, prediction epochs")
    p.add_argument("--teacher-lr", type=float, default=5e-5)
    p.add_argument("--student-lr", type=float, default=1e-4, help="KD stages and the student baselines")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--students", nargs="+", default=["every2", "tinybert4"], help="also: every2pred every3pred")
    p.add_argument("--general-passages", type=int, default=3000)
    p.add_argument("--finished-only", action="store_true", help="train nothing: score and report what is finished")
    p.add_argument("--temperature", type=float, default=1.0, help="every2pred's soft loss temperature")
    p.add_argument(
        "--soft-tokens", default="labelled", choices=["labelled", "all"], help="every2pred's soft loss positions"
    )
    p.add_argument("--transfer-sentences", type=int, default=0, help="every2pred: untagged Wikipedia sentences")
    args = p.parse_args()
    if args.transfer_sentences and args.soft_tokens != "all":
        p.error("--transfer-sentences needs --soft-tokens all (untagged sentences have no labelled tokens)")
    train = not args.finished_only

    from tinydistill.evaluate import evaluate
    from tinydistill.stages import distill, finetune, general
    from tinydistill.tasks import task_info

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    base = str(minilm_path())
    task = task_info(config(args, work, 0, base).data)
    teacher = work / "teacher"
    if not once(teacher, lambda: finetune(config(args, work, 0, base), teacher), train=train):
        raise SystemExit(f"{teacher} is not finished: run without --finished-only first")
    runs: dict[str, Path] = {"teacher": teacher}
    for kind in args.students:
        if kind in PRED:  # prediction-layer KD alone (soft + hard), as many epochs as both KD stages
            every, kind = PRED[kind], pred_kind(args, kind)
            for seed in args.seeds:
                kd = work / f"{kind}-kd-s{seed}"
                cfg = config(args, work, seed, str(teacher), {"every_k_teacher_layers": every})
                pred = cfg.prediction.model_copy(
                    update={
                        "train": cfg.prediction.train.model_copy(update={"epochs": sum(args.kd_epochs)}),
                        "losses": cfg.prediction.losses.model_copy(
                            update={
                                "hard_weight": 1.0,
                                "temperature": args.temperature,
                                "soft_tokens": args.soft_tokens,
                            }
                        ),
                    }
                )
                cfg = cfg.model_copy(update={"prediction": pred})
                if args.transfer_sentences:
                    more = wiki_sentences(work, args.transfer_sentences)
                    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"transfer_files": [str(more)]})})
                if once(kd, lambda cfg=cfg, kd=kd: distill(cfg, "prediction", kd), train=train):
                    runs[f"{kind}-kd-s{seed}"] = kd
            continue
        if kind == "every2":
            start = {"every_k_teacher_layers": 2}
            base_start = work / "every2-pretrained"
            if not (base_start / "config.json").is_file():
                copied_layers_student(base, base_start, task)
        else:
            gen = work / "general-tinybert4"
            gcfg = config(args, work, 0, base, {"preset": "tinybert-4l-312d"})
            if not once(gen, lambda gcfg=gcfg, gen=gen: general(gcfg, gen), train=train):
                continue
            start, base_start = {"checkpoint": str(gen)}, gen
        for seed in args.seeds:  # every seed's baseline first: a run cut short still has the comparison
            ft = work / f"{kind}-finetune-s{seed}"
            fcfg = config(args, work, seed, str(base_start))  # as many epochs as both KD stages, the students' lr
            fcfg = fcfg.model_copy(
                update={
                    "finetune": fcfg.finetune.model_copy(
                        update={
                            "train": fcfg.finetune.train.model_copy(
                                update={"epochs": sum(args.kd_epochs), "learning_rate": args.student_lr}
                            )
                        }
                    )
                }
            )
            if once(ft, lambda fcfg=fcfg, ft=ft: finetune(fcfg, ft), train=train):
                runs[f"{kind}-finetune-s{seed}"] = ft
        for seed in args.seeds:
            kd = work / f"{kind}-kd-s{seed}"
            cfg = config(args, work, seed, str(teacher), start)
            if once(kd, lambda cfg=cfg, kd=kd: distill(cfg, "both", kd), done=kd / "prediction", train=train):
                runs[f"{kind}-kd-s{seed}"] = kd / "prediction"

    eval_cfg = config(args, work, 0, base).model_copy(
        update={"data": config(args, work, 0, base).data.model_copy(update={"max_train_examples": None})}
    )
    scores = {}
    for name, folder in runs.items():
        cached = folder / "scores.json"
        if not cached.is_file():
            cached.write_text(json.dumps({s: evaluate(eval_cfg, folder, s) for s in ("dev", "test")}))
        scores[name] = json.loads(cached.read_text())
    speed = measure(runs, eval_cfg)
    report(work, args, runs, scores, speed)


def measure(runs: dict[str, Path], cfg) -> dict:
    """Batch-32 throughput and batch-1 latency of the teacher and one folder per student kind, side by side, on
    512 dev sentences (speed.py: all of dev, 5 repeats)."""
    from speed import load

    from tinydistill.speed import measure_speed

    picked = {"teacher": runs["teacher"]}
    for name, folder in runs.items():
        kind = name.split("-")[0]
        if name != "teacher" and kind not in picked and "-kd-" in name:
            picked[kind] = folder
    models, data, tok = load(picked, cfg.data.model_copy(update={"max_length": 128}), examples=512)
    return measure_speed(models, data, tok, batch_size=32, repeats=3, latency_examples=64)


def report(work: Path, args, runs, scores, speed) -> None:
    t = scores["teacher"]
    rows, kinds = [], [pred_kind(args, k) if k in PRED else k for k in args.students]
    lines = [
        f"# NER ({args.data}), {args.train_examples or 'all'} training sentences; teacher {args.epochs:g} epochs at "
        f"{args.teacher_lr:g}; KD {args.kd_epochs[0]:g} + {args.kd_epochs[1]:g} epochs, baseline "
        f"{sum(args.kd_epochs):g}, at {args.student_lr:g}",
        "",
        f"Teacher all-MiniLM-L6-v2 fine-tuned: dev F1 {t['dev']['f1']:.4f}, test F1 {t['test']['f1']:.4f} "
        f"({wall(runs['teacher']):.0f} s). Speed at batch 32 {speed['teacher']['examples_per_s']:.0f} sentences/s, "
        f"batch 1 {speed['teacher']['latency_ms']:.1f} ms.",
        "",
        "| student | recipe | dev F1 (mean, seeds) | test F1 (mean, seeds) | % of teacher test F1 | spread (test) "
        "| speed-up b32 | speed-up b1 | wall s / seed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        for recipe in ("kd", "finetune"):
            names = [n for n in runs if n.startswith(f"{kind}-{recipe}-")]
            if not names:  # every2pred shares every2's baselines
                continue
            dev = [scores[n]["dev"]["f1"] for n in names]
            test = [scores[n]["test"]["f1"] for n in names]
            walls = [wall(runs[n].parent if runs[n].name == "prediction" else runs[n]) for n in names]
            s = speed.get(kind)
            row = {
                "student": kind,
                "recipe": recipe,
                "dev_f1": dev,
                "test_f1": test,
                "kept_percent": 100 * statistics.mean(test) / t["test"]["f1"],
                "spread_test": max(test) - min(test),
                "speedup_b32": s["examples_per_s"] / speed["teacher"]["examples_per_s"] if s else None,
                "speedup_b1": speed["teacher"]["latency_ms"] / s["latency_ms"] if s else None,
                "wall_seconds": walls,
            }
            rows.append(row)
            lines.append(
                f"| {kind} | {recipe} | {statistics.mean(dev):.4f} ({', '.join(f'{x:.4f}' for x in dev)}) "
                f"| {statistics.mean(test):.4f} ({', '.join(f'{x:.4f}' for x in test)}) | {row['kept_percent']:.1f} "
                f"| {row['spread_test']:.4f} | {row['speedup_b32'] or 0:.2f} | {row['speedup_b1'] or 0:.2f} "
                f"| {statistics.mean(walls):.0f} |"
            )
    (work / "results.json").write_text(json.dumps({"scores": scores, "speed": speed, "rows": rows}, indent=1))
    (work / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
