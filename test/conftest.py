"""Shared test set-up: quiet, isolated ROS/TF state and the real data in ../shared/data."""
import os
from pathlib import Path
import random
import signal
import tempfile

from hand_tracker_ros.resources import fastdds_profile_variable
import pytest


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'
EGOHANDS = SHARED_DATA / 'egohands'
ROBOFLOW = SHARED_DATA / 'hand_gestures_roboflow'

_TMP = Path(tempfile.mkdtemp(prefix='hand_tracker_test_'))
os.environ.setdefault('ROS_LOG_DIR', str(_TMP / 'ros_log'))
os.environ.setdefault('KERAS_HOME', str(_TMP / 'keras'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
# Images over Fast DDS need a large shared-memory segment (config/fastdds_shm.xml, see README);
# every test process and the node processes they start use it (under the name this
# distribution's Fast DDS reads, unless one is set).
_variable = fastdds_profile_variable()
if _variable is not None:
    os.environ[_variable] = str(REPO / 'config' / 'fastdds_shm.xml')
# A non-interactive shell starts a background command (`.ci/run &`, `(pytest &)`) with SIGINT
# ignored (POSIX), and every process a test starts inherits that: a node's SIGINT before it
# takes its signals was lost, and `ros2 launch` ignored the parent-death SIGINT of
# test/procs.py (both seen in a fresh-clone run started that way). A caught signal is reset to
# the default in a child, so taking Python's own handler back here gives the children theirs.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# One DDS domain per test session so parallel runs on one machine never cross-talk.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 101)))


def pytest_sessionfinish(session, exitstatus):
    """End every process a test started and left running (test/procs.py)."""
    import procs
    procs.end_all()


@pytest.fixture(scope='session')
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data not found at {SHARED_DATA} (the shared/ folder beside the repo)')
    return SHARED_DATA


@pytest.fixture(scope='session')
def egohands_dir(shared_data) -> Path:
    return EGOHANDS


@pytest.fixture(scope='session')
def roboflow_dir(shared_data) -> Path:
    return ROBOFLOW


@pytest.fixture(scope='session')
def fixture_models(tmp_path_factory) -> dict[str, Path]:
    """
    Return the "bright cell" test detector (test/fixture_models.py), exported once per session.

    Paths by kind, ``frozen_graph``, ``tflite``, ``tflite_int8`` and ``label_map``.
    """
    from fixture_models import build_bright_cell_models
    return build_bright_cell_models(tmp_path_factory.mktemp('fixture_models'))
