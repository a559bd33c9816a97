#!/usr/bin/env bash
# Set up hand_tracker on a plain Linux box without ROS: a .venv with ROS 2 Kilted from PyPI
# wheels, TensorFlow, OpenCV, SciPy (requirements.txt, pinned), the package's interfaces (and a
# wire-compatible vision_msgs when the real one is missing) built into it with colcon, and the
# Python packages installed editable. Safe to re-run: finished steps are skipped.
#   PYTHON=python3.12 tools/setup_venv.sh      # choose the interpreter (3.10-3.12; default python3)
#   tools/setup_venv.sh --distro jazzy         # the same on the ROS 2 Jazzy wheels, in .venv-jazzy
#                                              # (requirements-jazzy.txt; see tools/distro.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tools/distro.sh
PYTHON=${PYTHON:-python3}
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# The ROS wheels' start-up hook leaks these; a different venv must not inherit them.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE || true

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' \
    || { echo "hand_tracker needs Python 3.10-3.12 (set PYTHON=...)" >&2; exit 1; }
  say "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python

req_hash=$(cat "$REQUIREMENTS" requirements-ml.txt | sha1sum | cut -c1-40)
if [ "$(cat "$VENV/.requirements.sha1" 2>/dev/null)" != "$req_hash" ]; then
  say "installing pinned requirements (ROS 2 ${DISTRO^} wheels, TensorFlow, OpenCV, ...)"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r "$REQUIREMENTS"
  echo "$req_hash" > "$VENV/.requirements.sha1"
fi

# The wheels' *_rosidl_generator_pyExport.cmake files name the wheel builder's Python and numpy
# include dirs; point them at this venv's before any rosidl_generate_interfaces() configures.
py_inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_inc=$("$PY" -c 'import numpy; print(numpy.get_include())')
{ grep -rl --include='*_rosidl_generator_pyExport.cmake' '/opt/python/' "$VENV/share" || true; } \
  | while read -r f; do
      sed -i -E "s#\"/opt/python/[^;\"]*/include/python3\.[0-9]+;/opt/python/[^;\"]*/numpy/_core/include\"#\"$py_inc;$np_inc\"#" "$f"
    done

export AMENT_PREFIX_PATH=$VENV
export CMAKE_PREFIX_PATH=$VENV
export PATH=$VENV/bin:$PATH
colcon_build() {  # colcon build into the venv itself; build products stay inside .venv
  local pkg=$1; shift  # remaining args: extra CMake arguments
  "$VENV/bin/colcon" --log-base "$VENV/colcon/log" build --merge-install --symlink-install \
    --install-base "$VENV" --build-base "$VENV/colcon/build" \
    --base-paths "${PKG_PATH[$pkg]}" --packages-select "$pkg" \
    --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF "$@"
}
declare -A PKG_PATH=([vision_msgs]=compat/vision_msgs [hand_tracker]=.)

# vision_msgs is not on PyPI: build the wire-compatible copy unless a real one is importable.
if [ -f "$VENV/share/vision_msgs/compat_from_hand_tracker" ] || ! "$PY" -c 'import vision_msgs.msg' 2>/dev/null; then
  say "building vision_msgs (wire-compatible 4.x subset from compat/vision_msgs)"
  colcon_build vision_msgs
  touch "$VENV/share/vision_msgs/compat_from_hand_tracker"
fi

PYTHON="$PY" tools/fetch_mediapipe_models.sh  # MediaPipe hand models into models/mediapipe/

say "building hand_tracker interfaces (msg/) and share files"
colcon_build hand_tracker -DHAND_TRACKER_INSTALL_PYTHON=OFF

setup_hash=$(sha1sum setup.py | cut -c1-40)
if [ "$(cat "$VENV/.setup_py.sha1" 2>/dev/null)" != "$setup_hash" ]; then
  say "installing hand_tracker_ros / hand_tracker_training (editable) and the commands"
  "$PY" -m pip install -q --no-deps --no-build-isolation -e .
  echo "$setup_hash" > "$VENV/.setup_py.sha1"
fi

"$PY" - <<'PYEOF'
import rclpy, cv2, numpy, scipy
from vision_msgs.msg import Detection2DArray
from hand_tracker.msg import TrackedHandArray, GestureEvent
import hand_tracker_ros, hand_tracker_training
from ament_index_python.packages import get_package_share_directory
print('[setup] ok: rclpy, vision_msgs, hand_tracker msgs, share dir', get_package_share_directory('hand_tracker'))
PYEOF
