"""Frames from a V4L2/USB webcam, a video file or a folder of images (no rclpy)."""
from __future__ import annotations

import glob
from pathlib import Path
import threading
import time
from typing import Optional

import cv2
import numpy as np

from .vocabulary import IMAGE_SUFFIXES, is_image_file


class SourceError(RuntimeError):
    """The source cannot be opened or read."""


def is_camera_source(source: str) -> bool:
    """Return True for a camera index ("0") or a V4L2 device path ("/dev/video0")."""
    return source.isdigit() or source.startswith('/dev/video')


class FrameSource:
    """
    Opens ``source``: a camera index ("0"), a device path ("/dev/video0").

    A video file, a directory of images or a glob pattern of image files (``frames/16_pic*.jpg``;
    both sorted by file name). :meth:`read` returns BGR frames or None at the end.
    """

    def __init__(self, source: str, width: int = 0, height: int = 0, fps: float = 0.0,
                 loop: bool = False):
        self.source = str(source)
        self.loop = loop
        self._settings = (width, height, fps)
        self._cap: Optional[cv2.VideoCapture] = None
        self._files: list[Path] = []
        self._index = 0
        self._missing: Optional[SourceError] = None  # set while a reopen failed
        self._open()

    def _open(self) -> None:
        width, height, fps = self._settings
        path = Path(self.source)
        if path.is_dir():
            self.kind = 'images'
            self._files = sorted(p for p in path.iterdir() if is_image_file(p.name))
            if not self._files:
                raise SourceError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in folder {path}')
        elif not path.exists() and glob.has_magic(self.source):
            self.kind = 'images'
            self._files = sorted((Path(p) for p in glob.glob(self.source) if is_image_file(p)),
                                 key=lambda p: (p.name, str(p)))  # frame order across folders
            if not self._files:
                raise SourceError(f'no image files match {self.source!r}')
        elif is_camera_source(self.source):
            self.kind = 'camera'
            dev = int(self.source) if self.source.isdigit() else self.source
            self._cap = cv2.VideoCapture(dev, cv2.CAP_V4L2) if isinstance(dev, str) \
                else cv2.VideoCapture(dev)
            if not self._cap.isOpened():
                raise SourceError(
                    f'cannot open camera {self.source!r} (no such device, busy, or no permission: '
                    f'check `ls /dev/video*` and the video group). To run on recorded data '
                    f'instead, '
                    f'pass a video file or a folder of images as the source, e.g. '
                    f'source:=/path/to/video.mp4 or --source /path/to/frames/')
            if width and height:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self._cap.set(cv2.CAP_PROP_FPS, fps)
        elif path.is_file():
            self.kind = 'video'
            self._cap = cv2.VideoCapture(str(path))
            if not self._cap.isOpened():
                raise SourceError(f'cannot decode video file {path} (unsupported or corrupt)')
        else:
            raise SourceError(f'source {self.source!r} is neither a camera index, a /dev/video* '
                              f'device, a video file nor a folder of images')

    @property
    def native_fps(self) -> float:
        if self._cap is not None:
            f = self._cap.get(cv2.CAP_PROP_FPS)
            if f and np.isfinite(f) and f > 0:
                return float(f)
        return 0.0

    def __len__(self) -> int:
        if self.kind == 'images':
            return len(self._files)
        if self.kind == 'video':
            return int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return 0

    def read(self) -> Optional[np.ndarray]:
        """Next BGR frame; None when a file/folder has ended (and loop is off)."""
        if self._missing is not None:
            raise self._missing
        if self.kind == 'images':
            if self._index >= len(self._files):
                if not self.loop:
                    return None
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise SourceError(f'cannot read image {path}')
            return frame
        ok, frame = self._cap.read()
        if not ok and self.kind == 'video' and self.loop:
            self.reopen(strict=True)  # from the file again: it may have been replaced or removed
            ok, frame = self._cap.read()
        if not ok:
            if self.kind == 'camera':
                raise SourceError(f'camera {self.source!r} stopped delivering frames (unplugged?)')
            return None
        return frame

    def reopen(self, strict: bool = False) -> bool:
        """
        Open the source again (a camera that was unplugged, a file or folder that vanished).

        True on success. A video or folder restarts at its beginning. ``strict``: raise the
        SourceError instead of returning False.
        """
        self.close()
        self._cap, self._files, self._index = None, [], 0
        try:
            self._open()
        except SourceError as exc:
            self._missing = exc
            if strict:
                raise
            return False
        self._missing = None
        return True

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class Rate:
    """Sleeps to keep a loop at ``hz`` (no-op when hz <= 0); a set ``stop`` event cuts it short."""

    def __init__(self, hz: float):
        self.period = 1.0 / hz if hz > 0 else 0.0
        self._next = time.monotonic()

    def sleep(self, stop: Optional[threading.Event] = None) -> None:
        if not self.period:
            return
        self._next += self.period
        delay = self._next - time.monotonic()
        if delay > 0:
            if stop is None:
                time.sleep(delay)
            else:
                stop.wait(delay)
        else:
            self._next = time.monotonic()
