#!/usr/bin/env bash
# Train the shipped hand detector with the many-domain recipe (config/train_recipe.yaml) on
# this machine, in the background, surviving the shell; resume it with the same command.
#   tools/train_default_model.sh RUN_DIR [extra hand-tracker-train options]
# Progress: RUN_DIR/train.log; at the end RUN_DIR/export/ holds the frozen graph, float and
# int8 TFLite, label_map.pbtxt, model_info.yaml (calibrated score threshold) and metrics.json.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
run="${1:?usage: $0 RUN_DIR [options]}"; shift
mkdir -p "$run"
resume=()
if [[ -f "$run/state.json" && -f "$run/last.keras" ]]; then resume=(--resume); fi
cd "$here"
nohup nice -n 10 env KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2 \
    .venv/bin/hand-tracker-train --recipe config/train_recipe.yaml --out "$run" \
    "${resume[@]}" "$@" >> "$run/train.log" 2>&1 &
echo "started pid $! (${resume[*]:-new run}); log: $run/train.log"
