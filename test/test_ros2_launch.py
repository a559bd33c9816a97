"""
`ros2 launch` for real, checked with the real `ros2` CLI.

webcam.launch.py with a video file as the device and video.launch.py with a folder of real
frames, under a namespace. (test_launch.py checks the files' parameters without launching.)
"""
import bisect
import re
import signal
import statistics

import cv2
import pytest
from ros_cli import Launched, Listener, needs_ros2_cli, new_domain, REPO, ros2, stamp_key
import yaml

pytestmark = [needs_ros2_cli, pytest.mark.slow, pytest.mark.ros]
NS = 'robot1'
FPS = 10.0


@pytest.fixture(scope='module')
def frames_dir(egohands_dir):
    return egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B'


@pytest.fixture(scope='module')
def video_file(frames_dir, tmp_path_factory):
    """Make an mp4 from 40 real EgoHands frames (640x360, 30 fps)."""
    path = tmp_path_factory.mktemp('video') / 'egohands.mp4'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 30.0, (640, 360))
    for f in sorted(frames_dir.glob('*.jpg'))[:40]:
        writer.write(cv2.resize(cv2.imread(str(f)), (640, 360), interpolation=cv2.INTER_AREA))
    writer.release()
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 40
    return path


@pytest.fixture(scope='module')
def params_file(tmp_path_factory):
    """Write the shipped YAML with a few values changed, to see that the file is in force."""
    data = yaml.safe_load((REPO / 'config' / 'hand_tracker.yaml').read_text())
    data['/**/hand_detector']['ros__parameters']['score_threshold'] = 0.42
    data['/**/hand_detector']['ros__parameters']['tracker']['min_hits'] = 4
    data['/**/camera']['ros__parameters']['fps'] = FPS
    path = tmp_path_factory.mktemp('params') / 'params.yaml'
    path.write_text(yaml.safe_dump(data))
    return path


def _topic_types(domain) -> dict:
    out = ros2(domain, 'topic', 'list', '-t', '--no-daemon', '--spin-time', '3').stdout
    return dict(re.findall(r'^(\S+) \[(\S+)\]$', out, re.M))


def _check_topics_and_headers(domain, listener):
    from hand_tracker_ros.messages import stamp_to_sec
    assert listener.wait_count('detections', 5, timeout=60)
    expected = {'image': 'sensor_msgs/msg/Image', 'camera_info': 'sensor_msgs/msg/CameraInfo',
                'detections': 'vision_msgs/msg/Detection2DArray',
                'detections/image': 'sensor_msgs/msg/Image',
                'hands': 'hand_tracker/msg/TrackedHandArray',
                'gestures': 'hand_tracker/msg/GestureEvent'}
    # a CLI process discovers the graph from scratch in its 3 s: under load one listing missed
    # a topic (Jazzy part of a CI run); list again before judging
    for _ in range(3):
        types = _topic_types(domain)
        if all(f'/{NS}/{name}' in types for name in expected):
            break
    for name, typ in expected.items():
        assert types.get(f'/{NS}/{name}') == typ, f'/{NS}/{name} missing or wrong: {types}'
        assert f'/{name}' not in types, f'/{name} outside the namespace: {types}'
    assert listener.wait_count('detections', 25, timeout=60)
    images = {stamp_key(m.header) for _, m in listener.messages['image']}
    # one snapshot of camera_info for every check below (the list still grows meanwhile)
    info_msgs = list(listener.messages['camera_info'])
    infos = {stamp_key(m.header) for _, m in info_msgs}
    stamps = [stamp_to_sec(m.header.stamp) for _, m in info_msgs]
    dets = [m for _, m in listener.messages['detections']]
    # every detection carries the header of an image the camera published: camera_info goes out
    # with each image's header and, being small, nearly always reaches this listener, while its
    # best-effort subscription to the 640x480 images itself loses some (23 of 39 seen once)
    # (only detections stamped while this listener already received camera_info: discovery
    # may match its detections subscription a second or two before the others)
    inner = [d for d in dets if min(infos) <= stamp_key(d.header) <= max(infos)]
    assert len(inner) >= 10, (len(inner), len(dets))
    matched = [d for d in inner if stamp_key(d.header) in infos]
    assert len(matched) >= 0.8 * len(inner), (len(matched), len(inner))
    # a detection whose camera_info this listener lost (a Jazzy CI run under load: two in a
    # row) must be stamped inside a gap of the camera_info stamps it did receive; a node that
    # stamped its own clock would match none of them
    info_sec = sorted(stamps)
    for d in inner:
        if stamp_key(d.header) not in infos:
            t = stamp_to_sec(d.header.stamp)
            after = bisect.bisect(info_sec, t)
            assert info_sec[after] - info_sec[after - 1] > 1.5 / FPS, (t, info_sec)
    assert any(stamp_key(d.header) in images for d in inner)
    assert all(d.header.frame_id == 'camera' for d in dets)
    # the camera's rate from the YAML: camera_info stamps 1/FPS apart, arriving at about that
    # rate (the camera alone: how many of its frames the detector keeps up with on a loaded
    # 2-core machine is speed, measured by benchmarks/, not asserted here; a CI run's Jazzy part
    # saw every other frame dropped, and counted)
    period = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
    assert 0.7 / FPS < period < 1.5 / FPS, period
    arrivals = [t for t, _ in info_msgs]
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert 0.6 * FPS < rate < 1.3 * FPS, f'camera_info at {rate:.1f} Hz, camera at {FPS} Hz'
    # the detector answers frames in order, never one twice
    det_stamps = [stamp_to_sec(d.header.stamp) for d in inner]
    assert all(b > a for a, b in zip(det_stamps, det_stamps[1:])), det_stamps


