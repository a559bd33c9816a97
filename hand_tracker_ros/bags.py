"""
ROS 2 bags through the `rosbags` library, without rclpy.

Bags are rosbag2 folders with MCAP or sqlite3 storage, or single .mcap / .db3 files.

- :class:`BagImageSource` reads the image topic of a bag: serialized CDR messages with their
  recorded time, ready to be published unchanged (so the original header stamps are kept).
- :class:`BagRecorder` writes serialized messages (as rclpy's ``raw=True`` subscriptions give
  them) to a bag: ``out.mcap`` becomes a single MCAP file (Foxglove, ``ros2 bag info out.mcap``),
  any other name a rosbag2 folder with MCAP storage (``.db3`` suffix: sqlite3 storage). MCAP
  chunks are zstd-compressed by default (what MCAP readers decompress on their own, as
  ``ros2 bag record``'s ``zstd_fast`` storage preset writes); ``compression='none'`` turns it off.
- :func:`typestore` knows the standard messages plus ``vision_msgs`` and ``hand_tracker/msg``,
  registered from their ``.msg`` files, for (de)serialisation with rosbags' typesys.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
import shutil
import threading
from typing import Iterator, Optional

from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, StoragePlugin, Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from .resources import package_share_dir

REPO = Path(__file__).resolve().parents[1]
IMAGE_TYPES = {'sensor_msgs/msg/Image': False, 'sensor_msgs/msg/CompressedImage': True}
BAG_SUFFIXES = ('.mcap', '.db3')
#: ``--record-bag`` compression choices: MCAP chunk compression (zstd) or none
COMPRESSIONS = ('zstd', 'none')


class BagError(RuntimeError):
    """The bag cannot be read or written (the message says why)."""


def is_bag(source: str) -> bool:
    """Tell whether ``source`` is a .mcap/.db3 file or a rosbag2 folder (with metadata.yaml)."""
    path = Path(str(source))
    return (path.is_file() and path.suffix in BAG_SUFFIXES) or (path / 'metadata.yaml').is_file()


def _msg_dirs(package: str) -> list[Path]:
    """Folders holding ``package``'s .msg files: the installed share dir, else this repo."""
    installed = package_share_dir(package)
    found = [installed / 'msg'] if installed else []
    found.append(REPO / 'msg' if package == 'hand_tracker' else REPO / 'compat' / package / 'msg')
    return [d for d in found if d.is_dir()]


@lru_cache(maxsize=1)
def typestore():
    """Return the rosbags typestore: standard ROS 2 messages + vision_msgs + hand_tracker/msg."""
    store = get_typestore(Stores.LATEST)
    for package in ('vision_msgs', 'hand_tracker'):
        dirs = _msg_dirs(package)
        if not dirs:
            raise BagError(f'no .msg files of {package} found (install the package)')
        types = {}
        for f in sorted(dirs[0].glob('*.msg')):
            types.update(get_types_from_msg(f.read_text(), f'{package}/msg/{f.stem}'))
        store.register(types)
    return store


@dataclass
class BagMessage:
    """One recorded message, still serialized (CDR)."""

    topic: str
    msgtype: str
    timestamp_ns: int  # recording time
    data: bytes


class BagImageSource:
    """
    The image messages of one topic of a bag, in recording order.

    ``topic`` None picks the only image topic (Image or CompressedImage); with several the
    error lists them.
    """

    kind = 'bag'

    def __init__(self, path: str, topic: Optional[str] = None):
        self.source = str(path)
        try:
            self._reader = Reader(Path(path))
            self._reader.open()
        except Exception as exc:  # rosbags raises several types; all mean "cannot read"
            raise BagError(f'cannot open bag {path}: {exc}') from exc
        images = {c.topic: c for c in self._reader.connections if c.msgtype in IMAGE_TYPES}
        if topic is None and len(images) == 1:
            topic = next(iter(images))
        if topic not in images:
            listed = ', '.join(f'{t} ({c.msgtype})' for t, c in sorted(images.items())) or 'none'
            raise BagError(f'bag {path}: ' + (f'no image topic {topic!r}' if topic else
                                              'several image topics, choose one')
                           + f'; image topics: {listed}')
        self.topic = topic
        self.connection = images[topic]
        self.msgtype = self.connection.msgtype
        self.compressed = IMAGE_TYPES[self.msgtype]
        self.count = self.connection.msgcount

    def __len__(self) -> int:
        return self.count

    @property
    def native_fps(self) -> float:
        span = (self._reader.end_time - self._reader.start_time) * 1e-9
        return (self.count - 1) / span if self.count > 1 and span > 0 else 0.0

    def messages(self) -> Iterator[BagMessage]:
        for conn, t, data in self._reader.messages(connections=[self.connection]):
            yield BagMessage(conn.topic, conn.msgtype, t, bytes(data))

    def close(self) -> None:
        self._reader.close()


