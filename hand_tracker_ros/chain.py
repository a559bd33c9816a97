"""
The run-time chain of stages, without rclpy: proposals -> upright regions -> landmarks -> merge.

:class:`HandChain` is built from the same parameter groups by the node, ``hand-tracker-eval``,
the benchmarks and the tests:

* ``ssd.*`` (:class:`SsdParams`)        the SSD's proposals (floor, how many, first crop);
* ``palm.*`` (:class:`PalmParams`)      MediaPipe's palm detector: on/off, floor, how many,
  how often, its region preset;
* ``landmarks.*`` (:class:`LandmarkParams`) the hand-landmark check: on/off (off = the SSD
  alone, at the node's ``score_threshold``), model, keypoint region preset, the handedness
  confidence below which a hand is published as unknown, tracking seeds;
* ``merge.*`` (:class:`MergeParams`)    the box rule per source, NMS, the operating threshold.

:meth:`HandChain.process` runs one image (safe in several worker threads);
:meth:`HandChain.remember` takes the published hands of a frame, in frame order, and is the one
explicit back edge: the next frames seed their landmark regions from those hands' keypoints
(as MediaPipe does), skip proposals that a seeded hand already covers, and run the palm
detector only when a hand was lost or every ``palm.every_n_frames``. With several workers,
"the previous frame" is the last frame *finished* before a frame's processing started. With
``still=True`` (evaluation of still images) there is no memory and every source runs on every
image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time
from typing import Optional

import numpy as np

from . import regions as R
from .backends import Detector
from .detections import Detections
from .geometry import pairwise_iou
from .hands import Hands, ORIGIN_PALM, ORIGIN_SSD, ORIGIN_TRACK
from .landmarks import LandmarkModel, LandmarkResult
from .merge import merge, proposal_scores, rescore, SCORE_RULES
from .palm import PalmDetector
from .resources import share_dir
from .tracking import param_field, validate_params


def _text_field(default: str, description: str):
    return field(default=default, metadata={'description': description})


@dataclass
class SsdParams:
    """SSD proposals (``ssd.<name>``): used when the landmark check runs."""

    floor: float = param_field(0.1, 0.0, 1.0, 'SSD proposals scoring lower are not checked '
                               '(landmarks on; off: score_threshold applies)')
    max_proposals: int = param_field(6, 0, 100, 'SSD proposals checked per image, best first')
    box_scale: float = param_field(1.6, 1.0, 5.0, ('first, axis-aligned landmark crop: side '
                                   "in the SSD box's long sides"))
    second_pass: bool = param_field(True, 0, 1, 'still images: crop SSD proposals a second '
                                    'time, upright, from their first keypoints (handedness '
                                    'needs it); video: the next frame does, from the seed')
    turn_min_score: float = param_field(0.6, 0.0, 1.0, 'still images: an SSD proposal scoring '
                                        'at least this that the upright crop reads as absent '
                                        '(ssd.turn_below_presence) is read again from first '
                                        'crops turned by 90, 180 and 270 degrees, the best '
                                        'reading kept (a sideways hand; 1.0: off)')
    turn_below_presence: float = param_field(0.5, 0.0, 1.0, 'still images: presence below '
                                             'which ssd.turn_min_score turns the crop')
    every_n_frames_tracking: int = param_field(1, 1, 1000, 'video: while hands are tracked, '
                                               'run the SSD only every n-th frame (new hands '
                                               'are found that much later)')
    recheck_after: int = param_field(15, 1, 1000, 'video: a proposal the landmark check '
                                     'rejected is not checked again for this many frames '
                                     '(while a proposal overlaps it by IoU 0.5)')
    max_new_per_frame: int = param_field(1, 1, 100, 'video: new proposals (not covered by a '
                                         'tracked hand) checked per frame, best first; the '
                                         'rest wait for the next frames')

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass
class PalmParams:
    """MediaPipe palm detector proposals (``palm.<name>``)."""

    enable: bool = param_field(True, 0, 1, 'run the palm detector (needs landmarks.enable)')
    model_path: str = _text_field('', 'palm detector .tflite; empty = models/mediapipe/'
                                  'palm_detection_full.tflite (or _lite with palm.lite)')
    lite: bool = param_field(False, 0, 1, 'use palm_detection_lite when model_path is empty')
    floor: float = param_field(0.05, 0.0, 1.0, 'palms scoring lower are not checked')
    max_proposals: int = param_field(6, 0, 100, 'palms checked per image, best first')
    nms_iou: float = param_field(0.3, 0.0, 1.0, 'weighted NMS overlap of palm detections')
    scale: float = param_field(2.6, 1.0, 5.0, "landmark crop side in the palm box's long sides")
    shift: float = param_field(0.5, -1.0, 1.0, 'crop centre shift towards the fingers, in palm '
                               'heights')
    every_n_frames: int = param_field(5, 1, 1000, 'video: run the palm detector every n-th '
                                      'frame, and on the next frame whenever a hand was lost')

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass
class LandmarkParams:
    """The hand-landmark check (``landmarks.<name>``)."""

    enable: bool = param_field(True, 0, 1, 'check every proposal with the hand-landmark model '
                               '(off: the SSD alone)')
    model_path: str = _text_field('', 'hand-landmark .tflite; empty = models/mediapipe/'
                                  'hand_landmark_full.tflite (or _lite with landmarks.lite)')
    lite: bool = param_field(False, 0, 1, 'use hand_landmark_lite when model_path is empty')
    scale: float = param_field(2.0, 1.0, 5.0, 'crop from keypoints: side in the keypoint '
                               "extent's long sides")
    shift: float = param_field(0.1, -1.0, 1.0, 'crop from keypoints: centre shift towards the '
                               'fingers, in extents')
    min_handedness: float = param_field(0.8, 0.5, 1.0, 'publish left/right only when the model '
                                        'is at least this sure, else unknown')
    track: bool = param_field(True, 0, 1, "video: seed the next frame's crops from this frame's "
                              'hands (skips their proposals)')
    seed_min_score: float = param_field(0.3, 0.0, 1.0, 'hands scoring at least this seed the '
                                        "next frame's crops")

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass
class MergeParams:
    """Rescoring and merging (``merge.<name>``): score = proposal score x presence (floored)."""

    ssd_box: bool = param_field(True, 0, 1, "SSD proposals keep the SSD's own box (else the "
                                'keypoint extent)')
    box_fusion: float = param_field(1.5, 0.0, 10.0, "a hand's box is the mean of the boxes "
                                    'of every proposal of that hand (its NMS cluster: SSD '
                                    'boxes, keypoint boxes), weighted by score to this power '
                                    "(0: the surest proposal's box alone)")
    score_rule: str = _text_field('product', 'score from proposal score p and presence q: '
                                  'product (p q), geometric (sqrt(p q)) or presence (q)')
    presence_floor: float = param_field(0.0, 0.0, 1.0, 'presence q counts as f + (1 - f) q: a '
                                        'proposal the landmark model cannot read keeps this '
                                        'share of its score')
    box_margin: float = param_field(0.075, 0.0, 1.0, 'keypoint boxes: extent grown by this '
                                    'fraction on every side')
    nms_iou: float = param_field(0.5, 0.0, 1.0, 'overlap above which the weaker of two hands '
                                 'is dropped (all sources together)')
    score_threshold: float = param_field(0.5, 0.0, 1.0, 'operating threshold on the final score '
                                         '(landmarks on; chosen on val)')

    def __post_init__(self) -> None:
        validate_params(self)
        if self.score_rule not in SCORE_RULES:
            raise ValueError(f'merge.score_rule must be one of {sorted(SCORE_RULES)}, got '
                             f'{self.score_rule!r}')


#: The chain's parameter groups, by ROS parameter prefix.
CHAIN_GROUPS = {'ssd': SsdParams, 'palm': PalmParams, 'landmarks': LandmarkParams,
                'merge': MergeParams}


def mediapipe_model(explicit: str, stem: str, lite: bool) -> str:
    """Return the model file: `explicit`, else models/mediapipe/<stem>_{full,lite}.tflite."""
    if explicit:
        return explicit
    variant = 'lite' if lite else 'full'
    return str(share_dir() / 'models' / 'mediapipe' / f'{stem}_{variant}.tflite')


@dataclass
class ChainResult:
    """
    One image's result.

    hands: above the operating threshold (published); checked: all after the merge;
    candidates: every landmark-checked proposal before the merge (proposal scores); costs;
    tracked_in: how many tracked hands seeded this frame; rejected: boxes of the proposals the
    landmark check rejected (both for :meth:`HandChain.remember`); ssd_ran: whether the SSD ran on
    this image (in a video, ``ssd.every_n_frames_tracking`` skips it on some frames).
    """

    hands: Hands
    checked: Hands
    candidates: Hands = field(default_factory=Hands)
    timings_ms: dict = field(default_factory=dict)
    landmark_calls: int = 0
    palm_ran: bool = False
    tracked_in: int = 0
    rejected: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ssd_ran: bool = False

    def detections(self) -> Detections:
        """Return the boxes-only view of the published hands."""
        return self.hands.detections()


class HandChain:
    """
    Proposals -> regions -> landmarks -> merge.

    The SSD is passed to :meth:`process` (the node may swap it at run time); the palm and
    landmark models are loaded here.
    Raises :class:`~hand_tracker_ros.backends.ModelLoadError` naming a missing or corrupt
    palm / landmark model file and the set-up command.
    """

    def __init__(self, ssd: SsdParams, palm: PalmParams,
                 landmarks: LandmarkParams, merge_params: MergeParams, num_threads: int = 2,
                 still: bool = False) -> None:
        self.ssd, self.palm_params, self.lm_params, self.merge_params = (ssd, palm, landmarks,
                                                                         merge_params)
        self.still = still
        self.landmarks = None
        self.palm = None
        if landmarks.enable:
            self.landmarks = LandmarkModel(
                mediapipe_model(landmarks.model_path, 'hand_landmark', landmarks.lite),
                num_threads)
            if palm.enable:
                self.palm = PalmDetector(
                    mediapipe_model(palm.model_path, 'palm_detection', palm.lite), num_threads,
                    palm.nms_iou)
        self._lock = threading.Lock()
        self._seeds = Hands()
        self._frames = 0
        self._palm_due = True
        self._rejected: list = []  # (box, frames since) of rejected proposals

    # ------------------------------------------------------------------ back edge
    def remember(self, result: ChainResult) -> None:
        """
        Keep what the frame just finished (frame order) tells the next frames.

        Its published hands seed the next crops; when fewer of the hands it was seeded with
        were found again, a hand was lost and the palm detector runs next; the proposals it
        rejected are not checked again for ``ssd.recheck_after`` frames.
        """
        if self.still or not self.lm_params.track:
            return
        hands, tracked_in = result.hands, result.tracked_in
        with self._lock:
            self._rejected = [(box, age + 1) for box, age in self._rejected
                              if age + 1 < self.ssd.recheck_after]
            self._rejected += [(box, 0) for box in result.rejected]
            seeds = hands.take(~np.isnan(hands.keypoints[:, 0, 0])
                               & (hands.scores >= self.lm_params.seed_min_score))
            if np.sum(seeds.origin == ORIGIN_TRACK) < tracked_in:
                self._palm_due = True  # a tracked hand was lost: look for it again
            self._seeds = seeds

    def reset(self) -> None:
        """Forget the seeds (a new video)."""
        with self._lock:
            self._seeds, self._palm_due, self._frames = Hands(), True, 0
            self._rejected = []

    def _take_schedule(self) -> tuple[Hands, bool, bool, np.ndarray]:
        """(seeds, run the palm detector, run the SSD, rejected boxes) of the next frame."""
        if self.still or not self.lm_params.track:
            return Hands(), True, True, np.zeros((0, 4), np.float32)
        with self._lock:
            self._frames += 1
            run_palm = self._palm_due or self._frames % self.palm_params.every_n_frames == 0
            self._palm_due = False
            run_ssd = (not len(self._seeds)
                       or self._frames % self.ssd.every_n_frames_tracking == 0)
            rejected = np.array([b for b, _ in self._rejected], np.float32).reshape(-1, 4)
            return self._seeds, run_palm, run_ssd, rejected

    # ------------------------------------------------------------------ one image
    def process(self, rgb: np.ndarray, detector: Optional[Detector], ssd_threshold: float,
                max_hands: int) -> ChainResult:
        """
        Run the chain on `rgb` (uint8 (H, W, 3) RGB) with the SSD `detector` (None: no SSD).

        ``ssd_threshold``: the SSD's own operating threshold (the node's ``score_threshold``),
        used when the landmark check is off. ``max_hands``: the node's ``max_detections``.
        """
        timings = {}
        t0 = time.perf_counter()
        height, width = rgb.shape[:2]
        floor = ssd_threshold if self.landmarks is None else self.ssd.floor
        if self.landmarks is None:
            seeds, run_palm, run_ssd, rejected = Hands(), False, True, None
        else:
            seeds, run_palm, run_ssd, rejected = self._take_schedule()
        dets = Detections()
        ssd_ran = detector is not None and run_ssd and (self.landmarks is None
                                                        or self.ssd.max_proposals > 0)
        if ssd_ran:
            dets = detector.detect(rgb, min_score=floor)
        timings['ssd'] = (time.perf_counter() - t0) * 1e3
        if self.landmarks is None:
            hands = Hands.from_detections(dets).take(np.arange(min(len(dets), max_hands)))
            return ChainResult(hands, hands, hands, timings, ssd_ran=ssd_ran)
        k = self.ssd.max_proposals
        dets = Detections(dets.boxes[:k], dets.scores[:k], dets.classes[:k])
        calls = 0
        parts = []
        # tracked hands: one crop each, from last frame's keypoints
        if len(seeds):
            t = time.perf_counter()
            regions = R.from_keypoints(seeds.keypoints, self.lm_params.scale,
                                       self.lm_params.shift)
            res = self.landmarks.run(rgb, regions)
            calls += len(regions)
            mp = self.merge_params
            parts.append(Hands(seeds.boxes, proposal_scores(
                seeds.scores, seeds.presence, mp.score_rule, mp.presence_floor), res.keypoints,
                res.presence, res.right, np.full(len(seeds), ORIGIN_TRACK), regions))
            timings['landmarks_tracked'] = (time.perf_counter() - t) * 1e3
        covered = seeds.boxes
        # SSD proposals not covered by a tracked hand: a first, axis-aligned crop, then upright
        t = time.perf_counter()
        fresh = _not_covered(dets.boxes, covered)
        video = not self.still and self.lm_params.track
        if video:  # the best few, not rejected lately; a tracked hand needs no proposal
            fresh &= _not_covered(dets.boxes, rejected, 0.5)
            fresh = np.flatnonzero(fresh)[:self.ssd.max_new_per_frame]
        else:
            fresh = np.flatnonzero(fresh)
        if len(fresh):
            boxes, scores = dets.boxes[fresh], dets.scores[fresh]
            checked, n_calls = self.check_boxes(rgb, boxes, scores, video)
            calls += n_calls
            parts.append(checked)
        timings['landmarks_ssd'] = (time.perf_counter() - t) * 1e3
        # palm proposals
        if self.palm is not None and run_palm and self.palm_params.max_proposals > 0:
            t = time.perf_counter()
            palms = self.palm.detect(rgb, self.palm_params.floor, self.palm_params.max_proposals)
            timings['palm'] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            keep = _not_covered(palms.boxes, covered)
            if video:
                keep &= _not_covered(palms.boxes, rejected, 0.5)
                keep &= np.cumsum(keep) <= self.ssd.max_new_per_frame
            if keep.any():
                regions = R.from_palms(palms.boxes[keep], palms.keypoints[keep],
                                       self.palm_params.scale, self.palm_params.shift)
                res = self.landmarks.run(rgb, regions)
                calls += len(regions)
                parts.append(Hands(palms.boxes[keep], palms.scores[keep], res.keypoints,
                                   res.presence, res.right, np.full(int(keep.sum()), ORIGIN_PALM),
                                   regions))
            timings['landmarks_palm'] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        candidates = Hands.concat(parts)
        mp = self.merge_params
        keep_box = (candidates.origin == ORIGIN_SSD) & mp.ssd_box
        checked = merge(candidates, keep_box, mp.box_margin, mp.nms_iou, max(max_hands, 1) * 3,
                        width, height, mp.score_rule, mp.box_fusion, mp.presence_floor)
        hands = checked.take(checked.scores >= mp.score_threshold)
        hands = hands.take(np.arange(min(len(hands), max_hands)))
        timings['merge'] = (time.perf_counter() - t) * 1e3
        rejected = candidates.boxes[(candidates.origin != ORIGIN_TRACK) & (rescore(
            candidates.scores, candidates.presence, mp.score_rule, mp.presence_floor)
            < mp.score_threshold)]
        return ChainResult(hands, checked, candidates, timings, calls,
                           run_palm and self.palm is not None, len(seeds), rejected,
                           ssd_ran=ssd_ran)

    def check_boxes(self, rgb: np.ndarray, boxes: np.ndarray, scores: Optional[np.ndarray] = None,
                    video: bool = False) -> tuple[Hands, int]:
        """
        (hands, landmark calls) of the boxes (N, 4): the landmark check of SSD proposals.

        A first, axis-aligned crop (``ssd.box_scale``), then, on still images
        (``ssd.second_pass``), an upright one from the first keypoints; a proposal scoring at
        least ``ssd.turn_min_score`` that is read as absent is read again from first crops
        turned by quarter turns. Also how evaluation reads keypoints in ground-truth boxes
        (`scores` None: every box counts as sure). Needs ``landmarks.enable``.
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.ones(len(boxes), np.float32) if scores is None else scores
        first = R.from_boxes(boxes, self.ssd.box_scale)
        if self.ssd.second_pass and not video:
            res, regions, calls = self._upright(rgb, first)
            # the first crop has no orientation: a sideways or upside-down hand in it can be
            # read as absent; its best reading from a first crop turned by quarter turns is kept
            turn = np.flatnonzero((scores >= self.ssd.turn_min_score)
                                  & (res.presence < self.ssd.turn_below_presence)
                                  & (self.ssd.turn_min_score < 1.0))
            for quarter in (1, 2, 3) if len(turn) else ():
                turned = first[turn].copy()
                turned[:, 3] += quarter * np.pi / 2
                alt, alt_regions, n_calls = self._upright(rgb, turned)
                calls += n_calls
                better = alt.presence > res.presence[turn]
                for name in ('keypoints', 'presence', 'right'):
                    getattr(res, name)[turn[better]] = getattr(alt, name)[better]
                regions[turn[better]] = alt_regions[better]
            right = res.right
        else:
            res, regions, calls = self.landmarks.run(rgb, first), first, len(first)
            # video: sided from the next frame's upright crop
            right = np.full(len(boxes), np.nan) if self.ssd.second_pass else res.right
        return Hands(boxes, scores, res.keypoints, res.presence, right,
                     np.full(len(boxes), ORIGIN_SSD), regions), calls

    def _upright(self, rgb: np.ndarray, first: np.ndarray) -> tuple[LandmarkResult, np.ndarray,
                                                                    int]:
        """Return (result, upright regions, calls): landmarks in `first`, then upright ones."""
        res = self.landmarks.run(rgb, first)
        regions = R.from_keypoints(res.keypoints, self.lm_params.scale, self.lm_params.shift)
        return self.landmarks.run(rgb, regions), regions, 2 * len(first)


