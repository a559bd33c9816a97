"""
Rescoring and merging: landmark-checked proposals of every source -> the image's hands.

Input: :class:`~hand_tracker_ros.hands.Hands` with the proposal score in ``scores`` and the
landmark model's ``presence`` and ``keypoints``. Each hand's score becomes proposal score x
presence; its box is the keypoints' extent plus a margin, or (box rule per source) the
proposal's own box. Then non-maximum suppression over all sources together, at most
``max_hands``, sorted by score.
"""
from __future__ import annotations

import numpy as np

from .geometry import pairwise_iou
from .hands import Hands


def keypoint_boxes(keypoints: np.ndarray, margin: float) -> np.ndarray:
    """(N, 4) extent of (N, 21, >=2) keypoints, grown by `margin` x its size on every side."""
    kp = np.asarray(keypoints, np.float32)[..., :2].reshape(-1, 21, 2)
    lo, hi = kp.min(axis=1), kp.max(axis=1)
    pad = (hi - lo) * margin
    return np.concatenate([lo - pad, hi + pad], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_out: int) -> np.ndarray:
    """Return the indices kept by greedy NMS (highest score first), at most `max_out`."""
    order = list(np.argsort(-np.asarray(scores), kind='stable'))
    overlaps = pairwise_iou(boxes, boxes)
    keep = []
    while order and len(keep) < max_out:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if overlaps[i, j] < iou]
    return np.asarray(keep, np.int64)


def merge(hands: Hands, keep_proposal_box: np.ndarray, margin: float, nms_iou: float,
          max_hands: int, width: int, height: int) -> Hands:
    """
    Rescore, choose each box, de-duplicate.

    keep_proposal_box: bool (N,): keep the proposal's own box (else the keypoints' extent +
    `margin`). Boxes are clipped to the `width` x `height` image; a hand whose clipped box is
    empty is dropped.
    """
    if not len(hands):
        return Hands()
    scores = hands.scores * np.nan_to_num(hands.presence, nan=1.0)
    boxes = np.where(np.asarray(keep_proposal_box, bool)[:, None] | np.isnan(
        hands.keypoints[:, 0, :1]), hands.boxes, keypoint_boxes(hands.keypoints, margin))
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    out = Hands(boxes, scores, hands.keypoints, hands.presence, hands.right, hands.origin,
                hands.regions).take(valid)
    return out.take(nms(out.boxes, out.scores, nms_iou, max_hands))
