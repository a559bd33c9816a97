#!/usr/bin/env bash
# Fetch MediaPipe's hand models (Apache-2.0) into models/mediapipe/: the palm detector and the
# hand-landmark model, full and lite, as shipped in the PyPI wheel mediapipe==0.10.14 (later
# wheels no longer carry them). The wheel is downloaded without dependencies (mediapipe is not
# installed and is not a run-time dependency: LiteRT runs these files), the four .tflite files
# and the licence are extracted and their sha256 checked. Nothing is fetched at run time.
# Safe to re-run: files that are present with the right checksum are kept.
#   tools/fetch_mediapipe_models.sh                 # into models/mediapipe/ of this checkout
#   PYTHON=/path/to/python tools/fetch_mediapipe_models.sh   # the pip to download with
# Colcon route: run it once before `colcon build` (models/ is installed to share/hand_tracker).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-$PWD/models/mediapipe}
PYTHON=${PYTHON:-python3}
VERSION=0.10.14
say() { printf '\033[1m[mediapipe models]\033[0m %s\n' "$*"; }

declare -A SHA256=(
  [hand_landmark_full.tflite]=11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3
  [hand_landmark_lite.tflite]=048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6
  [palm_detection_full.tflite]=1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54
  [palm_detection_lite.tflite]=e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18
  [LICENSE]=8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8
)
declare -A MEMBER=(
  [hand_landmark_full.tflite]=mediapipe/modules/hand_landmark/hand_landmark_full.tflite
  [hand_landmark_lite.tflite]=mediapipe/modules/hand_landmark/hand_landmark_lite.tflite
  [palm_detection_full.tflite]=mediapipe/modules/palm_detection/palm_detection_full.tflite
  [palm_detection_lite.tflite]=mediapipe/modules/palm_detection/palm_detection_lite.tflite
  [LICENSE]=mediapipe-$VERSION.dist-info/LICENSE
)

write_notice() {  # attribution beside the files (the wheel has no NOTICE of its own)
  cat > "$DEST/NOTICE" <<NOTICE
MediaPipe hand models (palm_detection_{full,lite}.tflite, hand_landmark_{full,lite}.tflite)
Copyright The MediaPipe Authors (Google LLC). Licensed under the Apache License, Version 2.0
(LICENSE in this folder). Extracted unchanged from the PyPI wheel mediapipe==$VERSION
(mediapipe/modules/palm_detection/, mediapipe/modules/hand_landmark/) by
tools/fetch_mediapipe_models.sh, which checks their sha256. Model cards:
https://github.com/google-ai-edge/mediapipe/blob/master/docs/solutions/hands.md
NOTICE
}
ok() { [ -f "$DEST/$1" ] && [ "$(sha256sum "$DEST/$1" | cut -c1-64)" = "${SHA256[$1]}" ]; }
missing=()
for name in "${!SHA256[@]}"; do ok "$name" || missing+=("$name"); done
if [ ${#missing[@]} -eq 0 ]; then
  [ -f "$DEST/NOTICE" ] || write_notice
  say "present and verified in $DEST"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading mediapipe==$VERSION (wheel only, no dependencies)"
# Any platform's wheel carries the same files: ask for one explicitly so that this works
# whatever the local interpreter and machine are.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --dest "$tmp" \
  --platform manylinux_2_17_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
  "mediapipe==$VERSION"
wheel=$(ls "$tmp"/mediapipe-*.whl)
mkdir -p "$DEST"
"$PYTHON" - "$wheel" "$DEST" "${missing[@]/#/}" <<PYEOF
import sys, zipfile
members = {$(for n in "${!MEMBER[@]}"; do printf "'%s': '%s', " "$n" "${MEMBER[$n]}"; done)}
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with open(f'{dest}/{name}', 'wb') as f:
            f.write(z.read(members[name]))
PYEOF
for name in "${missing[@]}"; do
  if ! ok "$name"; then
    echo "[mediapipe models] sha256 mismatch for $DEST/$name (expected ${SHA256[$name]})" >&2
    rm -f "$DEST/$name"
    exit 1
  fi
done
write_notice
say "verified ${missing[*]} in $DEST"