class BagRecorder:
    """
    Writes serialized messages of several topics to a new bag (thread-safe).

    ``compression``: 'zstd' (default) compresses each MCAP chunk; sqlite3 bags (.db3) have no
    chunks and are written uncompressed either way. 'none' writes plain chunks.
    """

    def __init__(self, path: str, compression: str = 'zstd'):
        self.path = Path(path)
        if compression not in COMPRESSIONS:
            raise BagError(f'unknown bag compression {compression!r}; one of {COMPRESSIONS}')
        if self.path.exists():
            raise BagError(f'{self.path} exists already; not overwriting it')
        self._single = self.path.suffix in BAG_SUFFIXES
        folder = self.path.with_name(self.path.name + '.partial') if self._single else self.path
        storage = StoragePlugin.SQLITE3 if self.path.suffix == '.db3' else StoragePlugin.MCAP
        self._folder = folder
        self._writer = Writer(folder, version=9, storage_plugin=storage)
        self.compression = compression if storage == StoragePlugin.MCAP else 'none'
        if self.compression == 'zstd':
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()
        self._connections: dict[str, object] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def write(self, topic: str, msgtype: str, data: bytes, timestamp_ns: int) -> None:
        with self._lock:
            conn = self._connections.get(topic)
            if conn is None:
                conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
                self._connections[topic] = conn
            self._writer.write(conn, int(timestamp_ns), bytes(data))
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> Path:
        """Finish the bag; returns its path."""
        with self._lock:
            self._writer.close()
            if self._single:
                inner = next(self._folder.glob('*' + self.path.suffix))
                inner.rename(self.path)
                shutil.rmtree(self._folder)
        return self.path


def normalize_msgtype(name: str) -> str:
    """'sensor_msgs/Image' or rclpy's class -> 'sensor_msgs/msg/Image'."""
    if not isinstance(name, str):
        name = f'{name.__module__.split(".")[0]}/msg/{name.__name__}'
    parts = name.split('/')
    return name if len(parts) == 3 else f'{parts[0]}/msg/{parts[-1]}'


def image_message(bgr, stamp_ns: int, frame_id: str, compressed: bool):
    """Return a rosbags sensor_msgs Image (bgr8) or CompressedImage (jpeg) of a BGR array."""
    import cv2
    import numpy as np
    ts = typestore()
    header = ts.types['std_msgs/msg/Header'](
        stamp=ts.types['builtin_interfaces/msg/Time'](sec=int(stamp_ns // 10**9),
                                                      nanosec=int(stamp_ns % 10**9)),
        frame_id=frame_id)
    if compressed:
        ok, jpg = cv2.imencode('.jpg', bgr)
        if not ok:
            raise BagError('cannot JPEG-encode the frame')
        return ts.types['sensor_msgs/msg/CompressedImage'](header=header, format='jpeg',
                                                           data=np.asarray(jpg, np.uint8).ravel())
    h, w = bgr.shape[:2]
    return ts.types['sensor_msgs/msg/Image'](
        header=header, height=h, width=w, encoding='bgr8', is_bigendian=0, step=w * 3,
        data=np.ascontiguousarray(bgr, np.uint8).ravel())


def write_image_bag(path: str, frames, topic: str = '/camera/image_raw', fps: float = 30.0,
                    compressed: bool = False, start_ns: int = 1_700_000_000 * 10**9,
                    frame_id: str = 'camera', compression: str = 'zstd') -> Path:
    """Record BGR ``frames`` as a bag (stamps ``start_ns`` + i / fps, in header and bag time)."""
    msgtype = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    recorder = BagRecorder(path, compression)
    try:
        for i, bgr in enumerate(frames):
            t = start_ns + int(round(i * 1e9 / fps))
            msg = image_message(bgr, t, frame_id, compressed)
            recorder.write(topic, msgtype, typestore().serialize_cdr(msg, msgtype), t)
    finally:
        out = recorder.close()
    return out


def read_messages(path: str, topics: Optional[list] = None) -> Iterator[tuple]:
    """(topic, recording time ns, deserialized rosbags message) of a bag, in time order."""
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, t, data in reader.messages(connections=conns):
            yield conn.topic, t, typestore().deserialize_cdr(data, conn.msgtype)
