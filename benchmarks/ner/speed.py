"""NER teacher vs students, speed only, on all 3,250 CoNLL-2003 dev sentences (issue 14's ">= 2x" target).

    python -m benchmarks.ner.speed OUT.json TEACHER STUDENT [STUDENT ...] [--repeats 5]

Batch-32 throughput and batch-1 latency (64 sentences), every model timed in turn within each repeat (interleaved,
so the host's noise hits them alike), medians of --repeats; and the FLOP ratio of one batch-32 forward pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NER = Path(__file__).resolve().parents[3] / "shared" / "data" / "ner" / "conll2003"


def load(folders: dict[str, Path], cfg, examples: int | None = None) -> tuple[dict, object, object]:
    """(models, dev rows, tokenizer): each folder's tagger, and the first ``examples`` dev sentences (default all)
    in the tokenization of ``folders["teacher"]``."""
    from tinydistill.data.readers import read_split
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.tasks import task_info

    task = task_info(cfg)
    tok = load_tokenizer(str(folders["teacher"]))
    data = task.encode(read_split(cfg, "dev", task), tok, cfg.max_length)
    return {k: load_classifier(str(f), task) for k, f in folders.items()}, data.head(examples or len(data)), tok


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("teacher", type=Path)
    p.add_argument("students", type=Path, nargs="+")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    from tinydistill.bench import forward_flops
    from tinydistill.config import DataConfig
    from tinydistill.data.loaders import inputs_only, make_loader
    from tinydistill.speed import measure_speed

    folders = {"teacher": args.teacher} | {s.name: s for s in args.students}
    models, data, tok = load(folders, DataConfig(task="ner", dir=str(NER), max_length=128))
    batch = next(iter(make_loader(inputs_only(data), tok, 32, shuffle=False)))
    flops = {k: forward_flops(m, batch) for k, m in models.items()}
    speed = measure_speed(models, data, tok, batch_size=32, repeats=args.repeats, latency_examples=64)
    t = speed["teacher"]
    out = {
        k: v
        | {
            "speedup_b32": v["examples_per_s"] / t["examples_per_s"],
            "speedup_b1": t["latency_ms"] / v["latency_ms"],
            "flop_ratio": flops["teacher"] / flops[k],
            "layers": models[k].config.num_hidden_layers,
        }
        for k, v in speed.items()
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for k, v in out.items():
        print(
            f"{k}: {v['layers']} layers, {v['examples_per_s']:.0f} sent/s ({v['speedup_b32']:.2f}x), "
            f"{v['latency_ms']:.1f} ms ({v['speedup_b1']:.2f}x), FLOP ratio {v['flop_ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
