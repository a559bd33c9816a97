"""The detector's result type, shared by backends, tracking, evaluation and the nodes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


def _boxes(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(-1, 4)


@dataclass
class Detections:
    """
    Detections of one image.

    boxes:   float32 (N, 4) [x_min, y_min, x_max, y_max] in pixels of the image given to the
             detector (the original camera image, whatever resizing the model needed).
    scores:  float32 (N,) confidences in [0, 1], sorted high to low by the backends.
    classes: int32 (N,) label-map ids (1 = hand for the shipped model).
    keypoints: None, or float32 (N, 21, 3) hand keypoints (x, y pixels, relative depth; NaN
             rows: none) when the landmark chain measured them.
    right:   None, or float32 (N,) the landmark model's probability that the hand is the
             person's own right hand (NaN: not measured).
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    keypoints: Optional[np.ndarray] = None
    right: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.boxes = _boxes(self.boxes)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.classes = np.asarray(self.classes, dtype=np.int32).reshape(-1)
        if not (len(self.boxes) == len(self.scores) == len(self.classes)):
            raise ValueError(f'Detections: {len(self.boxes)} boxes, {len(self.scores)} scores, '
                             f'{len(self.classes)} classes')
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, 21, 3)
            if len(self.keypoints) != len(self.scores):
                raise ValueError(f'Detections: {len(self.scores)} scores but '
                                 f'{len(self.keypoints)} keypoint sets')
        if self.right is not None:
            self.right = np.asarray(self.right, dtype=np.float32).reshape(-1)
            if len(self.right) != len(self.scores):
                raise ValueError(f'Detections: {len(self.scores)} scores but '
                                 f'{len(self.right)} handedness values')

    def __len__(self) -> int:
        return len(self.scores)

    def filter(self, min_score: float) -> 'Detections':  # noqa: A003
        """Return the detections whose score is at least `min_score`."""
        keep = self.scores >= min_score
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep],
                          None if self.keypoints is None else self.keypoints[keep],
                          None if self.right is None else self.right[keep])
