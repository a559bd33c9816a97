"""
Box coding and anchor matching (numpy, data side).

Conventions: ``*_norm`` boxes are normalised ``[ymin, xmin, ymax, xmax]`` (OD API order);
anchors are normalised ``[cy, cx, h, w]`` (:mod:`hand_tracker_training.anchors`). Codes are
the Faster R-CNN box coder of the OD API: ``[ty, tx, th, tw]`` with scale factors
``(10, 10, 5, 5)``.
"""
from __future__ import annotations

from hand_tracker_ros.geometry import pairwise_iou
import numpy as np


SCALE_FACTORS: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
_EPS = 1e-8

#: Classification targets of :func:`match`.
NEGATIVE, IGNORE = 0, -1


def anchors_to_corners(anchors: np.ndarray) -> np.ndarray:
    """[cy, cx, h, w] -> [ymin, xmin, ymax, xmax]."""
    a = np.asarray(anchors, np.float32)
    half = a[:, 2:] / 2
    return np.concatenate([a[:, :2] - half, a[:, :2] + half], axis=1)


def encode(boxes_norm: np.ndarray, anchors: np.ndarray,
           scale_factors=SCALE_FACTORS) -> np.ndarray:
    """Encode boxes (one per anchor) relative to `anchors`: ``float32 (A, 4)`` codes."""
    b = np.asarray(boxes_norm, np.float32)
    h = np.maximum(b[:, 2] - b[:, 0], _EPS)
    w = np.maximum(b[:, 3] - b[:, 1], _EPS)
    cy = (b[:, 0] + b[:, 2]) / 2
    cx = (b[:, 1] + b[:, 3]) / 2
    acy, acx, ah, aw = (anchors[:, i] for i in range(4))
    sy, sx, sh, sw = scale_factors
    return np.stack([sy * (cy - acy) / ah, sx * (cx - acx) / aw,
                     sh * np.log(h / ah), sw * np.log(w / aw)], axis=1).astype(np.float32)


def decode(codes: np.ndarray, anchors: np.ndarray, scale_factors=SCALE_FACTORS) -> np.ndarray:
    """Inverse of :func:`encode`: codes ``(..., A, 4)`` -> normalised [ymin, xmin, ymax, xmax]."""
    c = np.asarray(codes, np.float32)
    sy, sx, sh, sw = scale_factors
    acy, acx, ah, aw = (anchors[:, i] for i in range(4))
    cy = c[..., 0] / sy * ah + acy
    cx = c[..., 1] / sx * aw + acx
    h = np.exp(c[..., 2] / sh) * ah
    w = np.exp(c[..., 3] / sw) * aw
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1).astype(np.float32)


def match(gt_norm: np.ndarray, anchors: np.ndarray, pos_iou: float = 0.5,
          neg_iou: float = 0.4) -> np.ndarray:
    """
    Assign ground-truth boxes to anchors (OD API argmax matcher, ``force_match_for_each_row``).

    Returns ``int64 (A,)``: the index of the matched box, ``-1`` for a negative anchor (best IoU
    below `neg_iou`) or ``-2`` for an ignored one (between `neg_iou` and `pos_iou`). Every box
    also gets its best anchor, whatever the IoU, so no hand is left without an anchor.
    """
    gt = np.asarray(gt_norm, np.float32).reshape(-1, 4)
    matches = np.full(len(anchors), -1, np.int64)
    if len(gt) == 0:
        return matches
    overlaps = pairwise_iou(gt, anchors_to_corners(anchors))  # (G, A)
    best_gt = overlaps.argmax(axis=0)
    best_iou = overlaps.max(axis=0)
    matches[best_iou >= pos_iou] = best_gt[best_iou >= pos_iou]
    matches[(best_iou >= neg_iou) & (best_iou < pos_iou)] = -2
    # forced matches, in increasing IoU order so a contested anchor goes to its best box
    best_anchor = overlaps.argmax(axis=1)
    for g in np.argsort(overlaps[np.arange(len(gt)), best_anchor]):
        matches[best_anchor[g]] = g
    return matches


def encode_targets(gt_norm: np.ndarray, anchors: np.ndarray, pos_iou: float = 0.5,
                   neg_iou: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """
    Training targets of one image.

    Returns ``(box_target float32 (A, 5), cls_target float32 (A, 1))``: the codes of each
    anchor's matched box with a 5th column 1 for positive anchors (0 otherwise), and the class
    target 1 (hand), 0 (background) or -1 (ignored).
    """
    m = match(gt_norm, anchors, pos_iou, neg_iou)
    pos = m >= 0
    box_target = np.zeros((len(anchors), 5), np.float32)
    if pos.any():
        gt = np.asarray(gt_norm, np.float32).reshape(-1, 4)
        box_target[pos, :4] = encode(gt[m[pos]], anchors[pos])
        box_target[pos, 4] = 1.0
    cls_target = np.where(pos, 1.0, np.where(m == -2, IGNORE, NEGATIVE)).astype(np.float32)
    return box_target, cls_target[:, None]
