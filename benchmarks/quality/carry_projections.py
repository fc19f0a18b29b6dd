"""Stage 3 starting from stage 1's hidden-state projections (TinyBERT's fit_dense carry-over) vs new ones.

One general-distilled student (MiniLM-L6 -> 2 x 312, Wikipedia passages) and one fine-tuned teacher (SST-2 slice,
3 epochs)
are shared; then stages 3 and 4 run twice per seed, `intermediate.carry_projections` true and false, same
steps, data and seeds. Prints the stage-3 objective at its start and end and the final dev accuracy.

    python -m benchmarks.quality.carry_projections [WORK] [--seeds 2] [--train 2000] [--steps 200] [--lr 1e-4]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from tinydistill.config import StudentConfig, load_config
from tinydistill.model_folders import minilm_path
from tinydistill.outputs import is_complete, read_metrics
from tinydistill.stages import distill, finetune, general

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path, nargs="?", default=ROOT / "runs" / "carry-projections")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps of stage 3 and of stage 4")
    ap.add_argument("--lr", type=float, default=1e-4, help="stage 4's learning rate (stage 3 uses 3e-4)")
    ap.add_argument("--glue", type=Path, default=ROOT.parent / "shared" / "data" / "glue")
    args = ap.parse_args()
    sets = [
        f"teacher={str(minilm_path())}",
        "data.task=sst-2",
        f"data.dir={args.glue / 'SST-2'}",
        f"data.max_train_examples={args.train}",
        "data.max_eval_examples=872",
        "data.max_length=64",
        "student={layers: 2, hidden: 312, heads: 12, ffn: 1200}",
        "report.enabled=false",
        f"general.corpus={args.glue.parent / 'corpus'}",
        "general.max_passages=8000",
        "general.max_length=64",
        "general.train.max_steps=400",
        "general.train.learning_rate=3e-4",
        "finetune.train.epochs=3",
        "finetune.train.learning_rate=5e-5",
        f"intermediate.train.max_steps={args.steps}",
        "intermediate.train.learning_rate=3e-4",
        f"prediction.train.max_steps={args.steps}",
        f"prediction.train.learning_rate={args.lr}",
        "prediction.losses.temperature=2",
    ]
    cfg = load_config(None, sets)
    g = args.work / "1-general"
    if not is_complete(g):
        general(cfg, g)
    t = args.work / "2-teacher"
    if not is_complete(t):
        finetune(cfg, t)
    rows = {True: [], False: []}
    for seed in range(args.seeds):
        for carry in (True, False):
            base = args.work / f"seed{seed}-carry-{carry}"
            run = cfg.model_copy(
                update={
                    "seed": seed,
                    "teacher": str(t),
                    "student": StudentConfig(checkpoint=str(g)),
                    "intermediate": cfg.intermediate.model_copy(update={"carry_projections": carry}),
                }
            )
            if not is_complete(base / "prediction"):
                distill(run, "both", base)
            inter, pred = read_metrics(base / "intermediate"), read_metrics(base / "prediction")
            rows[carry].append(
                {
                    "seed": seed,
                    "stage3_start": inter["objective_before"]["total"],
                    "stage3_end": inter["objective_after"]["total"],
                    "dev": pred["dev"]["accuracy"],
                }
            )
    print("| projections in stage 3 | stage-3 objective at start | at end | dev accuracy (mean ± std) | per seed |")
    print("|---|---:|---:|---:|---|")
    for carry, name in ((True, "carried over from stage 1"), (False, "new")):
        r = rows[carry]
        devs = [x["dev"] for x in r]
        print(
            f"| {name} | {statistics.mean(x['stage3_start'] for x in r):.3f} | "
            f"{statistics.mean(x['stage3_end'] for x in r):.3f} | {100 * statistics.mean(devs):.2f} ± "
            f"{100 * (statistics.stdev(devs) if len(devs) > 1 else 0):.2f} | "
            f"{', '.join(f'{100 * d:.2f}' for d in devs)} |"
        )
    (args.work / "results.json").write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
