#!/usr/bin/env bash
# Throughput benchmark (issue 3): per-step cost and the end-to-end SST-2 row, contenders side by side.
#   bash benchmarks/throughput/run.sh [WORK_DIR]        (~45 min on 2 CPU cores; run it on a quiet machine)
# TextBrewer 0.2.1.post1 is installed into benchmarks/throughput/.textbrewer (its own folder, put on
# PYTHONPATH for the TextBrewer contenders only), never into the package's dependencies.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${1:-$ROOT/runs/throughput}
make -C "$ROOT" install >/dev/null
PY=$ROOT/.venv/bin/python
[ -d "$HERE/.textbrewer/textbrewer" ] || $PY -m pip install --quiet --no-deps --target "$HERE/.textbrewer" textbrewer==0.2.1.post1
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$WORK"
cd "$ROOT"
$PY -m benchmarks.throughput.steps "$WORK/steps" --steps "${STEPS:-8}" --rounds "${ROUNDS:-3}" | tee "$WORK/steps.md"
$PY -m benchmarks.throughput.e2e "$WORK/e2e" --rounds "${E2E_ROUNDS:-2}" | tee "$WORK/e2e.md"
