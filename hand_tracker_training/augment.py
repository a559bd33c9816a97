"""
SSD-style data augmentation on numpy images with pixel boxes (OpenCV, no TensorFlow).

Boxes are ``float32 (N, 4)`` ``[x_min, y_min, x_max, y_max]`` pixels of the image they go
with. Every transform returns the image and the boxes moved with it, so a box covers the same
pixels before and after.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _area(boxes: np.ndarray) -> np.ndarray:
    return (np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
            * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def crop(image: np.ndarray, boxes: np.ndarray, window: tuple[int, int, int, int],
         min_visible: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Cut ``window = (x0, y0, x1, y1)`` out of `image`.

    Boxes are clipped to the window and shifted into its coordinates; a box is kept if at
    least `min_visible` of its area remains (a hand partly cut by the crop is still a hand).
    Returns ``(image, boxes, keep)`` where `keep` is the boolean mask of the input boxes kept.
    """
    x0, y0, x1, y1 = window
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    clipped = np.stack([np.clip(b[:, 0], x0, x1), np.clip(b[:, 1], y0, y1),
                        np.clip(b[:, 2], x0, x1), np.clip(b[:, 3], y0, y1)], axis=1)
    visible = _area(clipped) / np.maximum(_area(b), 1e-6)
    keep = (visible >= min_visible) & (_area(clipped) > 0)
    out = clipped[keep] - np.array([x0, y0, x0, y0], np.float32)
    return image[y0:y1, x0:x1], out.astype(np.float32), keep


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and its boxes with it."""
    w = image.shape[1]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return image[:, ::-1], np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], axis=1)


def expand(image: np.ndarray, boxes: np.ndarray, ratio: float, offset: tuple[float, float],
           fill: tuple[int, int, int] = (124, 116, 104)) -> tuple[np.ndarray, np.ndarray]:
    """
    Zoom out: place `image` on a `ratio` times larger canvas of `fill`.

    `fill` is the ImageNet mean, the image goes at fractional `offset` (x, y in [0, 1]); hands
    get smaller, boxes move with the image.
    """
    h, w = image.shape[:2]
    cw, ch = int(round(w * ratio)), int(round(h * ratio))
    x0, y0 = int(offset[0] * (cw - w)), int(offset[1] * (ch - h))
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = fill
    canvas[y0:y0 + h, x0:x0 + w] = image
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return canvas, b + np.array([x0, y0, x0, y0], np.float32)


def photometric(image: np.ndarray, rng: np.random.Generator, brightness: float = 32,
                contrast: tuple[float, float] = (0.7, 1.3),
                saturation: tuple[float, float] = (0.7, 1.3), hue: float = 8) -> np.ndarray:
    """Random brightness, contrast, saturation and hue (OpenCV HSV, hue in degrees / 2)."""
    img = image.astype(np.float32)
    img = img * rng.uniform(*contrast) + rng.uniform(-brightness, brightness)
    hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.uniform(-hue, hue))) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


@dataclass
class SSDAugmenter:
    """
    The SSD recipe (OD API ``ssd_random_crop`` / zoom-out + flip + colour jitter).

    An image is either zoomed out (``expand_probability``, canvas up to ``max_expand`` times
    the image: smaller hands than in the data) or else, with ``crop_probability``, cropped
    (larger hands). A crop keeps a patch of ``area`` fraction of the image with aspect ratio
    (relative to the image's) in ``aspect``, drawn until the patch covers at least a randomly
    chosen ``min_object_covered`` fraction of some hand (or the original image is kept after
    ``max_attempts``); hands with less than ``min_visible`` of their area left are dropped.
    """

    expand_probability: float = 0.3
    max_expand: float = 2.0
    crop_probability: float = 0.7
    min_object_covered: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    area: tuple[float, float] = (0.2, 1.0)
    aspect: tuple[float, float] = (0.5, 2.0)
    min_visible: float = 0.3
    max_attempts: int = 30
    flip_probability: float = 0.5
    photometric_probability: float = 0.8

    def random_window(self, width: int, height: int, boxes: np.ndarray,
                      rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Return a crop window ``(x0, y0, x1, y1)`` satisfying the coverage constraint."""
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        need = float(rng.choice(self.min_object_covered))
        for _ in range(self.max_attempts):
            area = rng.uniform(*self.area)
            ar = np.exp(rng.uniform(*np.log(self.aspect)))
            w = min(1.0, np.sqrt(area * ar))
            h = min(1.0, np.sqrt(area / ar))
            cw, ch = max(int(w * width), 2), max(int(h * height), 2)
            x0 = int(rng.integers(0, width - cw + 1))
            y0 = int(rng.integers(0, height - ch + 1))
            win = np.array([x0, y0, x0 + cw, y0 + ch], np.float32)
            if len(b) == 0:
                return x0, y0, x0 + cw, y0 + ch
            lo = np.maximum(b[:, :2], win[:2])
            hi = np.minimum(b[:, 2:], win[2:])
            covered = np.prod(np.clip(hi - lo, 0, None), axis=1) / np.maximum(_area(b), 1e-6)
            if covered.max() >= need:
                return x0, y0, x0 + cw, y0 + ch
        return 0, 0, width, height

    def __call__(self, image: np.ndarray, boxes: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random augmentation of ``(image, boxes)``."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if rng.random() < self.expand_probability:
            image, boxes = expand(image, boxes, rng.uniform(1.0, self.max_expand),
                                  (rng.random(), rng.random()))
        elif rng.random() < self.crop_probability:
            win = self.random_window(image.shape[1], image.shape[0], boxes, rng)
            image, boxes, _ = crop(image, boxes, win, self.min_visible)
        if rng.random() < self.flip_probability:
            image, boxes = hflip(image, boxes)
        if rng.random() < self.photometric_probability:
            image = photometric(image, rng)
        return np.ascontiguousarray(image), boxes
