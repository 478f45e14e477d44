#!/usr/bin/env bash
# The next stage of the default model with its window baseline beside it, in two device calls of
# under 600 s each (a session's 15 minutes of GPU hold both, with the machine's start):
#
#   scripts/stage10_gpu.sh baseline OUT [SECONDS=540]   # call 1
#   scripts/stage10_gpu.sh stage OUT [SECONDS=110]      # call 2, on the same warm machine
#
# baseline: the window baseline's weights of stage 9 were not kept, so it is trained again from
#   scratch for the steps MOSAIC's nine stages took (34,451 steps of 16 x 1,536 bytes: the same
#   846.7M bytes) in one run on the current curriculum, into RUNS/window9 (kept on the machine
#   for call 2) and OUT/window9 (model.pt, metrics.json, the log). A run that SECONDS stop short
#   (exit 3) is continued by the same command (it resumes from its checkpoint).
# stage: MOSAIC from the shipped weights (engine/assets/default.safetensors) for SECONDS on MIX,
#   then the baseline from RUNS/window9 for the same steps (scripts/train_pair_gpu.sh), into
#   OUT/stage10/{default,window}. Evaluate afterwards on any machine:
#   mosaic eval tools|updates|recall|impulses --model OUT/stage10/default/model.safetensors
#   --baseline OUT/stage10/window/model.pt (the commands of MODEL.md; for tools also --split blind
#   --samples 4, the 224 blind-written held-out wordings).
# Knobs (environment): MIX (default "--tools-share 0.3 --more-phrases --tool-failures 0.1"), SEED
# (18), LR (3e-4), DEVICE (cuda), PRESET (default), STEPS (34451), WORKERS (6), GRAPH (--cuda-graph;
# empty on a CPU), RUNS (runs: the working folder, git-ignored, kept between calls on a warm
# machine), EXTRA (more options for every run, e.g. "--seq-len 64 --batch-size 2 --steps 3" for a
# dry run on a CPU).
set -uo pipefail
PHASE=${1:?usage: scripts/stage10_gpu.sh baseline|stage OUT [SECONDS]}
OUT=${2:?usage: scripts/stage10_gpu.sh baseline|stage OUT [SECONDS]}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-default}
STEPS=${STEPS:-34451}
WORKERS=${WORKERS:-6}
GRAPH=${GRAPH---cuda-graph}
MIX=${MIX:---tools-share 0.3 --more-phrases --tool-failures 0.1}
SEED=${SEED:-18}
LR=${LR:-3e-4}
EXTRA=${EXTRA:-}
RUNS=${RUNS:-runs}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUNS"
case "$PHASE" in
  baseline)
    BUDGET=${3:-540}
    RESUME=""; [ -f "$RUNS"/window9/checkpoint.pt ] && RESUME="--resume"
    echo "== window baseline: $PRESET --arch window, $STEPS steps from scratch ($BUDGET s at most) $RESUME"
    # the budget stops it by SIGINT, not --time-budget: the schedule stays by steps (a time budget
    # would anneal by time), and the trainer saves a checkpoint that --resume continues exactly
    timeout -s INT -k 60 "$BUDGET" $PY -m engine.train --preset "$PRESET" --arch window --device "$DEVICE" \
        --steps "$STEPS" --workers "$WORKERS" --out "$RUNS"/window9 $RESUME $GRAPH $EXTRA \
        > "$OUT/train_window9.log" 2>&1
    RC=$?
    if [ ! -f "$RUNS"/window9/model.pt ] || [ $RC -ne 0 ]; then
        if grep "checkpoint saved" "$OUT/train_window9.log"; then   # its last step and where it is
            echo "stopped by the budget: run the same command again to continue"; exit 3
        fi
        echo "rc $RC"; tail -c 1200 "$OUT/train_window9.log"; echo "no baseline model"; exit 1
    fi
    echo "rc $RC"; tail -c 1200 "$OUT/train_window9.log"
    mkdir -p "$OUT/window9"
    cp "$RUNS"/window9/model.pt "$RUNS"/window9/metrics.json "$OUT/window9/"
    DONE=$($PY -c "import json,sys;print(json.load(open(sys.argv[1]))['steps_done'])" \
        "$RUNS"/window9/metrics.json)
    echo "steps done: $DONE of $STEPS"
    ;;
  stage)
    BUDGET=${3:-110}
    [ -f "$RUNS"/window9/model.pt ] || { echo "no $RUNS/window9: run the baseline phase first"; exit 1; }
    rm -rf "$RUNS"/stage10    # a second try starts the pair afresh (the trainer refuses a used folder)
    mkdir -p "$RUNS"/init/default
    cp "$REPO/engine/assets/default.safetensors" "$RUNS"/init/default/model.safetensors
    rm -rf "$RUNS"/init/window && cp -r "$RUNS"/window9 "$RUNS"/init/window
    INIT="$RUNS/init" WORK="$RUNS/stage10" DEVICE="$DEVICE" PRESET="$PRESET" WORKERS="$WORKERS" \
        GRAPH="$GRAPH" EXTRA="--seed $SEED --lr $LR $MIX $EXTRA" PYTHON="$PY" \
        bash "$REPO/scripts/train_pair_gpu.sh" "$OUT/stage10" "$BUDGET"
    ;;
  *) echo "unknown phase $PHASE: baseline or stage"; exit 2 ;;
esac
