"""
Bags: real bags written from EgoHands frames (rosbags), replayed through `hand-tracker run`.

The bag it records is read back with rosbags' reader.
"""
import os
import subprocess
import sys

import cv2
from hand_tracker_ros.bags import (BagError, BagImageSource, BagRecorder, is_bag, read_messages,
                                   write_image_bag)
import numpy as np
import pytest

N = 12
START = 1_700_000_123 * 10**9


@pytest.fixture(scope='module')
def frames(egohands_dir):
    files = sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:N]
    return [cv2.resize(cv2.imread(str(f)), (640, 360), interpolation=cv2.INTER_AREA)
            for f in files]


@pytest.mark.parametrize('name, compressed', [
    ('single.mcap', False), ('folder_mcap', False), ('single.db3', True)])
def test_written_bag_reads_back(tmp_path, frames, name, compressed):
    path = write_image_bag(str(tmp_path / name), frames, fps=10.0, compressed=compressed,
                           start_ns=START)
    assert is_bag(str(path))
    src = BagImageSource(str(path))
    assert src.topic == '/camera/image_raw' and src.compressed == compressed
    assert len(src) == N and src.native_fps == pytest.approx(10.0)
    msgs = list(read_messages(str(path)))
    assert [t for _, t, _ in msgs] == [START + i * 10**8 for i in range(N)]
    first = msgs[0][2]
    assert (first.header.stamp.sec, first.header.stamp.nanosec) == (1_700_000_123, 0)
    if not compressed:
        assert np.array_equal(first.data.reshape(360, 640, 3), frames[0])


def test_bag_errors_name_the_topics(tmp_path, frames):
    path = tmp_path / 'two.mcap'
    rec = BagRecorder(str(path))
    from hand_tracker_ros.bags import image_message, typestore
    for topic in ('/left/image', '/right/image'):
        msg = image_message(frames[0], START, 'cam', False)
        rec.write(topic, 'sensor_msgs/msg/Image',
                  typestore().serialize_cdr(msg, 'sensor_msgs/msg/Image'), START)
    rec.close()
    with pytest.raises(BagError, match='several image topics.*/left/image.*/right/image'):
        BagImageSource(str(path))
    assert BagImageSource(str(path), '/right/image').topic == '/right/image'
    with pytest.raises(BagError, match="no image topic '/nope'"):
        BagImageSource(str(path), '/nope')
    with pytest.raises(BagError, match='exists already'):
        BagRecorder(str(path))


def _run_cli(*args, timeout=240):
    env = dict(os.environ)
    return subprocess.run([sys.executable, '-m', 'hand_tracker_ros.cli', 'run', *args],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


@pytest.mark.slow
@pytest.mark.ros
@pytest.mark.parametrize('name, compressed, rate', [
    ('in.mcap', False, '0'), ('in_folder', True, '1')])
def test_replay_bag_through_detector_and_record(tmp_path, frames, name, compressed, rate):
    """
    Every recorded frame goes through the detector with its original stamp.

    The output bag holds the images with detections, hands (and gestures) for each.
    """
    src = write_image_bag(str(tmp_path / name), frames, fps=10.0, compressed=compressed,
                          start_ns=START)
    out = tmp_path / 'out.mcap'
    res = _run_cli('--source', str(src), '--bag-rate', rate, '--record-bag', str(out))
    assert res.returncode == 0, res.stdout[-3000:]
    assert f'frames {N}/{N}' in res.stdout, res.stdout[-2000:]  # the same progress line
    assert f'wrote {out}' in res.stdout
    by_topic = {}
    for topic, _, msg in read_messages(str(out)):
        by_topic.setdefault(topic, []).append(msg)
    image_topic = '/image/compressed' if compressed else '/image'
    stamps = [START + i * 10**8 for i in range(N)]
    to_ns = lambda m: m.header.stamp.sec * 10**9 + m.header.stamp.nanosec  # noqa: E731
    assert [to_ns(m) for m in by_topic[image_topic]] == stamps
    assert [to_ns(m) for m in by_topic['/detections']] == stamps
    assert [to_ns(m) for m in by_topic['/hands']] == stamps
    dets = by_topic['/detections']
    assert all(m.header.frame_id == 'camera' for m in dets)
    assert sum(len(m.detections) for m in dets) > 0, 'the shipped model finds hands in EgoHands'
    for d in (d for m in dets for d in m.detections):
        assert d.results[0].hypothesis.class_id == 'hand'
        assert 0 < d.bbox.center.position.x < 640 and 0 < d.bbox.center.position.y < 360
