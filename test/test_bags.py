"""
Bags: real bags written from EgoHands frames (rosbags), replayed through `hand-tracker run`.

The bag it records is read back with rosbags' reader, and with Foxglove's `mcap` library as an
independent MCAP reader (zstd chunk compression, the default, and uncompressed).
"""
import os
import subprocess
import sys

import cv2
from hand_tracker_ros.bags import (BagError, BagImageSource, BagRecorder, is_bag, read_messages,
                                   write_image_bag)
from mcap.reader import make_reader
import numpy as np
import procs
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


def _mcap_chunks_and_messages(path) -> tuple[set, list]:
    """(chunk compressions, [(topic, log time, CDR bytes)]) read by Foxglove's mcap library."""
    with open(path, 'rb') as f:
        reader = make_reader(f)
        compressions = {c.compression for c in reader.get_summary().chunk_indexes}
        messages = [(channel.topic, msg.log_time, msg.data)
                    for _, channel, msg in reader.iter_messages()]
    return compressions, messages


def test_recorded_mcap_is_zstd_by_default_and_mcap_readers_read_it(tmp_path, egohands_dir):
    """Full-size EgoHands frames: zstd chunks by default, plain with 'none'; same messages."""
    files = sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:N]
    full = [cv2.imread(str(f)) for f in files]  # 1280x720 bgr8, as the camera node sends
    packed = write_image_bag(str(tmp_path / 'zstd.mcap'), full, start_ns=START)
    plain = write_image_bag(str(tmp_path / 'plain.mcap'), full, start_ns=START,
                            compression='none')
    zstd_chunks, zstd_msgs = _mcap_chunks_and_messages(packed)
    plain_chunks, plain_msgs = _mcap_chunks_and_messages(plain)
    assert zstd_chunks == {'zstd'} and plain_chunks == {''}
    assert len(zstd_msgs) == N and zstd_msgs == plain_msgs, 'the same CDR messages either way'
    rosbags_cdr = [m.data for m in BagImageSource(str(packed)).messages()]
    assert [data for _, _, data in zstd_msgs] == rosbags_cdr
    assert np.array_equal(next(read_messages(str(packed)))[2].data.reshape(720, 1280, 3),
                          full[0])
    size_z, size_plain = packed.stat().st_size, plain.stat().st_size
    print(f'{N} frames 1280x720: zstd {size_z / 1e6:.1f} MB, none {size_plain / 1e6:.1f} MB')
    assert size_z < 0.8 * size_plain, (size_z, size_plain)
    with pytest.raises(BagError, match='unknown bag compression'):
        BagRecorder(str(tmp_path / 'x.mcap'), compression='lz5')


def _run_cli(*args, timeout=240):
    env = dict(os.environ)
    return procs.run([sys.executable, '-m', 'hand_tracker_ros.cli', 'run', *args],
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
    assert _mcap_chunks_and_messages(out)[0] == {'zstd'}, '--record-bag compresses by default'
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