def _check_parameters(domain):
    node = f'/{NS}/hand_detector'
    get = ros2(domain, 'param', 'get', '--no-daemon', node, 'score_threshold').stdout
    assert 'Double value is: 0.42' in get, get
    assert 'Integer value is: 4' in ros2(domain, 'param', 'get', '--no-daemon', node,
                                         'tracker.min_hits').stdout
    assert 'Double value is: 10.0' in ros2(domain, 'param', 'get', '--no-daemon', f'/{NS}/camera',
                                           'fps').stdout
    bad = ros2(domain, 'param', 'set', '--no-daemon', node, 'score_threshold', '1.5').stdout
    assert 'Setting parameter failed' in bad and 'range' in bad, bad
    assert 'Double value is: 0.42' in ros2(domain, 'param', 'get', '--no-daemon', node,
                                           'score_threshold').stdout
    ok = ros2(domain, 'param', 'set', '--no-daemon', node, 'score_threshold', '0.6').stdout
    assert 'Set parameter successful' in ok, ok
    assert 'Double value is: 0.6' in ros2(domain, 'param', 'get', '--no-daemon', node,
                                          'score_threshold').stdout
    desc = ros2(domain, 'param', 'describe', '--no-daemon', node, 'score_threshold').stdout
    assert 'Min value: -1.0' in desc and 'Max value: 1.0' in desc, desc  # -1 = the model's
    desc = ros2(domain, 'param', 'describe', '--no-daemon', node, 'num_workers').stdout
    assert 'Read only: true' in desc and 'Min value: 1' in desc and 'Max value: 8' in desc, desc


def _check_sigint(launch):
    code, seconds = launch.stop(signal.SIGINT, timeout=20.0)
    out = launch.output
    assert code == 0, f'ros2 launch exit {code} after SIGINT:\n{out[-3000:]}'
    assert 'Traceback' not in out, out[-3000:]
    for exe in ('camera', 'hand_detector'):
        assert re.search(rf'\[{exe}-\d+\]: process has finished cleanly', out), out[-3000:]
    assert seconds < 10.0, f'took {seconds:.1f} s to stop'


def _run_launch(launch_args):
    from sensor_msgs.msg import CameraInfo, Image
    from vision_msgs.msg import Detection2DArray
    domain = new_domain()
    listener = Listener(domain, {'image': Image, 'camera_info': CameraInfo,
                                 'detections': Detection2DArray}, namespace=NS)
    launch = Launched(domain, 'launch', 'hand_tracker', *launch_args, f'namespace:={NS}')
    try:
        assert launch.wait_for('listening on', 90), launch.output[-3000:]
        _check_topics_and_headers(domain, listener)
        _check_parameters(domain)
        _check_sigint(launch)
    finally:
        launch.kill()
        listener.close()


def test_webcam_launch_with_a_video_file(video_file, params_file):
    _run_launch(['webcam.launch.py', f'device:={video_file}', 'loop:=true',
                 f'params_file:={params_file}'])


def test_video_launch_with_a_folder_of_frames(frames_dir, params_file):
    _run_launch(['video.launch.py', f'video:={frames_dir}', f'params_file:={params_file}'])
