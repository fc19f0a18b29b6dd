"""Stage 3 on cached teacher targets vs a live teacher (issue 17, item 4): wall time and accuracy, side by side.

The MPNet teacher of benchmarks/quality/mpnet.py (all-mpnet-base-v2 fine-tuned on 20k SST-2 sentences, cached) into
paraphrase-MiniLM-L3-v2, intermediate distillation (--recipe tinybert or minilm) for --epochs epochs over
--train-examples sentences, then the same prediction stage for each. Three stage-3 runs in one process, one after
the other: live (teacher_cache false), cached with the entry built first (teacher_cache true, an empty cache), and
cached again (the entry exists: what later seeds, epochs or runs on the same data pay). Reports each stage-3 wall
time (model loading and data included), the speed-ups over live, the cache's size and the dev accuracy after stage 4.

    python -m benchmarks.quality.target_cache WORK [--train-examples 2000] [--epochs 4] [--recipe tinybert]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from benchmarks.quality import mpnet
from benchmarks.quality import run as quality


def stage(cfg, which: str, out: Path) -> tuple[float, dict]:
    from tinydistill.stages import distill

    start = time.perf_counter()
    distill(cfg, which, out)
    return time.perf_counter() - start, json.loads((out / "metrics.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--train-examples", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=4, help="stage-3 epochs")
    ap.add_argument("--prediction-epochs", type=int, default=2)
    ap.add_argument("--recipe", default="tinybert", choices=list(mpnet.INTERMEDIATE))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny slices: checks the harness end to end")
    args = ap.parse_args()
    from tinydistill.config import StudentConfig, load_config
    from tinydistill.zoo import all_mpnet_base_v2, paraphrase_minilm_l3

    quality.BACKBONE["path"] = str(all_mpnet_base_v2())
    args.teacher_examples, args.batch_size, args.steps, args.eval_examples = 20000, 32, 2, None
    if args.smoke:
        args.train_examples, args.epochs, args.prediction_epochs, args.eval_examples = 64, 2, 1, 32
        args.teacher_examples = 128
    teacher_dir = quality.teacher(args)
    cache = args.work / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # the first cached run builds its entry
    base = mpnet.sets_for(args, args.seed, args.recipe, 384) + [
        f"teacher={teacher_dir}",
        f"student.checkpoint={paraphrase_minilm_l3()}",
        f"cache_dir={cache}",
        "intermediate.train.max_steps=null",
        f"intermediate.train.epochs={args.epochs}",
        "prediction.train.max_steps=null",
        f"prediction.train.epochs={args.prediction_epochs}",
    ]
    rows = []
    for name, how in (("live", "false"), ("cached, entry built", "true"), ("cached, entry exists", "true")):
        out = args.work / name.replace(", ", "-").replace(" ", "-")
        shutil.rmtree(out, ignore_errors=True)
        cfg = load_config(None, [*base, f"intermediate.teacher_cache={how}"])
        seconds, metrics = stage(cfg, "intermediate", out / "intermediate")
        row = {"run": name, "stage3_s": seconds, "stage3_train_loop_s": metrics["train_seconds"]}
        row["stage3_objective_after"] = metrics["objective_after"]["total"]  # on fixed training batches
        if name != "cached, entry exists":  # the same training as the run before it
            nxt = cfg.model_copy(update={"student": StudentConfig(checkpoint=str(out / "intermediate"))})
            _, pred = stage(nxt, "prediction", out / "prediction")
            row["dev_accuracy"] = pred["dev"]["accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    entries = list((cache / "teacher-targets").iterdir()) if (cache / "teacher-targets").is_dir() else []
    size = sum(f.stat().st_size for e in entries for f in e.iterdir())
    live = rows[0]["stage3_s"]
    for row in rows:
        row["speedup"] = live / row["stage3_s"]
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "cache_bytes": size, "rows": rows}
    (args.work / "target_cache.json").write_text(json.dumps(result, indent=2))
    lines = [
        "| stage 3 | wall s | train-loop s | x live | stage-3 objective after | dev acc after stage 4 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        acc = f"{100 * r['dev_accuracy']:.2f}" if "dev_accuracy" in r else "–"
        lines.append(
            f"| {r['run']} | {r['stage3_s']:.0f} | {r['stage3_train_loop_s']:.0f} | {r['speedup']:.2f} | "
            f"{r['stage3_objective_after']:.4f} | {acc} |"
        )
    lines.append(f"\ncache entry: {size / 1e9:.2f} GB for {args.train_examples} sentences")
    (args.work / "target_cache.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
