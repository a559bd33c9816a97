"""
Hand landmarks: MediaPipe's ``hand_landmark_full/lite.tflite`` on upright square crops.

Input: a 224 x 224 RGB crop of a region (:mod:`~hand_tracker_ros.regions`), float in [0, 1].
Outputs, as read here (checked on real images, see ``test/test_landmarks.py``):

* ``Identity`` (1, 63): 21 keypoints x, y, z in crop pixels (z: depth relative to the wrist, in
  the same scale as x);
* ``Identity_1`` (1, 1): hand presence, already a probability in [0, 1];
* ``Identity_2`` (1, 1): handedness, a probability; > 0.5 is the person's own right hand on a
  non-mirrored image (MediaPipe's label "Right" assumes a mirrored selfie image; verified here
  against EgoHands' own/other left/right labels);
* ``Identity_3`` (1, 63): world keypoints in metres (not used).

:meth:`LandmarkModel.run` maps the keypoints back to image pixels through the crop's inverse
affine.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends import LiteRTRunner, ModelLoadError
from .hands import NUM_KEYPOINTS
from .palm import FETCH_HINT
from .regions import crop, to_image

INPUT_SIZE = 224


@dataclass
class LandmarkResult:
    """Per region: keypoints (N, 21, 3) image pixels, presence (N,), right (N,) probabilities."""

    keypoints: np.ndarray
    presence: np.ndarray
    right: np.ndarray


class LandmarkModel:
    """The hand-landmark model; ``run(rgb, regions)`` -> LandmarkResult."""

    def __init__(self, model_path: str | Path, num_threads: int = 2) -> None:
        self.runner = LiteRTRunner(model_path, num_threads, hint=FETCH_HINT)
        self.model_path = self.runner.model_path
        shapes = {d['name']: tuple(d['shape']) for d in self.runner.output_details}
        inp = tuple(self.runner.input_details[0]['shape'])
        expected = {'Identity': (1, 63), 'Identity_1': (1, 1), 'Identity_2': (1, 1)}
        if inp != (1, INPUT_SIZE, INPUT_SIZE, 3) or any(shapes.get(k) != v
                                                        for k, v in expected.items()):
            raise ModelLoadError(f'{model_path} is not a MediaPipe hand-landmark model: input '
                                 f'{inp}, outputs {shapes} ({FETCH_HINT})')

    def run(self, rgb: np.ndarray, regions: np.ndarray) -> LandmarkResult:
        """Keypoints, presence and handedness of each region (N, 4) of `rgb` (uint8 RGB)."""
        regions = np.asarray(regions, np.float32).reshape(-1, 4)
        n = len(regions)
        kps = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
        presence, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for i, region in enumerate(regions):
            patch, matrix = crop(rgb, region, INPUT_SIZE)
            out = self.runner.run((patch.astype(np.float32) / 255.0)[None])
            local = out['Identity'].reshape(NUM_KEYPOINTS, 3)
            kps[i, :, :2] = to_image(local[:, :2], matrix)
            kps[i, :, 2] = local[:, 2] * region[2] / INPUT_SIZE
            presence[i] = float(out['Identity_1'].reshape(-1)[0])
            right[i] = float(out['Identity_2'].reshape(-1)[0])
        return LandmarkResult(kps, presence, right)
