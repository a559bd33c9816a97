"""
Box geometry: the one home of IoU and box-format conversions.

Boxes are corner boxes ``[x_min, y_min, x_max, y_max]`` (or any consistent corner order, such as
the detector's normalised ``[y_min, x_min, y_max, x_max]``) unless a name says otherwise.
"""
from __future__ import annotations

import numpy as np


def as_boxes(boxes, dtype=np.float64) -> np.ndarray:
    """Any box-like input as an ``(N, 4)`` array of `dtype`."""
    return np.asarray(boxes, dtype=dtype).reshape(-1, 4)


def box_areas(boxes) -> np.ndarray:
    """Areas of ``(N, 4)`` corner boxes; inverted boxes have area 0."""
    b = as_boxes(boxes)
    return np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)


def pairwise_iou(a, b) -> np.ndarray:
    """Return the IoU matrix ``(len(a), len(b))`` of corner boxes; 0 where the union is empty."""
    a, b = as_boxes(a), as_boxes(b)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def cxcywh_to_xyxy(z) -> np.ndarray:
    """``(N, 4) [cx, cy, w, h]`` -> ``(N, 4) [x_min, y_min, x_max, y_max]``, float64."""
    z = as_boxes(z)
    return np.column_stack([z[:, 0] - z[:, 2] / 2, z[:, 1] - z[:, 3] / 2,
                            z[:, 0] + z[:, 2] / 2, z[:, 1] + z[:, 3] / 2])


def xyxy_to_cxcywh(b) -> np.ndarray:
    """``(N, 4) [x_min, y_min, x_max, y_max]`` -> ``(N, 4) [cx, cy, w, h]``, float64."""
    b = as_boxes(b)
    return np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                            b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]])
