#!/usr/bin/env bash
# Train the default MOSAIC model for a wall-time budget, then the window baseline for the same
# number of steps (the same command with --arch window), on one GPU. Evaluation runs afterwards,
# anywhere, with `mosaic eval ... --model OUT/default --baseline OUT/window`.
#
#   scripts/train_pair_gpu.sh OUT_DIR [SECONDS=380]
#
# OUT_DIR receives default/{model.safetensors,metrics.json,MODEL.md}, window/{model.pt,metrics.json}
# and the two training logs (the checkpoints with optimizer state stay in WORK).
# Knobs (environment): DEVICE (cuda), PRESET (default), WORKERS (6), WORK (/tmp/mosaic-pair), GRAPH
# (--cuda-graph for both runs; empty for none),
# EXTRA (more options for both runs, e.g. "--steps 3" for a dry run on a CPU), INIT (a folder
# holding default/ and window/ of an earlier pair: a second stage starts from those weights;
# give it another --seed in EXTRA so that it sees other data).
set -uo pipefail
OUT=${1:?usage: scripts/train_pair_gpu.sh OUT_DIR [SECONDS]}
BUDGET=${2:-380}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-default}
WORKERS=${WORKERS:-6}
WORK=${WORK:-/tmp/mosaic-pair}
EXTRA=${EXTRA:-}
INIT=${INIT:-}
# every step replayed from CUDA graphs (MOSAIC: about 3x the steps in the same time on an H100, the
# baseline about 1.4x; the same losses as eager); GRAPH= turns it off (and must, on a CPU)
GRAPH=${GRAPH---cuda-graph}
init() { [ -n "$INIT" ] && echo "--init $INIT/$1"; }
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/default" "$OUT/window" "$WORK"

echo "== mosaic: $PRESET for $BUDGET s on $DEVICE"
# --steps far past what the budget allows: the time budget, not the preset's step count, ends the
# run (with CUDA graphs the preset's 3,000 steps take about 40 s on an H100); EXTRA may override it
$PY -m engine.train --preset "$PRESET" --device "$DEVICE" --time-budget "$BUDGET" --workers "$WORKERS" \
    --steps 10000000 --out "$WORK/default" $(init default) $GRAPH $EXTRA > "$OUT/train_default.log" 2>&1
RC=$?
echo "rc $RC"; tail -c 1500 "$OUT/train_default.log"
# a failed run may have left an older model in WORK: never copy that out as this run's
[ "$RC" -eq 0 ] || { echo "the mosaic run failed (rc $RC): nothing copied"; exit 1; }
cp "$WORK/default/model.safetensors" "$WORK/default/metrics.json" "$WORK/default/MODEL.md" "$OUT/default/" \
    || { echo "no trained mosaic model"; exit 1; }
STEPS=$($PY -c "import json,sys;print(json.load(open(sys.argv[1]))['steps_done'])" "$WORK/default/metrics.json")
echo "== window baseline: $PRESET --arch window for the same $STEPS steps"
$PY -m engine.train --preset "$PRESET" --arch window --device "$DEVICE" --steps "$STEPS" --workers "$WORKERS" \
    --out "$WORK/window" $(init window) $GRAPH $EXTRA > "$OUT/train_window.log" 2>&1
RC=$?
echo "rc $RC"; tail -c 800 "$OUT/train_window.log"
[ "$RC" -eq 0 ] || { echo "the window run failed (rc $RC): nothing copied"; exit 1; }
cp "$WORK/window/model.pt" "$WORK/window/metrics.json" "$OUT/window/" || { echo "no window model"; exit 1; }
