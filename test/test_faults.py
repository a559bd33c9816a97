"""
Faults that must leave the nodes serving.

A corrupt model set at run time, a source that vanishes and reappears, SIGTERM during
inference, 4K images at 60 Hz.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from fixture_models import bright_cell_frame, expected_boxes
import numpy as np
import procs
import pytest
from ros_cli import needs_ros2_cli, ros2
from test_detector_node import boxes_of, CELLS, Client, image_msg, NodeProcess, REPO

pytestmark = [pytest.mark.slow, pytest.mark.ros]


@needs_ros2_cli
def test_corrupt_model_at_run_time_is_rejected_and_the_old_model_keeps_running(
        fixture_models, tmp_path):
    proc = NodeProcess('-p', f'model_path:={fixture_models["tflite"]}', '-r', '__ns:=/faults',
                       '-p', 'tracker.min_hits:=1')
    client = Client(namespace='/faults')
    domain = int(os.environ['ROS_DOMAIN_ID'])
    frame = image_msg(bright_cell_frame(640, 480, CELLS))
    want = np.array(sorted(expected_boxes(640, 480, CELLS).tolist()))
    try:
        client.wait_connected(proc)
        before = client.wait_for(client.send(frame))
        assert before is not None, proc.text()[-2000:]
        np.testing.assert_allclose(boxes_of(before), want, atol=1.0)
        good = fixture_models['tflite'].read_bytes()
        for name, data in (('truncated.tflite', good[:len(good) // 3]),
                           ('garbage.tflite', os.urandom(4096)), ('empty.pb', b'')):
            corrupt = tmp_path / name
            corrupt.write_bytes(data)
            out = ros2(domain, 'param', 'set', '--no-daemon', '/faults/hand_detector',
                       'model_path', str(corrupt)).stdout
            assert 'Setting parameter failed' in out and str(corrupt) in out, out
            after = client.wait_for(client.send(frame))
            assert after is not None, proc.text()[-2000:]
            np.testing.assert_allclose(boxes_of(after), want, atol=1.0)
        got = ros2(domain, 'param', 'get', '--no-daemon', '/faults/hand_detector',
                   'model_path').stdout
        assert str(fixture_models['tflite']) in got, got
        assert proc.alive() and 'Traceback' not in proc.text()
    finally:
        client.close()
        proc.stop()


def _wait_log(proc, text, timeout=30.0):
    deadline = time.monotonic() + timeout
    while text not in proc.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    return text in proc.text()


def test_vanishing_source_is_reopened_and_counted(egohands_dir, tmp_path):
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    folder = tmp_path / 'frames'
    folder.mkdir()
    for f in sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:5]:
        shutil.copy(f, folder)
    log = tmp_path / 'camera.log'
    with open(log, 'w') as out:
        proc = procs.start(
            [sys.executable, '-m', 'hand_tracker_ros.cli', 'camera', '--ros-args',
             '-r', '__ns:=/vanish', '-p', f'source:={folder}', '-p', 'loop:=true',
             '-p', 'fps:=10.0'], stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    proc.text = log.read_text
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    got = []
    node = rclpy.create_node('vanish_sink', context=ctx)
    node.create_subscription(Image, '/vanish/image', lambda m: got.append(time.monotonic()),
                             qos_profile_sensor_data)
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(got) >= 5, proc.text()
        folder.rename(tmp_path / 'gone')
        assert _wait_log(proc, 'retrying [1 read errors]'), proc.text()
        time.sleep(2.0)
        t_back = time.monotonic()
        (tmp_path / 'gone').rename(folder)
        assert _wait_log(proc, 'is back [1 reconnects]'), proc.text()
        deadline = time.monotonic() + 30
        while sum(t > t_back for t in got) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sum(t > t_back for t in got) >= 5, 'frames flow again'
        assert proc.poll() is None
    finally:
        ex.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        procs.end(proc)


def test_sigterm_during_inference_exits_cleanly():
    """The shipped model on a 30 Hz stream of real frames; SIGTERM mid-stream."""
    proc = NodeProcess('-r', '__ns:=/sigterm', '-p', 'queue_size:=30')
    client = Client(namespace='/sigterm')
    pub = None
    try:
        client.wait_connected(proc)
        pub = procs.start(
            [sys.executable, str(REPO / 'benchmarks' / 'image_publisher.py'), '--rate', '30',
             '--duration', '60', '--topic', '/sigterm/image'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + 60
        while len(client.dets) < 10 and time.monotonic() < deadline:
            client.ex.spin_once(timeout_sec=0.05)
        assert len(client.dets) >= 10, proc.text()[-2000:]
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(10)
        assert code == 0, proc.text()[-3000:]
        assert 'Traceback' not in proc.text(), proc.text()[-3000:]
    finally:
        if pub is not None:
            procs.end(pub, signal.SIGKILL)
        client.close()
        proc.stop()


def test_4k_at_60hz_bounded_queue_counted_drops(tmp_path):
    """
    4K rgb8 frames at 60 Hz into the node in this process.

    The queue never holds more than queue_size frames, every received frame is processed or
    counted as dropped.
    """
    import rclpy
    from rclpy.parameter import Parameter

    from hand_tracker_ros.detector_node import HandDetectorNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = HandDetectorNode(context=ctx, namespace='/fourk', parameter_overrides=[
        Parameter('stats_period', value=1.0)])
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    max_pending = 0
    try:
        pub = procs.start(
            [sys.executable, str(REPO / 'benchmarks' / 'image_publisher.py'), '--rate', '60',
             '--duration', '6', '--width', '3840', '--height', '2160', '--topic', '/fourk/image'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        while pub.poll() is None:
            max_pending = max(max_pending, node.pipeline.pending())
            time.sleep(0.005)
        published = int(pub.stdout.read().split()[-1])
        assert node.pipeline.wait_idle(30)
        st = node.pipeline.stats
        assert published > 0 and st.received > 0, (published, st.received)
        assert max_pending <= node.pipeline.queue_size + 1  # waiting + the one in inference
        assert st.received == st.processed + st.dropped_stale + st.failed
        assert st.dropped_stale == node.drop_reasons['stale']
        assert st.failed == 0
        if st.received >= 20:  # 60 Hz of 4K outruns one worker on this machine
            assert st.dropped_stale > 0
    finally:
        ex.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
