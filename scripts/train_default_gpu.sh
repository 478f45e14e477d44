#!/usr/bin/env bash
# Train the default MOSAIC model on one GPU for a wall-time budget, then evaluate it.
#
#   scripts/train_default_gpu.sh OUT_DIR [TOTAL_SECONDS=300] [BASELINE=0]
#
# Run from the repository root with a python3 that has torch (+ triton); textual, typer and
# RestrictedPython are not needed. The tools eval needs toolsmith's sandbox and runs on the
# CPU machine afterwards:  mosaic eval tools --model OUT_DIR/model.safetensors
#
# TOTAL_SECONDS covers everything: a ~15 s smoke test, training (stopped and saved by
# --time-budget), then the recall and impulse evals (EVAL_SECONDS reserved, default 100).
# BASELINE=1 splits the training time between MOSAIC and the window baseline (the same
# command with --arch window) and evaluates both side by side.
#
# The training folders live in WORK (default /tmp/mosaic-gpu-run: the checkpoint with its
# optimizer state is 35 MB). OUT_DIR receives at most 8 files, each under 16 MB:
#   model.safetensors  MODEL.md (card with the eval numbers)  metrics.json  recall.json
#   recall.png  impulses.json  log.txt  [window.pt with BASELINE=1]
# Knobs (environment): EVAL_SECONDS, RECALL_FACTS (1,4,16,64), RECALL_DISTANCES
# (500,2000,16384 = up to 8x the 2,048-byte training length), RECALL_SAMPLES (4), WORKERS (10).
set -uo pipefail

OUT=${1:?usage: scripts/train_default_gpu.sh OUT_DIR [TOTAL_SECONDS] [BASELINE]}
TOTAL=${2:-300}
BASELINE=${3:-0}
EVAL_SECONDS=${EVAL_SECONDS:-100}
PY=${PYTHON:-python3}
WORKERS=${WORKERS:-10}
WORK=${WORK:-/tmp/mosaic-gpu-run}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu PRESET=tiny: a dry run of this script on a CPU
PRESET=${PRESET:-default}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
LOG="$OUT/log.txt"
: > "$LOG"
T0=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - T0) )); }
say() { echo "$@" | tee -a "$LOG"; }

say "== $(date -u +%FT%TZ) $($PY -c 'import torch;print("torch",torch.__version__,"cuda",torch.cuda.is_available(),torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')"

# 1. smoke test: a few tiny steps on CUDA with the default kernels; fall back to the naive
#    reference kernels if the Triton twins fail here.
if ! timeout 120 $PY -m engine.train --preset tiny --steps 3 --device "$DEVICE" --out "$WORK/smoke" --eval-every 0 \
        >> "$LOG" 2>&1; then
    say "smoke test failed with MOSAIC_KERNELS=${MOSAIC_KERNELS:-auto}; retrying with naive kernels"
    export MOSAIC_KERNELS=naive
    timeout 120 $PY -m engine.train --preset tiny --steps 3 --device "$DEVICE" --out "$WORK/smoke" --eval-every 0 \
        >> "$LOG" 2>&1 || { say "smoke test failed again:"; tail -20 "$LOG"; exit 1; }
fi
say "== smoke ok (MOSAIC_KERNELS=${MOSAIC_KERNELS:-auto}), $(left) s left"

# 2. training, stopped by the time budget (saves model + checkpoint + MODEL.md when time is up)
TRAIN=$(( $(left) - EVAL_SECONDS ))
[ "$BASELINE" = "1" ] && TRAIN=$(( TRAIN / 2 ))
(( TRAIN < 30 )) && TRAIN=30
say "== training mosaic for $TRAIN s"
$PY -m engine.train --preset "$PRESET" --device "$DEVICE" --time-budget "$TRAIN" --workers "$WORKERS" \
    --out "$WORK/mosaic" --json > "$WORK/train_mosaic.json" 2> >(tee -a "$LOG" >&2)
if [ "$BASELINE" = "1" ]; then
    say "== training window baseline for $TRAIN s"
    $PY -m engine.train --preset "$PRESET" --arch window --device "$DEVICE" --time-budget "$TRAIN" --workers "$WORKERS" \
        --out "$WORK/window" --json > "$WORK/train_window.json" 2> >(tee -a "$LOG" >&2)
fi
cp "$WORK/mosaic/model.safetensors" "$WORK/mosaic/metrics.json" "$OUT/" 2>/dev/null || say "no trained model!"
[ -f "$WORK/window/model.pt" ] && cp "$WORK/window/model.pt" "$OUT/window.pt"
[ -f "$WORK/window/metrics.json" ] && cat "$WORK/window/metrics.json" >> "$LOG"

# 3. evaluation on the held-out split (recall grid + plot, impulses)
say "== evaluating, $(left) s left"
BASE=()
[ "$BASELINE" = "1" ] && [ -f "$WORK/window/model.pt" ] && BASE=(--baseline "$WORK/window")
timeout $(( $(left) > 45 ? $(left) - 25 : 20 )) $PY -m engine.eval recall --model "$WORK/mosaic" "${BASE[@]}" \
    --facts "${RECALL_FACTS:-1,4,16,64}" --distance "${RECALL_DISTANCES:-500,2000,16384}" \
    --samples "${RECALL_SAMPLES:-4}" --device "$DEVICE" --plot "$OUT/recall.png" --json \
    > "$OUT/recall.json" 2>> "$LOG" || say "recall eval did not finish"
timeout 20 $PY -m engine.eval impulses --model "$WORK/mosaic" "${BASE[@]}" --device "$DEVICE" --json \
    > "$OUT/impulses.json" 2>> "$LOG" || say "impulse eval did not finish"
$PY - "$WORK/mosaic" "$OUT" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys, pathlib
run, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
from engine.train.modelcard import refresh_card
refresh_card(run, out / "recall.json", out / "impulses.json", out=out)
try:
    from engine.eval.run import recall_table
    print(recall_table(json.loads((out / "recall.json").read_text())))
    for name, r in json.loads((out / "impulses.json").read_text())["results"].items():
        print(name, "impulses fitting", r["fitting"], r["by_kind"])
except Exception as exc:  # noqa: BLE001
    print("eval results incomplete:", exc)
EOF
say "== done in $(( $(date +%s) - T0 )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
