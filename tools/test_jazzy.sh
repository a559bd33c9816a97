#!/usr/bin/env bash
# The ROS-facing tests (pytest -m ros: nodes over DDS, parameters, lifecycle, bad input, signals,
# bags, `ros2 launch`) again on ROS 2 Jazzy: sets up .venv-jazzy from the Jazzy wheels
# (tools/setup_venv.sh --distro jazzy) with the ROS tools, and runs them there. The pure
# algorithm tests do not depend on the distribution and run once, in the Kilted suite.
#   tools/test_jazzy.sh [PYTEST_ARGS...]       e.g. tools/test_jazzy.sh -x test/test_lifecycle.py
set -euo pipefail
cd "$(dirname "$0")/.."
# Started from another venv's Python (its ROS wheels' start-up hook exports these), the Jazzy
# interpreter would load that venv's ROS libraries and fail (librcl_action.so).
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE LD_LIBRARY_PATH
tools/setup_venv.sh --distro jazzy
tools/setup_ros_tools.sh --distro jazzy
# the linters run once, in the Kilted suite (their wheels are not in requirements-jazzy.txt)
exec .venv-jazzy/bin/python -m pytest -m ros --ignore=test/test_flake8.py \
  --ignore=test/test_pep257.py "$@"
