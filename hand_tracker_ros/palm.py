"""
Palm proposals: MediaPipe's palm detector (``palm_detection_full/lite.tflite``) decoded.

Input: the image letterboxed into 192 x 192 (aspect kept, black bars), RGB float in [0, 1].
Outputs, as read here: regressors (1, 2016, 18) -- box centre x, y, width, height, then 7
keypoints x, y, in 192-pixel units, centres relative to the anchor centre -- and logits
(1, 2016, 1), turned into scores by a sigmoid. Anchors: strides 8, 16, 16, 16 -> 24 x 24 x 2 +
12 x 12 x 6 = 2016, centres at ((i + 0.5) / grid), fixed size 1. Keypoint 0 is the wrist, 2 the
base of the middle finger. Overlapping detections are merged by weighted NMS (score-weighted mean
of every box with IoU >= 0.3 with the best), as MediaPipe does, and mapped back through the
letterbox to the image's pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .backends import LiteRTRunner
from .merge import cluster_means, nms_clusters

FETCH_HINT = 'fetch the MediaPipe hand models with tools/fetch_mediapipe_models.sh'
INPUT_SIZE = 192
NUM_KEYPOINTS = 7


def palm_anchors(size: int = INPUT_SIZE) -> np.ndarray:
    """(2016, 2) anchor centres in [0, 1]: stride 8 with 2 anchors, stride 16 with 6."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        grid = size // stride
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid,
                             indexing='ij')
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass
class PalmDetections:
    """Palms of one image: boxes (N, 4) pixels, scores (N,), keypoints (N, 7, 2) pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou: float, max_out: int) -> PalmDetections:
    """Merge palms by weighted NMS (MediaPipe's): each is the score-mean of its cluster."""
    kept, clusters = nms_clusters(boxes, scores, iou, max_out)
    if not len(kept):
        return PalmDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                              np.zeros((0, NUM_KEYPOINTS, 2), np.float32))
    return PalmDetections(cluster_means(boxes, scores, clusters),
                          scores[kept].astype(np.float32),
                          cluster_means(keypoints, scores, clusters))


class PalmDetector:
    """The palm detector model; ``detect(rgb, min_score, max_palms)`` -> PalmDetections."""

    def __init__(self, model_path: str | Path, num_threads: int = 2,
                 nms_iou: float = 0.3) -> None:
        self.runner = LiteRTRunner(model_path, num_threads, hint=FETCH_HINT)
        self.model_path = self.runner.model_path
        shapes = {d['name']: tuple(d['shape']) for d in self.runner.output_details}
        inp = tuple(self.runner.input_details[0]['shape'])
        if inp != (1, INPUT_SIZE, INPUT_SIZE, 3) or sorted(shapes.values()) != [
                (1, 2016, 1), (1, 2016, 18)]:
            from .backends import ModelLoadError
            raise ModelLoadError(f'{model_path} is not a MediaPipe palm detector: input {inp}, '
                                 f'outputs {sorted(shapes.values())} ({FETCH_HINT})')
        self._regressors = next(n for n, s in shapes.items() if s[2] == 18)
        self._logits = next(n for n, s in shapes.items() if s[2] == 1)
        self.anchors = palm_anchors()
        self.nms_iou = nms_iou

    def detect(self, rgb: np.ndarray, min_score: float, max_palms: int) -> PalmDetections:
        """Palms in `rgb` (uint8 (H, W, 3)) scoring >= `min_score`, at most `max_palms`."""
        h, w = rgb.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        tensor = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        tensor[pad_y:pad_y + nh, pad_x:pad_x + nw] = cv2.resize(
            rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        ).astype(np.float32) / 255.0
        out = self.runner.run(tensor[None])
        raw = out[self._regressors][0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(out[self._logits][0, :, 0], -100, 100)))
        keep = scores >= min_score
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        # model pixels (192) of the letterboxed input -> image pixels
        cx = raw[:, 0] + anchors[:, 0] * INPUT_SIZE
        cy = raw[:, 1] + anchors[:, 1] * INPUT_SIZE
        boxes = np.column_stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2,
                                 cx + raw[:, 2] / 2, cy + raw[:, 3] / 2])
        kp = raw[:, 4:18].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :] * INPUT_SIZE
        offset = np.array([pad_x, pad_y], np.float64)
        boxes = (boxes.reshape(-1, 2, 2) - offset) / scale
        kp = (kp - offset) / scale
        return weighted_nms(boxes.reshape(-1, 4), scores.astype(np.float64), kp, self.nms_iou,
                            max_palms)
