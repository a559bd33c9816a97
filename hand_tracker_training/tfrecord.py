"""TFRecords in the TF Object Detection API schema, from and back to :class:`Sample` data.

One ``tf.train.Example`` per image, with the keys the OD API's ``TfExampleDecoder`` reads::

    image/encoded               the image file's own bytes (JPEG/PNG kept as they are)
    image/format                'jpeg' or 'png'
    image/height, image/width   pixels
    image/filename              the file's name
    image/source_id             '<source>/<file name>' (unique: frame names repeat per video)
    image/key/sha256            hex sha256 of image/encoded
    image/object/bbox/xmin|xmax|ymin|ymax   boxes normalised to [0, 1]
    image/object/class/text     'hand' per box
    image/object/class/label    its id in the label map (1)
    image/object/side/text      extra: own_left/own_right/other_left/other_right or ''

The label map is written with :func:`hand_tracker_ros.label_map.write_label_map`.
"""
from __future__ import annotations

import glob
import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from hand_tracker_ros.vocabulary import HAND
from hand_tracker_training.datasets.sample import Sample

#: The label map of the hand detector.
HAND_LABEL_MAP: dict[int, str] = {1: HAND}

_STRING_KEYS = ('image/format', 'image/filename', 'image/source_id', 'image/key/sha256')
_BOX_KEYS = ('image/object/bbox/xmin', 'image/object/bbox/ymin', 'image/object/bbox/xmax',
             'image/object/bbox/ymax')
_TEXT_LIST_KEYS = ('image/object/class/text', 'image/object/side/text')

#: Parsing spec of every key (the OD API's types: scalars fixed, per-box lists variable).
FEATURES = {
    'image/encoded': tf.io.FixedLenFeature([], tf.string),
    'image/height': tf.io.FixedLenFeature([], tf.int64),
    'image/width': tf.io.FixedLenFeature([], tf.int64),
    **{key: tf.io.FixedLenFeature([], tf.string, default_value='') for key in _STRING_KEYS},
    **{key: tf.io.VarLenFeature(tf.float32) for key in _BOX_KEYS},
    **{key: tf.io.VarLenFeature(tf.string) for key in _TEXT_LIST_KEYS},
    'image/object/class/label': tf.io.VarLenFeature(tf.int64),
}


def encoded_image(path: str | Path) -> tuple[bytes, str]:
    """``(bytes, format)`` of an image file: JPEG and PNG files as they are (never re-encoded),
    other formats (BMP, WebP, ...) losslessly re-encoded as PNG. Raises FileNotFoundError /
    ValueError for a missing or unreadable file."""
    data = Path(path).read_bytes()
    if data[:3] == b'\xff\xd8\xff':
        return data, 'jpeg'
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return data, 'png'
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'{path}: not a readable image')
    ok, png = cv2.imencode('.png', image)
    if not ok:
        raise ValueError(f'{path}: cannot re-encode as PNG')
    return png.tobytes(), 'png'


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _hand_id(label_map: Mapping[int, str]) -> int:
    ids = [i for i, name in label_map.items() if name == HAND]
    if len(ids) != 1:
        raise ValueError(f'the label map needs exactly one {HAND!r} entry, got {dict(label_map)}')
    return int(ids[0])


