"""Code style the ROS way: ament_flake8 (ROS 2's flake8 configuration, lines up to 99)."""
from lint_paths import lint_argv
import pytest

ament_flake8 = pytest.importorskip(
    'ament_flake8.main', reason='ament_flake8 is not installed (pip: ros-ament-flake8, '
    'requirements.txt; apt: ros-$ROS_DISTRO-ament-flake8)')


def test_flake8():
    rc, errors = ament_flake8.main_with_errors(argv=lint_argv())
    assert rc == 0, f'{len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
