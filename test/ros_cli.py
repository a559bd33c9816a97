"""
Helpers for tests that run the package the ROS way.

`ros2 launch`, `ros2 run` and the `ros2` CLI (from tools/setup_ros_tools.sh) as subprocesses,
each test on its own ROS_DOMAIN_ID, and a listener node in the test process on the same domain.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Optional

import procs
import pytest

REPO = Path(__file__).resolve().parents[1]
ROS2 = Path(sys.prefix) / 'bin' / 'ros2'
HAVE_ROS2_CLI = ROS2.is_file()
needs_ros2_cli = pytest.mark.skipif(
    not HAVE_ROS2_CLI, reason=f'{ROS2} missing: run tools/setup_ros_tools.sh (installs the ROS 2 '
    f'command-line tools from ../shared/vendor/ros2); test_launch.py checks the files without it')
# Each CLI test's domain is one of 102-214, never one of the 1-101 that conftest gives a test
# session: two suites run at once on one machine crossed there (a camera node of one run's CLI
# test in the other run's session domain, whose camera test then received its messages).
_domains = itertools.count((os.getpid() % 40) * 5)


def new_domain() -> int:
    return 102 + next(_domains) % 113


def ros_env(domain: int) -> dict:
    """
    Return the test's environment on ``domain``, with PATH *without* the venv.

    The installed executables must find their interpreter themselves (their shebang).
    """
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1')
    env['PATH'] = os.pathsep.join(p for p in env.get('PATH', '').split(os.pathsep)
                                  if Path(p).resolve() != (Path(sys.prefix) / 'bin').resolve())
    env.pop('VIRTUAL_ENV', None)
    return env


def ros2(domain: int, *args: str, timeout: float = 60.0, tries: int = 10,
         retry_silent: bool = False) -> subprocess.CompletedProcess:
    """
    Run `ros2 ARGS...` to completion; stdout and stderr together in ``.stdout``.

    Without the daemon a CLI process discovers the graph from scratch: 'Node not found' is
    retried, and with `retry_silent` so is no output at all (a command that always prints,
    such as ``lifecycle get``, prints nothing when it did not find the service in time; seen
    under load).
    """
    args = list(args)
    if '--no-daemon' in args and '--spin-time' not in args:
        # the CLI's own discovery wait (0.5 s) is too short on a loaded machine: 10 tries of
        # `param set` all said 'Node not found' in a CI run
        at = args.index('--no-daemon') + 1
        args[at:at] = ['--spin-time', '2.0']
    for _ in range(tries):
        res = procs.run([str(ROS2), *args], env=ros_env(domain), stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=timeout)
        silent = retry_silent and not res.stdout.strip()
        if 'Node not found' not in res.stdout and not silent:
            break
        time.sleep(1.0)
    return res


class Launched:
    """
    A `ros2 ...` process in the background, its output collected.

    It has its own session (test/procs.py): SIGINT goes only to it and its nodes.
    """

    def __init__(self, domain: int, *args: str):
        self.args = args
        self.proc = procs.start([ROS2, *args], env=ros_env(domain), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return ''.join(self._lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return text in self.output
            time.sleep(0.1)
        return False

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> tuple[Optional[int], float]:
        """
        Send ``sig`` to the process group, as Ctrl-C in a terminal does.

        Return (exit code or None if still running after ``timeout``, seconds).
        """
        t0 = time.monotonic()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        self._reader.join(5.0)
        return self.proc.returncode, time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL the whole group (the launch and its nodes)."""
        procs.end(self.proc, signal.SIGKILL)


class Listener:
    """
    An rclpy node in the test process, on ``domain``, that records messages per topic.

    ``topics``: {name relative to ``namespace``: message class}.
    """

    def __init__(self, domain: int, topics: dict, namespace: str = ''):
        import rclpy
        from hand_tracker_ros.spin import BackgroundSpinner
        from rclpy.qos import qos_profile_sensor_data, QoSProfile
        from sensor_msgs.msg import Image
        # best effort, as cameras publish; small messages get a deep queue: a Jazzy CI run lost two
        # consecutive camera_info messages from the sensor-data depth of 5 while this process, on a
        # loaded 2-core machine, was busy with the 640x480 images
        deep = QoSProfile(depth=100, reliability=qos_profile_sensor_data.reliability,
                          durability=qos_profile_sensor_data.durability)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('test_listener', context=self.context)
        self.messages: dict[str, list] = {t: [] for t in topics}
        for topic, cls in topics.items():
            self.node.create_subscription(
                cls, f'/{namespace}/{topic}' if namespace else topic,
                lambda m, t=topic: self.messages[t].append((time.monotonic(), m)),
                qos_profile_sensor_data if cls is Image else deep)
        self._spinner = BackgroundSpinner([self.node], context=self.context)

    def wait_count(self, topic: str, n: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages[topic]) < n:
            time.sleep(0.05)
        return len(self.messages[topic]) >= n

    def close(self) -> None:
        import rclpy
        self._spinner.close()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def stamp_key(header) -> tuple:
    return (header.stamp.sec, header.stamp.nanosec, header.frame_id)
