"""
hand_tracker_training.tfrecord: OD API TFRecords written from the real data.

Read back field by field.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
from hand_tracker_training.datasets import load_egohands, load_yolo, Sample
from hand_tracker_training.tfrecord import (HAND_LABEL_MAP, read_tfrecord, sample_to_example,
                                            write_tfrecord)
import numpy as np
import pytest
import tensorflow as tf


@pytest.fixture(scope='module')
def samples(egohands_dir, roboflow_dir) -> list[Sample]:
    """Frames of all three videos, two Roboflow images and a real frame without hands."""
    ego = load_egohands(egohands_dir, progress=False)[::30]
    empty = Sample(ego[0].image_path, ego[0].width, ego[0].height, np.zeros((0, 4)), [],
                   'no_hands')
    return ego + load_yolo(roboflow_dir, ['test'], progress=False)[:2] + [empty]


def check_record(record: dict, sample: Sample) -> None:
    name = Path(sample.image_path).name
    encoded = Path(sample.image_path).read_bytes()
    assert record['image/encoded'] == encoded  # the original JPEG bytes, not re-encoded
    assert record['image/format'] == 'jpeg'
    assert (record['image/width'], record['image/height']) == (sample.width, sample.height)
    assert record['image/filename'] == name
    assert record['image/source_id'] == f'{sample.source}/{name}'
    assert record['image/key/sha256'] == hashlib.sha256(encoded).hexdigest()
    boxes = np.stack([record['image/object/bbox/xmin'] * sample.width,
                      record['image/object/bbox/ymin'] * sample.height,
                      record['image/object/bbox/xmax'] * sample.width,
                      record['image/object/bbox/ymax'] * sample.height], axis=1).reshape(-1, 4)
    np.testing.assert_allclose(boxes, sample.boxes, rtol=1e-6, atol=1e-4)
    for key in ('xmin', 'ymin', 'xmax', 'ymax'):
        values = record[f'image/object/bbox/{key}']
        assert values.dtype == np.float32 and ((values >= 0) & (values <= 1)).all()
    n = len(sample.boxes)
    assert record['image/object/class/text'] == ['hand'] * n
    assert record['image/object/class/label'].tolist() == [1] * n
    assert record['image/object/side/text'] == sample.sides


def test_round_trip_field_by_field(samples, tmp_path):
    (path,) = write_tfrecord(samples, tmp_path / 'hands.record', progress=False)
    assert path == tmp_path / 'hands.record'
    records = read_tfrecord(path)
    assert len(records) == len(samples) == 13
    for record, sample in zip(records, samples):
        check_record(record, sample)
    assert any(r['image/object/side/text'] == [''] for r in records)  # Roboflow: no side
    assert records[-1]['image/object/class/label'].shape == (0,)  # the frame without hands
    # the encoded image decodes (as the OD API does) to the recorded size
    decoded = tf.io.decode_jpeg(records[0]['image/encoded'])
    assert tuple(decoded.shape) == (records[0]['image/height'], records[0]['image/width'], 3)


def test_sharded(samples, tmp_path):
    paths = write_tfrecord(samples, tmp_path / 'hands.record', num_shards=3, progress=False)
    assert [p.name for p in paths] == [f'hands.record-0000{k}-of-00003' for k in range(3)]
    assert len(read_tfrecord(paths[1])) == len(samples[1::3])  # round-robin
    records = read_tfrecord(tmp_path / 'hands.record')  # every shard, shard by shard
    order = [i for k in range(3) for i in range(k, len(samples), 3)]
    for record, i in zip(records, order, strict=True):
        check_record(record, samples[i])


def test_png_kept_and_other_formats_reencoded(samples, tmp_path):
    rgb = cv2.imread(samples[0].image_path)
    for suffix, fmt in (('.png', 'png'), ('.bmp', 'png')):
        path = tmp_path / f'frame{suffix}'
        cv2.imwrite(str(path), rgb)
        sample = Sample(str(path), samples[0].width, samples[0].height, samples[0].boxes,
                        samples[0].sides, 'converted')
        (record,) = read_tfrecord(write_tfrecord([sample], tmp_path / f'{suffix[1:]}.record',
                                                 progress=False))
        assert record['image/format'] == fmt
        if suffix == '.png':
            assert record['image/encoded'] == path.read_bytes()
        decoded = tf.io.decode_png(record['image/encoded']).numpy()
        np.testing.assert_array_equal(decoded, rgb[:, :, ::-1])  # lossless either way


def test_bad_input(samples, tmp_path):
    wrong_size = Sample(samples[0].image_path, 640, 360, samples[0].boxes, samples[0].sides)
    with pytest.raises(ValueError, match='image is 1280x720, the sample says 640x360'):
        sample_to_example(wrong_size)
    with pytest.raises(ValueError, match="exactly one 'hand'"):
        write_tfrecord(samples, tmp_path / 'x.record', label_map={1: 'face'}, progress=False)
    with pytest.raises(ValueError, match='num_shards'):
        write_tfrecord(samples, tmp_path / 'x.record', num_shards=0, progress=False)
    with pytest.raises(FileNotFoundError, match='nor shards'):
        read_tfrecord(tmp_path / 'missing.record')
    text = tmp_path / 'text.jpg'
    text.write_text('not an image')
    with pytest.raises(ValueError, match='not a readable image'):
        sample_to_example(Sample(str(text), 10, 10, np.zeros((0, 4))))


def test_label_map_id_used(samples, tmp_path):
    (path,) = write_tfrecord(samples[:1], tmp_path / 'x.record', label_map={3: 'hand', 1: 'face'},
                             progress=False)
    (record,) = read_tfrecord(path)
    assert record['image/object/class/label'].tolist() == [3] * len(samples[0].boxes)
    assert HAND_LABEL_MAP == {1: 'hand'}
