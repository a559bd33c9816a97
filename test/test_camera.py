"""Frame sources and the camera node, on real EgoHands frames."""
import glob
import os
import subprocess
import sys
import time

import cv2
from hand_tracker_ros.frame_source import FrameSource, SourceError
import numpy as np
import procs
import pytest


VIDEO = '_LABELLED_SAMPLES/CARDS_OFFICE_S_B'


@pytest.fixture(scope='module')
def frames_dir(egohands_dir):
    return egohands_dir / VIDEO


@pytest.fixture(scope='module')
def video_file(frames_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp('video') / 'clip.avi'
    files = sorted(frames_dir.glob('*.jpg'))[:12]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (640, 360))
    for f in files:
        w.write(cv2.resize(cv2.imread(str(f)), (640, 360)))
    w.release()
    return path


def test_folder_source_reads_sorted_images_and_ends(frames_dir):
    src = FrameSource(str(frames_dir))
    assert src.kind == 'images' and len(src) == 100
    first = src.read()
    expected = cv2.imread(str(sorted(frames_dir.glob('*.jpg'))[0]))
    assert np.array_equal(first, expected)
    n = 1
    while src.read() is not None:
        n += 1
    assert n == 100


def test_glob_source_reads_only_the_matching_images(shared_data):
    """A held-out webcam session is a file-name pattern inside a folder of many sessions."""
    pattern = str(shared_data / 'hands_webcam_subhih' / 'test' / 'images' / '16_pic*.jpg')
    expected = sorted(glob.glob(pattern))
    src = FrameSource(pattern)
    assert src.kind == 'images' and len(src) == len(expected) > 0
    assert np.array_equal(src.read(), cv2.imread(expected[0]))
    with pytest.raises(SourceError, match='no image files match'):
        FrameSource(str(shared_data / 'hands_webcam_subhih' / 'test' / 'images' / 'nosuch_*.jpg'))


def test_folder_source_loops(frames_dir):
    src = FrameSource(str(frames_dir), loop=True)
    frames = [src.read() for _ in range(101)]
    assert np.array_equal(frames[0], frames[100])


def test_video_source(video_file):
    src = FrameSource(str(video_file))
    assert src.kind == 'video' and src.native_fps == pytest.approx(10.0)
    n = 0
    while (f := src.read()) is not None:
        assert f.shape == (360, 640, 3)
        n += 1
    assert n == 12


@pytest.mark.parametrize('source, message', [
    ('/nonexistent/clip.mp4', 'neither a camera index'),
    ('/dev/video97', 'cannot open camera'),
    ('97', 'pass a video file or a folder of images'),
])
def test_bad_sources_say_what_to_do(source, message):
    with pytest.raises(SourceError, match=message):
        FrameSource(source)


def test_empty_folder_and_corrupt_video(tmp_path):
    with pytest.raises(SourceError, match='no images'):
        FrameSource(str(tmp_path))
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video' * 100)
    with pytest.raises(SourceError, match='cannot decode video'):
        FrameSource(str(bad))


@pytest.mark.skipif(not glob.glob('/dev/video*'), reason='no V4L2 camera (/dev/video*) on this '
                    'machine; test_camera_node_publishes_folder_over_dds covers the node')
def test_webcam_opens():
    src = FrameSource('0')
    assert src.read() is not None


@pytest.mark.ros
def test_camera_node_publishes_folder_over_dds(frames_dir):
    """The camera node in another process publishes real frames; this process receives them."""
    from hand_tracker_ros.messages import stamp_to_sec
    import rclpy
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    env = dict(os.environ)
    proc = procs.start(
        [sys.executable, '-m', 'hand_tracker_ros.cli', 'camera', '--ros-args',
         '-p', f'source:={frames_dir}', '-p', 'fps:=20.0', '-p', 'frame_id:=test_cam'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    got = []
    try:
        node = rclpy.create_node('camera_test_sink', context=ctx)
        node.create_subscription(Image, 'image', got.append, QoSProfile(depth=50))
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        t_end = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
        rc, out = procs.end(proc)
    assert len(got) >= 10, out
    assert rc == 0, f'the camera ends on the first SIGTERM (exit {rc}): {out[-2000:]}'
    m = got[0]
    assert (m.width, m.height, m.encoding, m.header.frame_id) == (1280, 720, 'bgr8', 'test_cam')
    stamps = [stamp_to_sec(g.header.stamp) for g in got]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), 'stamps are real and increasing'
    assert abs(stamps[0] - time.time()) < 60, 'stamped with the clock at capture'
    period = np.median(np.diff(stamps))
    assert 0.03 < period < 0.1, f'published at ~20 Hz, median period {period:.3f}s'
    names = sorted(frames_dir.glob('*.jpg'))
    first = np.frombuffer(bytes(m.data), np.uint8).reshape(720, 1280, 3)
    assert any(np.array_equal(first, cv2.imread(str(n))) for n in names[:len(got) + 5])
