#!/usr/bin/env bash
# Teacher-output cache: stage 4 of the demo with a live teacher vs cached logits, alternated, 2 rounds.
# Needs a finished demo run (make demo):  bash benchmarks/cache/run.sh [demo_runs/bbc]
# Each cached run starts from an empty cache, so its wall time includes computing the logits once.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${1:-demo_runs/bbc}
OUT=$(mktemp -d)
for mode in false true false true; do
  start=$(date +%s.%N)
  HF_HUB_OFFLINE=1 TINYDISTILL_CACHE="$OUT/cache-$RANDOM" .venv/bin/tinydistill --quiet distill --stage prediction \
    --teacher "$D/2-teacher" --student "$D/3-intermediate" \
    -s data.task=classification -s data.train_file="$D/data/train.csv" -s data.dev_file="$D/data/dev.csv" \
    -s data.max_length=64 -s prediction.train.epochs=3 -s prediction.train.learning_rate=1e-4 \
    -s prediction.losses.temperature=2 -s prediction.teacher_cache=$mode -s report.enabled=false -o "$OUT/run-$mode"
  end=$(date +%s.%N)
  python3 -c "import json,sys; m=json.load(open('$OUT/run-$mode/metrics.json')); print(f'cache=$mode wall {$end-$start:.1f} s, training loop {m[\"train_seconds\"]} s, dev accuracy {m[\"dev\"][\"accuracy\"]:.4f}')"
done
