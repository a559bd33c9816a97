"""`hand-tracker run`: camera + detector + tracker in one process on real frames, recorded."""
import os
import subprocess
import sys

import cv2
import numpy as np
import procs
import pytest

pytestmark = pytest.mark.ros  # rclpy, messages or ROS tools: run on Jazzy too


@pytest.fixture()
def ten_frames(egohands_dir, tmp_path):
    src = sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:10]
    d = tmp_path / 'frames'
    d.mkdir()
    for f in src:
        (d / f.name).symlink_to(f)
    return d


def run_cli(*args, timeout=180):
    return procs.run([sys.executable, '-m', 'hand_tracker_ros.cli', *args],
                     capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def test_run_folder_records_every_frame(ten_frames, tmp_path, fixture_models):
    out = tmp_path / 'annotated.mp4'
    r = run_cli('run', '--source', str(ten_frames), '--fps', '5', '--model',
                str(fixture_models['tflite']), '--record', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'frames 10/10' in r.stderr, 'the progress line counts every frame'
    assert 'fps' in r.stderr and 'hands' in r.stderr
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    assert ok and frame.shape == (720, 1280, 3)
    assert n == 10, f'recorded {n} of 10 frames'


def test_run_with_missing_source_or_model_explains(tmp_path, fixture_models):
    r = run_cli('run', '--source', str(tmp_path / 'nothing.mp4'))
    assert r.returncode == 2 and 'neither a camera index' in r.stderr
    r = run_cli('run', '--source', '97', '--model', str(fixture_models['tflite']))
    assert r.returncode == 2 and 'pass a video file or a folder' in r.stderr
    bad = tmp_path / 'model.tflite'
    bad.write_bytes(b'not a model')
    frames = tmp_path / 'f'
    frames.mkdir()
    cv2.imwrite(str(frames / 'a.png'), np.zeros((48, 64, 3), np.uint8))
    r = run_cli('run', '--source', str(frames), '--model', str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr


def test_camera_command_runs_the_camera_node(ten_frames):
    """
    `hand-tracker camera --ros-args ...` is the camera node itself.

    Its images arrive here over DDS with the frames' size, in its namespace.
    """
    import time

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    proc = procs.start(
        [sys.executable, '-m', 'hand_tracker_ros.cli', 'camera', '--ros-args', '-r',
         '__ns:=/cli_camera_test', '-p', f'source:={ten_frames}', '-p', 'fps:=10.0',
         '-p', 'loop:=true'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ))
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node('cli_camera_client', context=ctx)
    got = []
    node.create_subscription(Image, '/cli_camera_test/image', got.append,
                             qos_profile_sensor_data)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 90
        while len(got) < 3 and time.monotonic() < deadline and proc.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert len(got) >= 3, 'no images from hand-tracker camera'
        assert (got[0].width, got[0].height) == (1280, 720)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        rc, out = procs.end(proc)
    assert 'publishing images' in out, out[-2000:]
    assert rc == 0, f'ends on the first SIGTERM (exit {rc})'


def test_node_commands_have_help():
    r = run_cli('detect', '--help')
    assert r.returncode == 0 and '--ros-args' in r.stdout and 'detector node' in r.stdout
