"""
Rescoring and merging: landmark-checked proposals of every source -> the image's hands.

Input: :class:`~hand_tracker_ros.hands.Hands` with the proposal score in ``scores`` and the
landmark model's ``presence`` and ``keypoints``. Each hand's score becomes a function of both
(:func:`rescore`: proposal score x presence, with a floor under presence); its box is the
keypoints' extent plus a margin, or (box rule per source) the proposal's own box. Then
non-maximum suppression over all sources together (two hands overlap by their boxes or by their
keypoints' extents), at most ``max_hands``, sorted by score. With ``box_fusion`` k > 0 a kept
hand's box is the mean of the boxes of every proposal NMS counted as that hand (itself and those
it suppressed), weighted by score^k: the keypoints' extent and the SSD's box measure the same
hand differently (the SSD box is trained on the data sets' labels, the keypoints are tighter);
on the val parts the mean scored a higher AP@0.75 than the surest box alone on most sources
(models/chain_info.yaml; k = 0: the kept hand's own box).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .geometry import pairwise_iou
from .hands import Hands


#: How proposal score p and presence q make a hand's score s, and p back from s and q.
SCORE_RULES = {
    'product': (lambda p, q: p * q, lambda s, q: s / q),
    'geometric': (lambda p, q: np.sqrt(p * q), lambda s, q: s * s / q),
    'presence': (lambda p, q: q, lambda s, q: s),
}


def _presence(presence: np.ndarray, floor: float) -> np.ndarray:
    """Presence as the score rules read it: unmeasured (NaN) is 1, and q becomes f + (1 - f) q."""
    q = np.nan_to_num(np.asarray(presence, np.float32), nan=1.0)
    return np.maximum(floor + (1.0 - floor) * q, 1e-6)


def rescore(scores: np.ndarray, presence: np.ndarray, rule: str = 'product',
            presence_floor: float = 0.0) -> np.ndarray:
    """
    Return the hands' scores from proposal scores p and presence q by `rule`.

    `presence_floor` f: q counts as ``f + (1 - f) q``, so a proposal the landmark model cannot
    read (a close hand cut by the frame) keeps the share f of its proposal score, and one it
    calls absent scores at most f.
    """
    if rule not in SCORE_RULES:
        raise ValueError(f'merge: unknown score rule {rule!r} ({sorted(SCORE_RULES)})')
    return SCORE_RULES[rule][0](np.asarray(scores, np.float32), _presence(presence,
                                                                          presence_floor))


def proposal_scores(scores: np.ndarray, presence: np.ndarray, rule: str = 'product',
                    presence_floor: float = 0.0) -> np.ndarray:
    """Return the proposal scores p that :func:`rescore` turned into `scores` (its inverse)."""
    return SCORE_RULES[rule][1](np.asarray(scores, np.float32), _presence(presence,
                                                                          presence_floor))


def keypoint_boxes(keypoints: np.ndarray, margin: float) -> np.ndarray:
    """(N, 4) extent of (N, 21, >=2) keypoints, grown by `margin` x its size on every side."""
    kp = np.asarray(keypoints, np.float32)[..., :2].reshape(-1, 21, 2)
    lo, hi = kp.min(axis=1), kp.max(axis=1)
    pad = (hi - lo) * margin
    return np.concatenate([lo - pad, hi + pad], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_out: int,
        keypoints: Optional[np.ndarray] = None) -> np.ndarray:
    """
    Return the indices kept by greedy NMS (highest score first), at most `max_out`.

    With `keypoints` (N, 21, >=2; NaN rows: none) two hands also overlap by the IoU of their
    keypoints' extents: the same hand measured twice (an SSD box and a palm's keypoint box of
    different extents) is one hand.
    """
    return nms_clusters(boxes, scores, iou, max_out, keypoints)[0]


def nms_clusters(boxes: np.ndarray, scores: np.ndarray, iou: float, max_out: int,
                 keypoints: Optional[np.ndarray] = None) -> tuple[np.ndarray, list]:
    """
    Return :func:`nms`'s kept indices and, for each, the indices it stands for.

    Each kept hand's cluster is itself and the hands it suppressed (not those an earlier kept
    hand had already suppressed).
    """
    order = list(np.argsort(-np.asarray(scores), kind='stable'))
    overlaps = pairwise_iou(boxes, boxes)
    if keypoints is not None and len(boxes):
        measured = np.isfinite(np.asarray(keypoints)[:, :, :2]).all(axis=(1, 2))
        kp_boxes = np.where(measured[:, None], keypoint_boxes(np.nan_to_num(keypoints), 0.0),
                            0.0)
        overlaps = np.maximum(overlaps, np.where(measured[:, None] & measured[None, :],
                                                 pairwise_iou(kp_boxes, kp_boxes), 0.0))
    keep, clusters = [], []
    while order and len(keep) < max_out:
        i = order.pop(0)
        keep.append(i)
        clusters.append(np.asarray([i] + [j for j in order if overlaps[i, j] >= iou], np.int64))
        order = [j for j in order if overlaps[i, j] < iou]
    return np.asarray(keep, np.int64), clusters


def cluster_means(values: np.ndarray, scores: np.ndarray, clusters: list, power: float = 1.0
                  ) -> np.ndarray:
    """
    Return one value per cluster: the mean of its members' `values` (N, ...) weighted by score^k.

    Weighted NMS (MediaPipe's, k = 1) and the merge's box fusion. A cluster whose weights are all
    zero gets its first (kept) value.
    """
    values = np.asarray(values)
    out = np.empty((len(clusters),) + values.shape[1:], np.float32)
    for n, members in enumerate(clusters):
        weights = np.asarray(scores, np.float64)[members] ** power
        out[n] = (np.tensordot(weights, values[members], axes=1) / weights.sum()
                  if weights.sum() > 0 else values[members[0]])
    return out


def merge(hands: Hands, keep_proposal_box: np.ndarray, margin: float, nms_iou: float,
          max_hands: int, width: int, height: int, score_rule: str = 'product',
          box_fusion: float = 0.0, presence_floor: float = 0.0) -> Hands:
    """
    Rescore (:func:`rescore`), choose each box, de-duplicate.

    keep_proposal_box: bool (N,): keep the proposal's own box (else the keypoints' extent +
    `margin`). Boxes are clipped to the `width` x `height` image; a hand whose clipped box is
    empty is dropped. `box_fusion` k > 0: a kept hand's box becomes the mean of its NMS
    cluster's boxes (itself and the hands it suppressed, each by the box rule) weighted by
    score^k (:func:`cluster_means`).
    """
    if not len(hands):
        return Hands()
    keep_box = np.asarray(keep_proposal_box, bool)
    scores = rescore(hands.scores, hands.presence, score_rule, presence_floor)
    boxes = np.where(keep_box[:, None] | np.isnan(hands.keypoints[:, 0, :1]), hands.boxes,
                     keypoint_boxes(hands.keypoints, margin))
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    out = Hands(boxes, scores, hands.keypoints, hands.presence, hands.right, hands.origin,
                hands.regions).take(valid)
    kept, clusters = nms_clusters(out.boxes, out.scores, nms_iou, max_hands, out.keypoints)
    if box_fusion > 0 and len(kept):
        out.boxes[kept] = cluster_means(out.boxes, out.scores, clusters, box_fusion)
    return out.take(kept)
