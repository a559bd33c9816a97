# Sourced by tools/setup_venv.sh and tools/setup_ros_tools.sh: which ROS 2 distribution's
# PyPI wheels, and so which venv and which pinned requirements.
#   --distro kilted (default): .venv,        requirements.txt
#   --distro jazzy:            .venv-jazzy,  requirements-jazzy.txt
# Sets DISTRO, VENV, REQUIREMENTS and ARGS (the command line without --distro NAME).
DISTRO=kilted
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --distro) DISTRO=${2:?--distro needs a name: kilted or jazzy}; shift 2 ;;
    --distro=*) DISTRO=${1#--distro=}; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
case $DISTRO in
  kilted) VENV=$ROOT/.venv; REQUIREMENTS=requirements.txt ;;
  jazzy) VENV=$ROOT/.venv-jazzy; REQUIREMENTS=requirements-jazzy.txt ;;
  *) echo "unknown --distro '$DISTRO' (kilted or jazzy; Humble has no PyPI wheels)" >&2; exit 2 ;;
esac
