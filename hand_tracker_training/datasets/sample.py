"""
The :class:`Sample` every reader returns, and the helpers the readers share.

A sample is one image, its size and its hands as ``float32 (N, 4)`` **[x_min, y_min, x_max,
y_max] pixel** boxes of the single class ``hand`` (:data:`~hand_tracker_ros.vocabulary.HAND`),
with the EgoHands side of each hand (:data:`~hand_tracker_ros.vocabulary.SIDES`; ``''`` when a
data set does not say).
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Optional
import warnings

import numpy as np
from PIL import Image


class DatasetWarning(UserWarning):
    """Annotations that were skipped (degenerate boxes or polygons); the message counts them."""


@dataclass(eq=False)
class Sample:
    """
    One image and its hands.

    ``boxes``: ``float32 (N, 4)`` [x_min, y_min, x_max, y_max] in pixels of the image;
    ``sides``: one per box, an entry of :data:`SIDES` or ``''`` (default: ``''`` for every box);
    ``source``: where in its data set the image is: the EgoHands video, ``<data set>/<split>``
    for YOLO, the JSON name for COCO;
    ``dataset``: the data set's name (its folder, the JSON name; the name of its entry in
    ``config/data_splits.yaml`` or an evaluation suite), by which results are reported.
    Every box is of the class ``hand``. Compared by identity (``boxes`` is an array).
    """

    image_path: str
    width: int
    height: int
    boxes: np.ndarray
    sides: Optional[list[str]] = None
    source: str = ''
    dataset: str = ''

    def __post_init__(self) -> None:
        self.image_path = str(self.image_path)
        self.width, self.height = int(self.width), int(self.height)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        if self.sides is None:
            self.sides = [''] * len(self.boxes)
        self.sides = list(self.sides)
        if len(self.sides) != len(self.boxes):
            raise ValueError(f'{self.image_path}: {len(self.boxes)} boxes but '
                             f'{len(self.sides)} sides')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'{self.image_path}: bad image size {self.width}x{self.height}')


def image_size(path: str | Path) -> tuple[int, int]:
    """
    ``(width, height)`` of an image from its header (the pixels are not decoded).

    Raises FileNotFoundError for a missing file, ValueError for an unreadable one or one whose
    EXIF orientation asks viewers to rotate or flip it (OpenCV would, TensorFlow would not, so
    its labels cannot match both: save it upright without the EXIF orientation).
    """
    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
            size = im.size
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f'{path}: not a readable image ({exc})') from None
    if orientation not in (0, 1):
        raise ValueError(f'{path}: EXIF orientation {orientation} rotates or flips the image; '
                         f'save it upright without EXIF orientation')
    return size


def clip_box(x0: float, y0: float, x1: float, y1: float, width: int,
             height: int) -> Optional[list[float]]:
    """Return the box clipped to the image, or None when nothing of it with area is left."""
    box = [min(max(x0, 0.0), width), min(max(y0, 0.0), height),
           min(max(x1, 0.0), width), min(max(y1, 0.0), height)]
    if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def warn_dropped(what: str, dropped: list[str]) -> None:
    """One :class:`DatasetWarning` counting the `dropped` annotations (the first 8 named)."""
    if dropped:
        shown = ', '.join(dropped[:8]) + (', ...' if len(dropped) > 8 else '')
        warnings.warn(f'{what}: dropped {len(dropped)} {shown}', DatasetWarning, stacklevel=3)


def make_sample(path: Path, boxes: list[list[float]], sides: list[str], source: str,
                size: tuple[int, int], dataset: str) -> Sample:
    """Make a :class:`Sample` of a reader's lists (`size` = (width, height))."""
    return Sample(str(path), size[0], size[1], np.asarray(boxes, np.float32).reshape(-1, 4),
                  sides, source, dataset)
