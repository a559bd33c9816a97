"""
The lifecycle detector over `ros2 lifecycle set/get`.

Configure loads the model, activate starts processing, deactivate stops it keeping the model,
cleanup/shutdown free everything; the same detections as the plain node on real frames.
"""
import os
import re
import signal
import time

import cv2
import numpy as np
import pytest
from ros_cli import Launched, Listener, needs_ros2_cli, ros2
from test_detector_node import boxes_of, Client, image_msg, NodeProcess

pytestmark = [needs_ros2_cli, pytest.mark.slow, pytest.mark.ros]
NODE = '/lc/hand_detector'


class _Proc:
    """A Launched process with NodeProcess's text()/alive() for test_detector_node.Client."""

    def __init__(self, launched):
        self.launched = launched

    def text(self):
        return self.launched.output

    def alive(self):
        return self.launched.proc.poll() is None


def _state(domain):
    out = ros2(domain, 'lifecycle', 'get', '--no-daemon', NODE, retry_silent=True).stdout
    m = re.search(r'^(\w+) \[\d+\]', out, re.M)
    return m.group(1) if m else out


def _set(domain, transition):
    out = ros2(domain, 'lifecycle', 'set', '--no-daemon', NODE, transition).stdout
    assert 'Transitioning successful' in out, out


@pytest.fixture(scope='module')
def real_frames(egohands_dir):
    files = sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))
    return [cv2.cvtColor(cv2.resize(cv2.imread(str(f)), (640, 360)), cv2.COLOR_BGR2RGB)
            for f in files[:60:6]]


def _detect_all(client, frames):
    outs = []
    for rgb in frames:
        out = client.wait_for(client.send(image_msg(rgb)))
        assert out is not None
        outs.append(out)
    return outs


def _silent(client, rgb, seconds=2.0):
    """No detections for an image sent now."""
    return client.wait_for(client.send(image_msg(rgb)), timeout=seconds) is None


def test_lifecycle_transitions_and_same_detections_as_the_plain_node(real_frames):
    domain = int(os.environ['ROS_DOMAIN_ID'])
    managed = Launched(domain, 'run', 'hand_tracker', 'hand_detector_lifecycle', '--ros-args',
                       '-r', '__ns:=/lc', '-p', 'autostart:=false', '-p', 'tracker.min_hits:=1')
    plain = NodeProcess('-r', '__ns:=/plain', '-p', 'tracker.min_hits:=1', ssd_only=False)
    lc, ref = Client(namespace='/lc'), Client(namespace='/plain')
    try:
        deadline = time.monotonic() + 60
        while _state(domain) != 'unconfigured' and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _state(domain) == 'unconfigured'
        assert 'loaded' not in managed.output, 'no model before configure'
        _set(domain, 'configure')
        assert _state(domain) == 'inactive' and 'loaded tflite model' in managed.output
        assert _silent(lc, real_frames[0]), 'inactive: no processing'
        _set(domain, 'activate')
        assert _state(domain) == 'active'
        lc.wait_connected(_Proc(managed))
        got = _detect_all(lc, real_frames)
        ref.wait_connected(plain)
        want = _detect_all(ref, real_frames)
        assert sum(len(o.detections) for o in want) > 0, 'the shipped model finds hands'
        for a, b in zip(got, want):
            np.testing.assert_allclose(boxes_of(a), boxes_of(b), atol=1e-3)
            assert [d.results[0].hypothesis.score for d in a.detections] == pytest.approx(
                [d.results[0].hypothesis.score for d in b.detections], abs=1e-5)
        _set(domain, 'deactivate')
        assert _state(domain) == 'inactive'
        assert _silent(lc, real_frames[0]), 'deactivated: no processing'
        _set(domain, 'activate')  # the model was kept: not loaded again
        lc.wait_connected(_Proc(managed))  # the new subscription is matched and answers
        assert _detect_all(lc, real_frames[:2])
        assert managed.output.count('loaded tflite model') == 1
        _set(domain, 'deactivate')
        _set(domain, 'cleanup')
        assert _state(domain) == 'unconfigured' and 'cleaned up' in managed.output
        _set(domain, 'shutdown')
        assert _state(domain) == 'finalized'
        code, _ = managed.stop(signal.SIGINT, 15)
        assert code == 0 and 'Traceback' not in managed.output, managed.output[-3000:]
    finally:
        lc.close()
        ref.close()
        managed.kill()
        plain.stop()


def test_launch_with_lifecycle_autostarts(egohands_dir):
    from ros_cli import new_domain
    from vision_msgs.msg import Detection2DArray
    domain = new_domain()
    frames = egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B'
    listener = Listener(domain, {'detections': Detection2DArray}, namespace='robot1')
    launch = Launched(domain, 'launch', 'hand_tracker', 'video.launch.py', f'video:={frames}',
                      'lifecycle:=true', 'namespace:=robot1')
    try:
        assert listener.wait_count('detections', 10, 90), launch.output[-3000:]
        out = ros2(domain, 'lifecycle', 'get', '--no-daemon', '/robot1/hand_detector',
                   retry_silent=True).stdout
        assert out.startswith('active'), out
        code, _ = launch.stop(signal.SIGINT, 20)
        assert code == 0 and 'Traceback' not in launch.output, launch.output[-3000:]
    finally:
        launch.kill()
        listener.close()
