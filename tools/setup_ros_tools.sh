#!/usr/bin/env bash
# Install the ROS 2 command-line tools that are not published as wheels (launch, launch_ros,
# launch_testing, launch_pytest, ros2cli and its verbs, rosidl_runtime_py, composition_interfaces)
# from their unmodified sources into .venv, so that `.venv/bin/ros2 launch|run|topic|param|node|
# lifecycle` work on a pip-only machine and the tests can launch the package for real.
# Run tools/setup_venv.sh first. Re-runnable: finished packages are skipped.
#   tools/setup_ros_tools.sh [VENDOR_DIR]      (default ../shared/vendor/ros2)
#   tools/setup_ros_tools.sh --distro jazzy    the same into .venv-jazzy (tools/distro.sh)
# Not needed on a ROS 2 machine (apt has all of them) nor for `hand-tracker run`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tools/distro.sh
PY=$VENV/bin/python
VENDOR=$(realpath "${ARGS[0]:-$ROOT/../shared/vendor/ros2}")
say() { printf '\033[1m[ros-tools]\033[0m %s\n' "$*"; }
[ -x "$PY" ] || { echo "no $VENV: run tools/setup_venv.sh --distro $DISTRO first" >&2; exit 1; }
[ -d "$VENDOR/ros2cli" ] || { echo "no ROS 2 tool sources in $VENDOR" >&2; exit 1; }
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE || true
STAMPS=$VENV/.ros_tools
mkdir -p "$STAMPS"

req_hash=$(sha1sum tools/requirements-ros-tools.txt | cut -c1-40)
if [ "$(cat "$STAMPS/requirements.sha1" 2>/dev/null)" != "$req_hash" ]; then
  say "installing their PyPI dependencies (tools/requirements-ros-tools.txt)"
  "$PY" -m pip install -q -r tools/requirements-ros-tools.txt
  echo "$req_hash" > "$STAMPS/requirements.sha1"
fi

# A package is (re)installed when its source changed: stamp = hash of its file list and mtimes.
src_hash() { (cd "$1" && find . -type f -not -path '*/__pycache__/*' -printf '%p %s %T@\n' \
  | sort | sha1sum | cut -c1-40); }

# composition_interfaces is an interface package (launch_ros imports it): build it like msg/.
export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV PATH=$VENV/bin:$PATH
h=$(src_hash "$VENDOR/composition_interfaces")
if [ "$(cat "$STAMPS/composition_interfaces" 2>/dev/null)" != "$h" ]; then
  say "building composition_interfaces"
  "$VENV/bin/colcon" --log-base "$VENV/colcon/log" build --merge-install \
    --install-base "$VENV" --build-base "$VENV/colcon/build" \
    --base-paths "$VENDOR/composition_interfaces" --packages-select composition_interfaces \
    --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
  echo "$h" > "$STAMPS/composition_interfaces"
fi

# Pure-Python packages, dependencies first. Not launch_testing_ros: its pytest plugin needs
# launch_testing's, which pytest 9 cannot load (see pytest.ini). --no-deps: their
# install_requires name ROS packages by their ROS names, which the wheels (ros-*) do not provide
# under those names.
PACKAGES=(rosidl_runtime_py launch launch_xml launch_yaml launch_ros launch_testing
  launch_pytest ros2cli ros2pkg ros2node ros2service ros2topic ros2param
  ros2run ros2launch ros2lifecycle ros2interface ros2action ros2component)
for pkg in "${PACKAGES[@]}"; do
  [ -d "$VENDOR/$pkg" ] || { say "skipping $pkg (not in $VENDOR)"; continue; }
  h=$(src_hash "$VENDOR/$pkg")
  [ "$(cat "$STAMPS/$pkg" 2>/dev/null)" = "$h" ] && continue
  say "installing $pkg"
  # a copy: pip builds in place and must not write into the shared, read-only sources
  tmp=$(mktemp -d)
  cp -r "$VENDOR/$pkg" "$tmp/"
  "$PY" -m pip install -q --no-deps --no-build-isolation "$tmp/$pkg"
  rm -rf "$tmp"
  echo "$h" > "$STAMPS/$pkg"
done

# ament_index (ros2 run/launch/pkg) needs AMENT_PREFIX_PATH, which the wheels never set: put the
# venv on it at interpreter start-up, whether or not the venv is activated, keeping any prefixes
# already there (a sourced ROS installation).
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$site/hand_tracker_ament_prefix_path.pth" <<'PTH'
import os, sys; _p = [x for x in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if x]; os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join(_p if sys.prefix in _p else [sys.prefix] + _p)
PTH

env -u AMENT_PREFIX_PATH "$VENV/bin/ros2" pkg prefix hand_tracker > /dev/null
"$PY" -c 'import launch, launch_ros, launch_testing, launch_pytest, composition_interfaces.srv'
say "ok: $VENV/bin/ros2 ($(ls "$VENV/bin/ros2"))"
