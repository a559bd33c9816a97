"""
Regions of interest for the landmark model: one home for "proposal -> upright square".

A region is ``(cx, cy, side, angle)`` in full-image pixels: a square of `side` pixels centred at
``(cx, cy)``, rotated by `angle` radians counter-clockwise so that the hand's fingers point up in
the crop. Every region comes from the same two steps as MediaPipe's: a rectangle with a rotation
(from a palm detection, a box or keypoints), then :func:`transform` (shift towards the fingers,
square on the long side, scale). Only the numbers differ, and they are parameters
(:class:`RegionParams`); the presets MediaPipe uses are palm 2.6 / 0.5 and landmarks 2.0 / 0.1.

:func:`crop_affine` gives the 2x3 affine matrix from the image to a square crop of the region
and :func:`to_image` maps crop points back.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

#: Landmark indices whose extent gives a region from keypoints (MediaPipe's "partial" set: the
#: palm and the first finger joints, which the model places most reliably).
REGION_KEYPOINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


def _normalise_angle(a):
    return (np.asarray(a, np.float64) + np.pi) % (2 * np.pi) - np.pi


def upright_angle(base, tip) -> np.ndarray:
    """
    Rotation (radians) that turns the direction `base` -> `tip` (pixels, y down) upright.

    `base`, `tip`: (N, 2). A hand whose fingers already point up gets 0.
    """
    base, tip = np.asarray(base, np.float64).reshape(-1, 2), np.asarray(tip, np.float64)
    tip = tip.reshape(-1, 2)
    return _normalise_angle(np.pi / 2 - np.arctan2(-(tip[:, 1] - base[:, 1]),
                                                   tip[:, 0] - base[:, 0]))


def transform(cx, cy, width, height, angle, scale: float, shift: float) -> np.ndarray:
    """
    Rectangles (centre, size, rotation) -> square regions (N, 4): ``(cx, cy, side, angle)``.

    The centre moves by ``shift * height`` towards the fingers (up in the rotated frame), the
    side is ``scale`` x the long side.
    """
    cx, cy, width, height, angle = (np.asarray(v, np.float64).reshape(-1)
                                    for v in (cx, cy, width, height, angle))
    # "up" in the rotated frame, in image pixels (y down): (sin a, -cos a) for a ccw rotation
    cx = cx + shift * height * np.sin(angle)
    cy = cy - shift * height * np.cos(angle)
    side = scale * np.maximum(width, height)
    return np.column_stack([cx, cy, side, angle]).astype(np.float32)


def from_palms(boxes, keypoints, scale: float, shift: float) -> np.ndarray:
    """
    Regions of palm detections, rotated so that wrist -> middle finger points up.

    `boxes` (N, 4) pixels, `keypoints` (N, 7, 2) pixels (0 wrist, 2 base of the middle finger).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    kp = np.asarray(keypoints, np.float64).reshape(len(boxes), -1, 2)
    angle = upright_angle(kp[:, 0], kp[:, 2]) if len(boxes) else np.zeros(0)
    return transform((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                     boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], angle, scale, shift)


def from_boxes(boxes, scale: float) -> np.ndarray:
    """Axis-aligned square regions around `boxes` (N, 4): side `scale` x the long side."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return transform((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                     boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1],
                     np.zeros(len(boxes)), scale, 0.0)


def from_keypoints(keypoints, scale: float, shift: float) -> np.ndarray:
    """
    Regions of hand keypoints (N, 21, >=2) pixels, as MediaPipe's landmarks -> rectangle.

    Rotation: wrist 0 -> the middle of keypoints 5, 9, 13 (the knuckles) points up; the
    rectangle is the extent of :data:`REGION_KEYPOINTS` in that rotated frame.
    """
    kp = np.asarray(keypoints, np.float64)[..., :2].reshape(-1, 21, 2)
    if not len(kp):
        return np.zeros((0, 4), np.float32)
    knuckle = ((kp[:, 5] + kp[:, 13]) / 2 + kp[:, 9]) / 2
    angle = upright_angle(kp[:, 0], knuckle)
    pts = kp[:, REGION_KEYPOINTS]
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    # into the upright frame (as crop_affine turns the image), extent there, centre back
    rx = pts[..., 0] * c + pts[..., 1] * s
    ry = -pts[..., 0] * s + pts[..., 1] * c
    x0, x1, y0, y1 = rx.min(1), rx.max(1), ry.min(1), ry.max(1)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    cx = mx * c[:, 0] - my * s[:, 0]
    cy = mx * s[:, 0] + my * c[:, 0]
    return transform(cx, cy, x1 - x0, y1 - y0, angle, scale, shift)


def crop_affine(region, size: int) -> np.ndarray:
    """
    2x3 affine matrix (float64) from image pixels to a `size` x `size` crop of `region`.

    The crop is upright: the region's "up" (towards the fingers) is the crop's -y.
    """
    cx, cy, side, angle = (float(v) for v in region)
    side = max(side, 1e-3)
    k = size / side
    c, s = math.cos(angle), math.sin(angle)
    # crop = k * R * (p - centre) + size / 2 with R: x' = c x + s y, y' = -s x + c y (pixels,
    # y down), which takes the direction (sin a, -cos a) -- the fingers -- to (0, -1), up
    return np.array([[k * c, k * s, size / 2 - k * (c * cx + s * cy)],
                     [-k * s, k * c, size / 2 - k * (-s * cx + c * cy)]], np.float64)


def crop(rgb: np.ndarray, region, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the `size` x `size` crop of `region` and its affine matrix (outside: black)."""
    m = crop_affine(region, size)
    out = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return out, m


def to_image(points, matrix) -> np.ndarray:
    """Crop points (..., 2) -> image pixels through the inverse of the 2x3 `matrix`."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    p = np.asarray(points, np.float64)
    return p @ inv[:, :2].T + inv[:, 2]