def sample_to_example(sample: Sample, label_map: Mapping[int, str] = HAND_LABEL_MAP
                      ) -> tf.train.Example:
    """The OD API ``tf.train.Example`` of one sample (every box a hand).

    Raises ValueError when the image's own size is not the sample's width x height (the
    normalised boxes would be wrong) or the label map has no single ``hand``.
    """
    class_id = _hand_id(label_map)
    encoded, fmt = encoded_image(sample.image_path)
    with Image.open(io.BytesIO(encoded)) as im:
        if im.size != (sample.width, sample.height):
            raise ValueError(f'{sample.image_path}: image is {im.size[0]}x{im.size[1]}, the '
                             f'sample says {sample.width}x{sample.height}')
    name = Path(sample.image_path).name
    b = sample.boxes
    n = len(b)
    feature = {
        'image/encoded': _bytes([encoded]),
        'image/format': _bytes([fmt.encode()]),
        'image/height': _ints([sample.height]),
        'image/width': _ints([sample.width]),
        'image/filename': _bytes([name.encode()]),
        'image/source_id': _bytes([f'{sample.source}/{name}'.encode()]),
        'image/key/sha256': _bytes([hashlib.sha256(encoded).hexdigest().encode()]),
        'image/object/bbox/xmin': _floats((b[:, 0] / sample.width).tolist()),
        'image/object/bbox/ymin': _floats((b[:, 1] / sample.height).tolist()),
        'image/object/bbox/xmax': _floats((b[:, 2] / sample.width).tolist()),
        'image/object/bbox/ymax': _floats((b[:, 3] / sample.height).tolist()),
        'image/object/class/text': _bytes([HAND.encode()] * n),
        'image/object/class/label': _ints([class_id] * n),
        'image/object/side/text': _bytes([side.encode() for side in sample.sides]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def shard_paths(path: str | Path, num_shards: int) -> list[Path]:
    """``[path]`` for one shard, else the OD API's ``path-0000k-of-0000n`` names."""
    path = Path(path)
    if num_shards == 1:
        return [path]
    return [path.with_name(f'{path.name}-{k:05d}-of-{num_shards:05d}') for k in range(num_shards)]


def write_tfrecord(samples: Sequence[Sample], path: str | Path,
                   label_map: Mapping[int, str] = HAND_LABEL_MAP, num_shards: int = 1,
                   progress: bool = True) -> list[Path]:
    """Write `samples` as OD API TFRecords (see the module doc) and return the files.

    With ``num_shards > 1`` the samples go round-robin into ``path-0000k-of-0000n`` files.
    The class of every box is the label map's ``hand`` id. Raises ValueError for fewer than
    one shard, a label map without ``hand`` or an image whose size is not the sample's.
    """
    if num_shards < 1:
        raise ValueError(f'num_shards must be >= 1, got {num_shards}')
    _hand_id(label_map)
    paths = shard_paths(path, num_shards)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    writers = [tf.io.TFRecordWriter(str(p)) for p in paths]
    try:
        for i, sample in enumerate(tqdm(samples, desc=f'writing {paths[0].name}', unit='img',
                                        disable=not progress, leave=False)):
            writers[i % num_shards].write(
                sample_to_example(sample, label_map).SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    return paths


def tfrecord_files(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files of a TFRecord: the file itself, a list of files, or the shards
    ``path-?????-of-?????`` of a sharded one. Raises FileNotFoundError when there are none."""
    if not isinstance(path, (str, Path)):
        return [f for p in path for f in tfrecord_files(p)]
    path = Path(path)
    if path.is_file():
        return [path]
    shards = sorted(glob.glob(glob.escape(str(path)) + '-[0-9][0-9][0-9][0-9][0-9]-of-'
                                                       '[0-9][0-9][0-9][0-9][0-9]'))
    if not shards:
        raise FileNotFoundError(f'no TFRecord {path} (nor shards {path}-?????-of-?????)')
    return [Path(s) for s in shards]


def parse_example(serialized: bytes) -> dict:
    """One serialized OD API example as Python values: ``image/encoded`` bytes, the other
    strings ``str``, height/width ``int``, boxes ``float32`` arrays, class labels an ``int64``
    array, ``image/object/class/text`` and ``image/object/side/text`` lists of ``str``
    (side empty when the record has none)."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    record: dict = {
        'image/encoded': parsed['image/encoded'].numpy(),
        'image/height': int(parsed['image/height']),
        'image/width': int(parsed['image/width']),
        'image/object/class/label': tf.sparse.to_dense(
            parsed['image/object/class/label']).numpy().astype(np.int64),
    }
    record.update({key: parsed[key].numpy().decode() for key in _STRING_KEYS})
    record.update({key: tf.sparse.to_dense(parsed[key]).numpy().astype(np.float32)
                   for key in _BOX_KEYS})
    record.update({key: [v.decode() for v in tf.sparse.to_dense(parsed[key]).numpy()]
                   for key in _TEXT_LIST_KEYS})
    return record


def read_tfrecord(path: str | Path | Sequence[str | Path]) -> list[dict]:
    """Every example of a TFRecord (file, files or shards, see :func:`tfrecord_files`), in file
    order, parsed by :func:`parse_example`."""
    files = tfrecord_files(path)
    return [parse_example(raw.numpy())
            for raw in tf.data.TFRecordDataset([str(f) for f in files])]
