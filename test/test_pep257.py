"""Docstring style the ROS way: ament_pep257 (ROS 2's pydocstyle conventions)."""
from lint_paths import lint_argv
import pytest

ament_pep257 = pytest.importorskip(
    'ament_pep257.main', reason='ament_pep257 is not installed (pip: ros-ament-pep257, '
    'requirements.txt; apt: ros-$ROS_DISTRO-ament-pep257)')


def test_pep257():
    assert ament_pep257.main(argv=lint_argv()) == 0, 'docstring style errors (listed above)'