def _not_covered(boxes: np.ndarray, covered: np.ndarray, iou: float = 0.3) -> np.ndarray:
    """Whether each box overlaps no covered box by `iou` or more (a tracked hand's)."""
    if not len(boxes):
        return np.zeros(0, bool)
    if not len(covered):
        return np.ones(len(boxes), bool)
    return pairwise_iou(boxes, covered).max(axis=1) < iou


class ChainDetector:
    """
    The chain as a detector for still images: ``detect(rgb, min_score)`` like the backends'.

    What :func:`~hand_tracker_training.evaluate.evaluate_detector` and ``hand-tracker-eval``
    run: every landmark-checked hand (all sources on, no tracking memory), so PR curves span
    every threshold; the node publishes those scoring at least ``merge.score_threshold``.
    Detections carry the hands' keypoints.
    """

    def __init__(self, detector: Detector, chain: HandChain, max_hands: int = 10) -> None:
        self.detector, self.chain, self.max_hands = detector, chain, max_hands
        self.name = f'{detector.name}+landmarks' if chain.landmarks is not None else detector.name
        self.model_path, self.labels = detector.model_path, detector.labels

    @property
    def min_handedness(self) -> float:
        """Return the confidence below which a hand's side is published as unknown."""
        return self.chain.lm_params.min_handedness

    @property
    def operating_threshold(self) -> float:
        """Return the threshold the node publishes at (merge's, or the SSD's when alone)."""
        return self.chain.merge_params.score_threshold

    def detect(self, rgb: np.ndarray, min_score: float = 0.0) -> Detections:
        """Return the checked hands of `rgb` scoring at least `min_score`, with keypoints."""
        result = self.chain.process(rgb, self.detector, min_score, self.max_hands)
        return result.checked.detections().filter(min_score)


def chain_from_defaults(ssd_only: bool = False, num_threads: int = 2,
                        still: bool = True) -> HandChain:
    """Return the chain at the node's defaults (``ssd_only``: the SSD alone)."""
    return HandChain(SsdParams(), PalmParams(), LandmarkParams(enable=not ssd_only),
                     MergeParams(), num_threads=num_threads, still=still)
