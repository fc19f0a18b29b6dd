#!/usr/bin/env bash
# The MPNet table at full data on CPU: all 67,349 SST-2 training sentences, 1 seed, resumable (run it again after an
# interrupt: the teacher, its logits and every finished stage are kept; an unfinished stage continues from its newest
# checkpoint).
#   bash benchmarks/quality/cpu_full.sh WORK
# 1. the temperature, chosen on dev: b for 1,000 steps at T = 1, 2, 4 (the first call fine-tunes the teacher on all of
#    train, 1 epoch, and caches its logits for every training sentence);
# 2. a, b, g for 4,210 steps (2 epochs of train at 32) at the chosen T; g's transfer set is one GloVe-augmented copy of
#    each training sentence (4,210 steps see train and the copies once each);
# 3. all-MiniLM-L6-v2 with the better of b and g (f), then d (MiniLMv2 relations 2,105 steps, then b 2,105 steps).
# Results: WORK/main/results.{md,json}; the sweep's in WORK/temperature-T/.
set -euo pipefail
WORK=${1:?usage: cpu_full.sh WORK}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY="$ROOT/.venv/bin/python"
export HF_HUB_OFFLINE=1
make -C "$ROOT" install >/dev/null
cd "$ROOT"
RUN=("$PY" -m benchmarks.quality.mpnet --teacher-examples 67349 --train-examples 67349 --seeds 1 --batch-size 32)
TEMPS=(1 2 4)
for t in "${TEMPS[@]}"; do "${RUN[@]}" "$WORK/temperature-$t" --steps 1000 --temperature "$t" --variants b; done
T=$("$PY" -c 'import json, sys
acc = {t: next(r["mean"] for r in json.load(open(f"{sys.argv[1]}/temperature-{t}/results.json"))["rows"]
            if r["variant"] == "b") for t in sys.argv[2:]}
print(max(acc, key=acc.get))' "$WORK" "${TEMPS[@]}")
echo "temperature chosen on dev: $T"
MAIN=("${RUN[@]}" "$WORK/main" --steps 4210 --temperature "$T" --augment-copies 1)
"${MAIN[@]}" --variants b g a
RECIPE=$("$PY" -c 'import json, sys
rows = {r["variant"]: r["mean"] for r in json.load(open(sys.argv[1]))["rows"]}
print("transfer" if rows["g"] > rows["b"] else "prediction")' "$WORK/main/results.json")
echo "L6 recipe: $RECIPE"
"${MAIN[@]}" --variants b g a f d --recipe "$RECIPE"
