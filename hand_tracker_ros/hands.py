"""
Hands of one image as they flow between the stages of the chain, always in full-image pixels.

:class:`Hands` is :class:`~hand_tracker_ros.detections.Detections` (boxes, scores, classes:
what messages, tracking and evaluation read, see :meth:`Hands.detections`) plus what the
landmark stage adds: 21 keypoints per hand, the landmark model's presence and handedness, the
proposal source each hand came from and the region its keypoints were read in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detections import Detections

#: ``Hands.origin`` values: the proposal source of each hand.
ORIGIN_SSD, ORIGIN_PALM, ORIGIN_TRACK = 0, 1, 2
ORIGIN_NAMES = {ORIGIN_SSD: 'ssd', ORIGIN_PALM: 'palm', ORIGIN_TRACK: 'track'}

#: Handedness labels, from the person's own point of view (their left / right hand).
HANDEDNESS_UNKNOWN, HANDEDNESS_LEFT, HANDEDNESS_RIGHT = 0, 1, 2

#: The 21 MediaPipe hand keypoints' skeleton (pairs of keypoint indices): wrist 0, thumb 1-4,
#: index 5-8, middle 9-12, ring 13-16, little 17-20.
HAND_SKELETON = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9),
                 (9, 10), (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17),
                 (0, 17), (17, 18), (18, 19), (19, 20))
NUM_KEYPOINTS = 21


def _arr(a, shape_tail, dtype, n) -> np.ndarray:
    if a is None:
        return np.full((n,) + shape_tail, np.nan if dtype == np.float32 else 0, dtype)
    return np.asarray(a, dtype).reshape((-1,) + shape_tail)


@dataclass
class Hands:
    """
    Hands of one image.

    boxes:       float32 (N, 4) [x_min, y_min, x_max, y_max] pixels.
    scores:      float32 (N,) final scores in [0, 1] (proposal score x presence when the
                 landmark stage ran), sorted high to low by the merge stage.
    keypoints:   float32 (N, 21, 3) x, y in pixels and z (depth relative to the wrist, in the
                 same pixel scale; smaller = nearer the camera); NaN when not measured.
    presence:    float32 (N,) the landmark model's hand presence in [0, 1]; NaN when not run.
    right:       float32 (N,) the landmark model's probability that this is the person's own
                 right hand (on a non-mirrored image); NaN when not run.
    origin:      int32 (N,) ORIGIN_* proposal source.
    regions:     float32 (N, 4) the region the keypoints were read in: centre x, centre y, side
                 (pixels) and rotation (radians, counter-clockwise); NaN when none.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    keypoints: np.ndarray = None
    presence: np.ndarray = None
    right: np.ndarray = None
    origin: np.ndarray = None
    regions: np.ndarray = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.keypoints = _arr(self.keypoints, (NUM_KEYPOINTS, 3), np.float32, n)
        self.presence = _arr(self.presence, (), np.float32, n)
        self.right = _arr(self.right, (), np.float32, n)
        self.origin = _arr(self.origin, (), np.int32, n)
        self.regions = _arr(self.regions, (4,), np.float32, n)
        lengths = {len(self.scores), len(self.keypoints), len(self.presence), len(self.right),
                   len(self.origin), len(self.regions)}
        if lengths != {n}:
            raise ValueError(f'Hands: {n} boxes but field lengths {sorted(lengths)}')

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index) -> 'Hands':
        """Return the hands at `index` (indices or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype != bool:
            index = index.astype(np.int64).reshape(-1)
        return Hands(self.boxes[index], self.scores[index], self.keypoints[index],
                     self.presence[index], self.right[index], self.origin[index],
                     self.regions[index])

    @staticmethod
    def concat(parts: list['Hands']) -> 'Hands':
        """Return all hands of `parts`, in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Hands()
        return Hands(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ('boxes', 'scores', 'keypoints', 'presence', 'right', 'origin',
                                 'regions')))

    @staticmethod
    def from_detections(dets: Detections, origin: int = ORIGIN_SSD) -> 'Hands':
        """Boxes-only hands (no keypoints) from detector output."""
        return Hands(dets.boxes, dets.scores, origin=np.full(len(dets), origin, np.int32))

    def detections(self, hand_class: int = 1) -> Detections:
        """Return the boxes-only view (class `hand_class`), for messages and evaluation."""
        return Detections(self.boxes, self.scores, np.full(len(self), hand_class, np.int32),
                          self.keypoints, self.right)

    def handedness(self, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
        """
        (label HANDEDNESS_*, confidence in [0.5, 1]) per hand.

        Unknown where the model did not run or its confidence in the more likely side is
        below `min_confidence`: unknown rather than a guess.
        """
        right = self.right
        conf = np.where(np.isnan(right), 0.0, np.maximum(right, 1.0 - right))
        label = np.where(right >= 0.5, HANDEDNESS_RIGHT, HANDEDNESS_LEFT)
        label = np.where(np.isnan(right) | (conf < min_confidence), HANDEDNESS_UNKNOWN, label)
        return label.astype(np.int32), conf.astype(np.float32)
