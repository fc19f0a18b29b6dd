"""Teacher-logit cache keyed per row: a training set grown by new rows (augmented copies, a transfer set) computes
only those, and a cached set is read back. Teacher: all-MiniLM-L6-v2 with a 2-label head; rows: SST-2 training
sentences (max length 64); each round starts from an empty cache; medians over rounds.

    python -m benchmarks.cache.rows WORK [--rows 8000] [--new 8000] [--repeats 3]
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import parser, write_result

SST2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue" / "SST-2" / "train.tsv"


def _sentences(count: int) -> list[str]:
    with SST2.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows[:count]]


def _round(teacher, tokenizer, originals, grown) -> dict[str, float]:
    """Seconds of: the originals from an empty cache; the grown set after them; the grown set from an empty cache
    (what a key over the whole set paid); the grown set once more (all of it read back)."""
    from tinydistill.cache import teacher_logits

    def seconds(data, cache: Path) -> float:
        start = time.perf_counter()
        teacher_logits(teacher, data, tokenizer, 64, cache)
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        return {
            "originals, empty cache": seconds(originals, Path(a)),
            "originals + new, originals cached": seconds(grown, Path(a)),
            "originals + new, empty cache": seconds(grown, Path(b)),
            "originals + new, all cached": seconds(grown, Path(a)),
        }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rows", type=int, default=8000, help="original rows")
    p.add_argument("--new", type=int, default=8000, help="rows added to them")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from tinydistill.data.loaders import EncodedDataset
    from tinydistill.model_folders import minilm_path
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.tasks import SequenceClassification

    torch.manual_seed(args.seeds[0])
    teacher = load_classifier(str(minilm_path()), SequenceClassification("sst-2", ["0", "1"], "accuracy")).eval()
    tokenizer = load_tokenizer(str(minilm_path()))
    texts = _sentences(args.rows + args.new)
    encoded = [dict(tokenizer(t, truncation=True, max_length=64)) for t in texts]
    originals, grown = EncodedDataset(encoded[: args.rows]), EncodedDataset(encoded)
    rounds = [_round(teacher, tokenizer, originals, grown) for _ in range(args.repeats)]
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    lines = [
        f"Teacher-logit cache, {args.rows:,} original rows + {args.new:,} new, medians of {args.repeats} rounds "
        f"({torch.get_num_threads()} threads)",
        "",
        "| pass | seconds (rounds) | median |",
        "|---|---|---:|",
        *(f"| {k} | {', '.join(f'{r[k]:.1f}' for r in rounds)} | {medians[k]:.1f} |" for k in medians),
    ]
    write_result(
        args.work, "rows", {"rows": args.rows, "new": args.new, "rounds": rounds, "medians": medians}, "\n".join(lines)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
