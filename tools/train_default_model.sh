#!/usr/bin/env bash
# Train the shipped hand detector with the many-domain recipe (config/train_recipe.yaml) on
# this machine, in the background, surviving the shell; resume it with the same command.
#   tools/train_default_model.sh RUN_DIR [extra hand-tracker-train options for every stage]
# (HAND_TRACKER_STAGES_FOREGROUND=1 runs it in the foreground, printing to the terminal)
# Stages: RUN_DIR/base (the recipe's 'args'), then each entry of the recipe's 'stages' in order
# in RUN_DIR/<stage>, fine-tuning the best weights of the stage before and mining the false
# positives of its exported model. A finished stage (its export written) is skipped; an
# interrupted one resumes. Progress: RUN_DIR/train.log; the model is the last stage's export/
# (frozen graph, float and int8 TFLite, label_map.pbtxt, model_info.yaml with the calibrated
# score threshold, metrics.json); RUN_DIR/final names that stage.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
run="${1:?usage: $0 RUN_DIR [options]}"; shift
mkdir -p "$run"
run="$(cd "$run" && pwd)"
recipe="${HAND_TRACKER_RECIPE:-$here/config/train_recipe.yaml}"  # another recipe file: HAND_TRACKER_RECIPE
cd "$here"
stages=$(.venv/bin/python -c 'import sys, yaml
print(" ".join((yaml.safe_load(open(sys.argv[1])) or {}).get("stages") or {}))' "$recipe")

train_stage() {  # DIR [options]: one hand-tracker-train run, resumed or skipped when done
    local dir="$1"; shift
    if [[ -f "$dir/export/model_info.yaml" ]]; then echo "== $dir: done"; return; fi
    local resume=()
    if [[ -f "$dir/state.json" && -f "$dir/last.keras" ]]; then resume=(--resume); fi
    echo "== $dir: $(date -u +%FT%TZ) ${resume[*]:-new}"
    KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m hand_tracker_training.train \
        --recipe "$recipe" --out "$dir" "${resume[@]}" "$@"
}

all_stages() {
    train_stage "$run/base" "$@"
    local prev="$run/base"
    for stage in $stages; do
        train_stage "$run/$stage" --stage "$stage" --init "$prev/best.weights.h5" \
            --mine-model "$prev/export/model.tflite" "$@"
        prev="$run/$stage"
    done
    echo "$prev" > "$run/final"
    echo "== model: $prev/export ($(date -u +%FT%TZ))"
}

if [[ "${HAND_TRACKER_STAGES_FOREGROUND:-}" == 1 ]]; then
    all_stages "$@"
else
    HAND_TRACKER_STAGES_FOREGROUND=1 nohup nice -n 10 "$here/tools/train_default_model.sh" \
        "$run" "$@" >> "$run/train.log" 2>&1 < /dev/null &
    echo "started pid $! (stages: base $stages); log: $run/train.log"
fi
