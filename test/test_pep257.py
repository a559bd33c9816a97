"""Docstring style the ROS way: ament_pep257 (ROS 2's pydocstyle conventions)."""
from lint_paths import excluded, LINTED
import pytest


ament_pep257 = pytest.importorskip(
    'ament_pep257.main', reason='ament_pep257 is not installed (pip: ros-ament-pep257, '
    'requirements.txt; apt: ros-$ROS_DISTRO-ament-pep257)')


def test_pep257():
    argv = [str(p) for p in LINTED]
    if excluded():
        argv += ['--exclude'] + [str(p) for p in excluded()]
    rc = ament_pep257.main(argv=argv)
    assert rc == 0, 'docstring style errors (listed above)'
