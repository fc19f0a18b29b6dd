"""Does a student learn more from three teachers than from the best one? SST-2 on a 2-core CPU.

    python -m benchmarks.ensemble.run WORK [--train-examples 8000] [--teacher-seeds 1 2 3] [--seeds 1 2 3] [--mpnet]
        [--transfer N]

Teachers: all-MiniLM-L6-v2 (PyPI) fine-tuned on the first --train-examples SST-2 sentences (a seeded subset), once
per --teacher-seeds. Students, per --seeds: every 2nd layer of the teacher with the best dev accuracy, then
prediction-layer distillation (soft + hard, T=1, 3 epochs)
  single    from that best teacher alone
  ensemble  from the equal-weight mean of all the teachers' predictions (``teachers:``)
With --mpnet, a teacher of another family joins: all-mpnet-base-v2 (offline wheels, 12 x 768) fine-tuned on the same
sentences (lr 2e-5, seed 1), and two more students per seed, still every 2nd layer of the best MiniLM teacher:
  single-mpnet  from the MPNet teacher alone (each reads its own tokenization)
  mixed         from the equal-weight mean of the MPNet teacher and the two best MiniLM teachers
With --transfer N, every student also reads N more SST-2 training sentences, unlabelled, that no teacher's or
student's labelled subset holds (a seeded sample written to WORK/transfer-N.txt): ``data.transfer_files``, labelled
by its teacher or teachers; these students' folders and result files end in -tN.
Everything is scored on all of SST-2 dev (872 sentences; the GLUE test labels are not public). Resumable: finished
folders are skipped. Writes WORK/results.json and WORK/results.md.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path

from benchmarks.common import copied_start, once, parser, write_result
from tinydistill.model_folders import minilm_path

SST2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue" / "SST-2"


def config(args, seed: int, teacher: str, teacher_lr: float = 5e-5, transfer: Path | None = None, **top):
    from tinydistill.config import config_from_dict

    train = {"epochs": args.epochs, "batch_size": 32, "group_by_length": True}
    data = {"task": "sst-2", "dir": str(SST2), "max_train_examples": args.train_examples, "max_length": 64}
    return config_from_dict(
        {
            "seed": seed,
            "teacher": teacher,
            "data": {**data, **({"transfer_files": [str(transfer)]} if transfer else {})},
            "report": {"enabled": False},
            "student": {"every_k_teacher_layers": 2},
            "finetune": {"train": {**train, "learning_rate": teacher_lr}},
            "prediction": {"train": {**train, "learning_rate": 1e-4}, "losses": {"hard_weight": 1.0}},
            **top,
        }
    )


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(seeds=[1, 2, 3])
    p.add_argument("--teacher-seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--train-examples", type=int, default=8000)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--mpnet", action="store_true", help="add an all-mpnet-base-v2 teacher and its two students")
    p.add_argument("--transfer", type=int, default=0, help="unlabelled SST-2 sentences every student also reads")
    args = p.parse_args()

    from tinydistill.evaluate import evaluate
    from tinydistill.stages import distill, finetune

    work, base = args.work, str(minilm_path())
    work.mkdir(parents=True, exist_ok=True)
    teachers = {}
    for seed in args.teacher_seeds:
        folder = work / f"teacher-s{seed}"
        teachers[folder.name] = once(folder, lambda f=folder, s=seed: finetune(config(args, s, base), f))
    scores = {name: evaluate(config(args, 0, base), folder, "dev") for name, folder in teachers.items()}
    best = max(teachers, key=lambda name: scores[name]["accuracy"])
    runs = {"single": ({}, teachers[best]), "ensemble": ({"teachers": [str(f) for f in teachers.values()]}, None)}
    if args.mpnet:
        runs.update(_mpnet_runs(args, work, teachers, scores, best))
    transfer = transfer_file(work, args) if args.transfer else None
    for seed in args.seeds:
        for kind, (top, teacher) in runs.items():
            folder = work / f"{kind}{_suffix(args)}-s{seed}"
            cfg = config(args, seed, str(teacher or teachers[best]), transfer=transfer, **top)
            once(folder, lambda c=cfg, f=folder: distill(c, "prediction", f))
            scores[folder.name] = evaluate(config(args, 0, base), folder, "dev")
    write(work, args, scores, best)


def _suffix(args) -> str:
    return f"-t{args.transfer}" if args.transfer else ""


def transfer_file(work: Path, args) -> Path:
    """``args.transfer`` SST-2 training sentences outside every seed's labelled subset (seeded), one per line, written
    once (a resumed run keeps the file)."""
    from tinydistill.data.readers import kept_rows, read_split
    from tinydistill.tasks import task_info

    path = work / f"transfer-{args.transfer}.txt"
    if path.is_file():  # a resumed run reads the sentences its finished students read
        return path
    data = config(args, 0, "").data
    every = read_split(data.model_copy(update={"max_train_examples": None}), "train", task_info(data))
    used = set().union(*(kept_rows(data, "train", len(every), s) or () for s in {*args.seeds, *args.teacher_seeds}))
    free = [i for i in range(len(every)) if i not in used]
    if args.transfer > len(free):
        raise SystemExit(f"--transfer {args.transfer}: only {len(free):,} training sentences are outside every subset")
    path.write_text("".join(every.texts[i] + "\n" for i in sorted(random.Random(0).sample(free, args.transfer))))
    return path


def _mpnet_runs(args, work: Path, teachers: dict[str, Path], scores: dict, best: str) -> dict:
    """The MPNet teacher (fine-tuned and scored into ``teachers`` and ``scores``) and its students' settings: kind ->
    (config keys, the ``teacher:`` folder)."""
    from tinydistill.evaluate import evaluate
    from tinydistill.stages import finetune
    from tinydistill.tasks import task_info
    from tinydistill.zoo import all_mpnet_base_v2

    folder, minilm = work / "teacher-mpnet", sorted(teachers, key=lambda n: scores[n]["accuracy"], reverse=True)
    cfg = config(args, 1, str(all_mpnet_base_v2()), teacher_lr=2e-5)
    teachers[folder.name] = once(folder, lambda: finetune(cfg, folder))
    scores[folder.name] = evaluate(cfg, folder, "dev")
    start = copied_start(str(teachers[best]), work / "student-start", task_info(cfg.data), head=True)
    mixed = [str(teachers[n]) for n in (folder.name, *minilm[:2])]
    return {"single-mpnet": ({"student": {"checkpoint": str(start)}}, folder), "mixed": ({"teachers": mixed}, None)}


def write(work: Path, args, scores: dict, best: str) -> None:
    rows = [f"| {name} | {scores[name]['accuracy']:.4f} |" for name in scores if name.startswith("teacher")]
    summary = {}
    for kind in ("single", "ensemble", *(("single-mpnet", "mixed") if args.mpnet else ())):
        accs = [scores[f"{kind}{_suffix(args)}-s{s}"]["accuracy"] for s in args.seeds]
        summary[kind] = accs
        spread = f"{min(accs):.4f}-{max(accs):.4f}"
        rows.append(f"| student from {kind} ({len(accs)} seeds) | {statistics.mean(accs):.4f} ({spread}) |")
    more = f", plus {args.transfer} unlabelled ones for every student" if args.transfer else ""
    mpnet = " and all-mpnet-base-v2 (mixed: it and the two best MiniLM teachers)" if args.mpnet else ""
    head = (
        f"SST-2 dev (872), {args.train_examples} training sentences{more}, teachers all-MiniLM-L6-v2 with seeds "
        f"{args.teacher_seeds} (best: {best}){mpnet}; student every 2nd layer of the best MiniLM.\n\n"
        "| model | dev accuracy |\n|---|---:|\n"
    )
    write_result(
        work,
        f"results{_suffix(args)}",
        {"scores": scores, "best_teacher": best, "students": summary},
        head + "\n".join(rows),
    )
    print((work / f"results{_suffix(args)}.md").read_text())


if __name__ == "__main__":
    main()
