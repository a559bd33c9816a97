"""Code style the ROS way: ament_flake8 (ROS 2's flake8 configuration, lines up to 99)."""
import json
import subprocess
import sys

from lint_paths import lint_argv
import pytest

pytest.importorskip(
    'ament_flake8.main', reason='ament_flake8 is not installed (pip: ros-ament-flake8, '
    'requirements.txt; apt: ros-$ROS_DISTRO-ament-flake8)')

# flake8 checks files in forked worker processes. Forked from this pytest process, a worker
# inherits the LiteRT interpreters and DDS threads of the tests before it, and collecting an
# inherited interpreter there can hang for good (seen: Interpreter.__del__ in a flake8 worker
# after test_launch.py). So it runs in an interpreter of its own.
_RUN = ('import json, sys; from ament_flake8.main import main_with_errors; '
        'rc, errors = main_with_errors(argv=sys.argv[1:]); '
        'print(json.dumps({"rc": rc, "errors": errors}))')


def test_flake8():
    out = subprocess.run([sys.executable, '-c', _RUN, *lint_argv()], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    errors = result['errors']
    assert result['rc'] == 0, f'{len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
