"""
The training input pipeline: numpy + OpenCV, a :class:`keras.utils.PyDataset` (no TensorFlow).

Images are decoded once and kept in memory, downscaled so their longer side is at most
``cache_side`` pixels (1280x720 EgoHands frames are far larger than a 300x300 network needs),
then every batch is augmented (:mod:`hand_tracker_training.augment`), stretched to
``S x S`` and encoded against the anchors (:mod:`hand_tracker_training.box_coding`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import math

import cv2
from hand_tracker_training.augment import SSDAugmenter
from hand_tracker_training.box_coding import encode_targets
import keras
import numpy as np
from tqdm import tqdm


@dataclass
class CachedImage:
    """A decoded RGB image and its pixel boxes [x_min, y_min, x_max, y_max] at that size."""

    rgb: np.ndarray
    boxes: np.ndarray
    scale: float  # cached size / original size
    source: str = ''  # the sample's source (data set / video)


def read_rgb(path: str) -> np.ndarray:
    """Return an image file as RGB uint8 (raises ``FileNotFoundError`` when unreadable)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def cache_images(samples: Iterable, cache_side: int = 640,
                 progress: bool = True) -> list[CachedImage]:
    """Decode and downscale the images of `samples` (objects with ``image_path``, ``boxes``)."""
    samples = list(samples)
    out = []
    for s in tqdm(samples, desc='loading images', unit='img', disable=not progress,
                  leave=False):
        rgb = read_rgb(s.image_path)
        scale = min(1.0, cache_side / max(rgb.shape[:2]))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        boxes = np.asarray(s.boxes, np.float32).reshape(-1, 4) * scale
        out.append(CachedImage(rgb, boxes, scale, getattr(s, 'source', '')))
    return out


def to_network_input(rgb: np.ndarray, input_size: int) -> np.ndarray:
    """Stretch an RGB image to ``input_size`` squared, float32 in [0, 255] (the model input)."""
    return cv2.resize(rgb, (input_size, input_size),
                      interpolation=cv2.INTER_LINEAR).astype(np.float32)


def normalised_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel [x_min, y_min, x_max, y_max] -> normalised [ymin, xmin, ymax, xmax]."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.stack([b[:, 1] / height, b[:, 0] / width, b[:, 3] / height, b[:, 2] / width],
                    axis=1)


class SSDDataset(keras.utils.PyDataset):
    """
    Batches ``(images (B,S,S,3) float32, {'boxes': (B,A,5), 'classes': (B,A,1)})``.

    With ``augment`` the order is reshuffled and the images re-augmented every epoch, both
    drawn from ``seed``, the epoch and the batch index, so a run is reproducible whatever the
    number of workers.
    """

    def __init__(self, images: Sequence[CachedImage], anchors: np.ndarray, input_size: int,
                 batch_size: int = 16, augment: bool = True, seed: int = 0,
                 augmenter: SSDAugmenter | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not images:
            raise ValueError('SSDDataset: no images')
        self.images = list(images)
        self.anchors = anchors
        self.input_size = input_size
        self.batch_size = batch_size
        self.augment = augment
        self.seed = seed
        self.augmenter = augmenter or SSDAugmenter()
        self.epoch = 0
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        if not self.augment:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._permutation()

    def example(self, i: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """Image `i` (augmented when `rng` is given) as network input and normalised boxes."""
        item = self.images[i]
        rgb, boxes = item.rgb, item.boxes
        if rng is not None:
            rgb, boxes = self.augmenter(rgb, boxes, rng)
        h, w = rgb.shape[:2]
        return to_network_input(rgb, self.input_size), normalised_boxes(boxes, w, h)

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        xs, box_t, cls_t = [], [], []
        for i in idx:
            x, boxes = self.example(int(i), rng)
            b, c = encode_targets(boxes, self.anchors)
            xs.append(x)
            box_t.append(b)
            cls_t.append(c)
        return np.stack(xs), {'boxes': np.stack(box_t), 'classes': np.stack(cls_t)}
