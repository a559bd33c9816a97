"""
camera_info: the camera_calibration YAML format, and the camera node publishing it.

The camera node publishes it beside `image` over DDS (with a calibration, and uncalibrated).
"""
import os
import subprocess
import sys
import time

from hand_tracker_ros.camera_info import (CalibrationError, load_calibration, parse_calibration,
                                          size_mismatch, uncalibrated, url_to_path)
import procs
import pytest

# as written by `ros2 run camera_calibration cameracalibrator` (ost.yaml)
CALIBRATION = """\
image_width: 1280
image_height: 720
camera_name: egohands_cam
camera_matrix:
  rows: 3
  cols: 3
  data: [1010.5, 0., 640.2, 0., 1012.25, 361.7, 0., 0., 1.]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.21, 0.05, 0.001, -0.002, 0.]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1., 0., 0., 0., 1., 0., 0., 0., 1.]
projection_matrix:
  rows: 3
  cols: 4
  data: [990.1, 0., 641.0, 0., 0., 995.3, 360.2, 0., 0., 0., 1., 0.]
"""


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / 'ost.yaml'
    path.write_text(CALIBRATION)
    return path


def test_parse_camera_calibration_yaml(calibration_file):
    for url in (str(calibration_file), f'file://{calibration_file}'):
        cal = load_calibration(url)
        assert (cal.width, cal.height, cal.camera_name) == (1280, 720, 'egohands_cam')
        assert cal.k[0] == 1010.5 and cal.k[5] == 361.7 and len(cal.k) == 9
        assert cal.d == [-0.21, 0.05, 0.001, -0.002, 0.0]
        assert cal.p[2] == 641.0 and len(cal.p) == 12
        assert cal.distortion_model == 'plumb_bob' and cal.calibrated
    assert size_mismatch(cal, 1280, 720) == ''
    assert '1280x720' in size_mismatch(cal, 640, 480)


def test_uncalibrated_default_takes_the_image_size():
    cal = uncalibrated(0, 0).for_size(640, 480)
    assert (cal.width, cal.height) == (640, 480)
    assert not cal.calibrated and cal.k == [0.0] * 9 and cal.p == [0.0] * 12 and cal.d == []


@pytest.mark.parametrize('text, message', [
    ('image_width: 640\n', 'image_width/image_height'),
    (CALIBRATION.replace('rows: 3\n  cols: 4', 'rows: 3\n  cols: 3'), 'projection_matrix'),
    (CALIBRATION.replace('[1010.5, 0., ', '[1010.5, '), 'camera_matrix has 8 values'),
    ('- a list', 'expected a mapping'),
    ('a: [1, 2', 'not valid YAML'),
])
def test_bad_calibrations_say_what_is_wrong(text, message):
    with pytest.raises(CalibrationError, match=message):
        parse_calibration(text)


def test_bad_urls(tmp_path):
    with pytest.raises(CalibrationError, match='cannot read calibration'):
        load_calibration(str(tmp_path / 'missing.yaml'))
    with pytest.raises(CalibrationError, match='unsupported calibration URL'):
        url_to_path('http://example.com/cal.yaml')
    assert url_to_path('package://hand_tracker/config/x.yaml').parts[-3:] == (
        'hand_tracker', 'config', 'x.yaml')


def _receive(frames_dir, extra_params, n=8):
    """(images, camera_infos, log) from a camera node process on a folder of real frames."""
    import rclpy
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import CameraInfo, Image
    proc = procs.start(
        [sys.executable, '-m', 'hand_tracker_ros.cli', 'camera', '--ros-args',
         '-p', f'source:={frames_dir}', '-p', 'fps:=20.0', *extra_params],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    images, infos = [], []
    try:
        node = rclpy.create_node('camera_info_sink', context=ctx)
        node.create_subscription(Image, 'image', images.append, QoSProfile(depth=50))
        node.create_subscription(CameraInfo, 'camera_info', infos.append, QoSProfile(depth=50))
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        t_end = time.monotonic() + 30
        while min(len(images), len(infos)) < n and time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
        rc, out = procs.end(proc)
    assert min(len(images), len(infos)) >= n, out
    assert rc == 0, f'the camera ends on the first SIGTERM (exit {rc}): {out[-2000:]}'
    return images, infos, out


def _same_headers(images, infos):
    keys = lambda msgs: [(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id)  # noqa
                         for m in msgs]
    common = set(keys(images)) & set(keys(infos))
    assert len(common) >= len(images) - 2, 'camera_info carries the header of its image'


@pytest.mark.ros
def test_camera_publishes_calibrated_camera_info(egohands_dir, calibration_file):
    frames = egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B'
    images, infos, out = _receive(frames, ['-p', f'camera_info_url:=file://{calibration_file}'])
    _same_headers(images, infos)
    info = infos[0]
    assert (info.width, info.height) == (images[0].width, images[0].height) == (1280, 720)
    assert list(info.k)[:3] == [1010.5, 0.0, 640.2] and info.distortion_model == 'plumb_bob'
    assert list(info.d) == [-0.21, 0.05, 0.001, -0.002, 0.0]
    assert "calibration 'egohands_cam' (1280x720, plumb_bob)" in out


@pytest.mark.ros
def test_camera_publishes_uncalibrated_camera_info_and_says_so(egohands_dir):
    frames = egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B'
    images, infos, out = _receive(frames, [])
    _same_headers(images, infos)
    assert (infos[0].width, infos[0].height) == (1280, 720)
    assert list(infos[0].k) == [0.0] * 9
    assert 'camera is not calibrated' in out
