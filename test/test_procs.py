"""
A test run that is killed outright (SIGKILL) leaves no process behind (test/procs.py).

An inner pytest starts a camera node, ``ros2 launch video.launch.py`` (camera + detector) and
a shell that ignores SIGINT and SIGTERM (with a child that inherits that) through
``procs.start``, as the suite's tests do, and waits. This test SIGKILLs that pytest, which runs
no clean-up of its own, and then looks in /proc for every process that carries the run's marker
variable: the reaper (test/reaper.py) must end them all, the stubborn ones by SIGKILL after its
grace period.
"""
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import procs
import pytest
import reaper
from ros_cli import HAVE_ROS2_CLI, new_domain, ROS2, ros_env

TEST_DIR = Path(__file__).resolve().parent

INNER = """
import sys
import time
from pathlib import Path

sys.path.insert(0, {test_dir!r})
import procs


def test_hold():
    procs.start([sys.executable, '-m', 'hand_tracker_ros.cli', 'camera', '--ros-args',
                 '-p', 'source:={frames}', '-p', 'loop:=true', '-p', 'fps:=5.0'])
    if {launch!r}:
        procs.start([{ros2!r}, 'launch', 'hand_tracker', 'video.launch.py',
                     'video:={frames}', 'rviz:=false'])
    procs.start(['sh', '-c', 'trap "" INT TERM; sleep 600 & wait'])
    Path({mark!r}).write_text('started')
    time.sleep(600)
"""


def _marked(marker: str) -> dict:
    """Pid -> command line of every process whose environment holds `marker`."""
    found = {}
    for proc in Path('/proc').iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / 'environ').read_bytes().split(b'\0'):
                found[int(proc.name)] = (proc / 'cmdline').read_bytes().replace(b'\0', b' ')
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


@pytest.mark.slow
def test_killed_test_run_leaves_no_process(egohands_dir, tmp_path):
    frames = egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B'
    mark = tmp_path / 'started'
    inner = tmp_path / 'test_inner.py'
    inner.write_text(textwrap.dedent(INNER.format(
        test_dir=str(TEST_DIR), frames=str(frames), launch=HAVE_ROS2_CLI, ros2=str(ROS2),
        mark=str(mark))))
    marker = f'HAND_TRACKER_PROC_TEST={uuid.uuid4().hex}'
    env = ros_env(new_domain())
    env.update([marker.split('=', 1)])
    # expected: the inner pytest, its reaper, its camera, the stubborn shell and its sleep, and
    # with the ROS tools the launch and its 2 nodes
    expected = 8 if HAVE_ROS2_CLI else 5
    run = subprocess.Popen([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                            '-p', 'no:launch_testing',
                            str(inner)], env=env, cwd=tmp_path, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not mark.exists()
                                               or len(_marked(marker)) < expected):
            time.sleep(0.2)
        before = _marked(marker)
        assert len(before) >= expected, before
        time.sleep(2.0)  # the nodes past their start-up
        run.send_signal(signal.SIGKILL)  # the inner pytest only, not its children
        run.wait(10)
        deadline = time.monotonic() + reaper.GRACE + 15
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _marked(marker)
        print(f'{len(before)} processes before the SIGKILL, {len(left)} left')
        assert not left, f'left behind after the test run was killed: {left}'
    finally:
        for pid in _marked(marker):  # never leave them to the next test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_started_processes_do_not_inherit_an_ignored_sigint():
    """
    Every process a test starts can be interrupted, however the test run was started.

    A test run started in the background of a non-interactive shell has SIGINT ignored, and a
    child inherits that; conftest.py takes Python's handler back, which resets it in a child.
    """
    proc = procs.start(['sleep', '30'])
    try:
        time.sleep(0.2)
        status = Path(f'/proc/{proc.pid}/status').read_text()
        ignored = int(next(line.split()[1] for line in status.splitlines()
                           if line.startswith('SigIgn:')), 16)
        assert not ignored & (1 << (signal.SIGINT - 1)), status
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == -signal.SIGINT
    finally:
        procs.end(proc, signal.SIGKILL)
