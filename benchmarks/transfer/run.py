"""Transfer-set gain (issue 15): prediction-layer distillation with 2,000 labelled SST-2 sentences alone, or with
40,000 more sentences of SST-2's training set used without their labels (data.transfer_files).

    python -m benchmarks.transfer.run WORK [--labelled 2000] [--transfer 40000] [--seeds 1 2 3]
                                           [--students every2] [--epochs 3] [--transfer-epochs 1]

Teacher: all-MiniLM-L6-v2 fine-tuned on the labelled sentences (3 epochs). Students (the same start for both
variants): every2 = every 2nd layer of the fine-tuned teacher; tinybert4 = tinybert-4l-312d, random init.
Soft loss only (T 1). Dev accuracy on SST-2's full dev set. Writes WORK/results.json and WORK/results.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
from pathlib import Path

from benchmarks.common import once
from tinydistill.model_folders import minilm_path

ROOT = Path(__file__).resolve().parents[2]
SST2 = ROOT.parent / "shared" / "data" / "glue" / "SST-2"
STUDENTS = {"every2": {"every_k_teacher_layers": 2}, "tinybert4": {"preset": "tinybert-4l-312d"}}


def split(work: Path, labelled: int, transfer: int) -> tuple[Path, Path]:
    with (SST2 / "train.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    random.Random(0).shuffle(rows)
    train, more = work / "train.tsv", work / "transfer.txt"
    with train.open("w", encoding="utf-8") as fh:
        fh.write("sentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n" for r in rows[:labelled]))
    more.write_text("".join(r["sentence"] + "\n" for r in rows[labelled : labelled + transfer]), encoding="utf-8")
    return train, more


def config(train: Path, teacher: str, seed: int, epochs: float, student=None, transfer=None):
    from tinydistill.config import config_from_dict

    data = {
        "task": "classification",
        "labels": ["0", "1"],
        "train_file": str(train),
        "dev_file": str(SST2 / "dev.tsv"),
        "text_column": "sentence",
        "max_length": 64,
    }
    if transfer:
        data["transfer_files"] = [str(transfer)]
    tree = {
        "seed": seed,
        "teacher": teacher,
        "data": data,
        "report": {"enabled": False},
        "finetune": {"train": {"epochs": 3, "batch_size": 32, "learning_rate": 5e-5}},
        "prediction": {"train": {"epochs": epochs, "batch_size": 32, "learning_rate": 1e-4}},
    }
    if student:
        tree["student"] = student
    return config_from_dict(tree)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("--labelled", type=int, default=2000)
    p.add_argument("--transfer", type=int, default=40000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--students", nargs="+", default=["every2"], choices=list(STUDENTS))
    p.add_argument("--epochs", type=float, default=3, help="epochs over the labelled set alone")
    p.add_argument("--transfer-epochs", type=float, default=1, help="epochs over labelled + transfer")
    args = p.parse_args()

    from tinydistill.stages import distill, finetune

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    train, more = split(work, args.labelled, args.transfer)
    teacher = once(work / "teacher", lambda: finetune(config(train, str(minilm_path()), 0, 3), work / "teacher"))
    results: dict[str, dict] = {"teacher": json.loads((teacher / "metrics.json").read_text())["dev"]}
    for kind in args.students:
        for seed in args.seeds:
            for variant, extra, epochs in (("alone", None, args.epochs), ("transfer", more, args.transfer_epochs)):
                out = work / f"{kind}-{variant}-s{seed}"
                cfg = config(train, str(teacher), seed, epochs, STUDENTS[kind], extra)
                once(out, lambda cfg=cfg, out=out: distill(cfg, "prediction", out))
                m = json.loads((out / "metrics.json").read_text())
                wall = float((out / "wall_seconds.txt").read_text())
                results[out.name] = {"accuracy": m["dev"]["accuracy"], "steps": m["steps"], "wall_seconds": wall}
    lines = [
        f"# Transfer set: {args.labelled} labelled SST-2 sentences, +{args.transfer} without labels",
        "",
        f"Teacher (MiniLM-L6 fine-tuned on the labelled set): dev accuracy {results['teacher']['accuracy']:.4f}",
        "",
        "| student | data | epochs | steps | dev accuracy (mean) | per seed | wall s (mean) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for kind in args.students:
        for variant, epochs in (("alone", args.epochs), ("transfer", args.transfer_epochs)):
            runs = [results[f"{kind}-{variant}-s{s}"] for s in args.seeds]
            acc = [r["accuracy"] for r in runs]
            lines.append(
                f"| {kind} | {'labelled only' if variant == 'alone' else 'labelled + transfer'} | {epochs:g} "
                f"| {runs[0]['steps']} | {statistics.mean(acc):.4f} | {', '.join(f'{a:.4f}' for a in acc)} "
                f"| {statistics.mean(r['wall_seconds'] for r in runs):.0f} |"
            )
    (work / "results.json").write_text(json.dumps(results, indent=1))
    (work / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
