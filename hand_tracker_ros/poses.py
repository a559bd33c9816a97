"""
Static hand poses from the 21 hand keypoints: finger count 0-5 and named poses, with confidence.

Finger-geometry rules, on the keypoints of :mod:`~hand_tracker_ros.landmarks` (image pixels
and relative depth, any rotation or scale):

* a long finger (index, middle, ring, little) is extended when it is straight (the distance
  from its knuckle to its tip over the length of its bones, ``straight``) and reaches away
  from the wrist (its tip over its middle joint's distance to the wrist, ``reach``);
* the thumb, the main error of rules (0.93 finger-count accuracy on the held-out webcam
  sessions, 0.86 on train), is read by a small classifier (:class:`ThumbModel`, one hidden
  layer on the thumb's and the knuckles' keypoints in a canonical hand frame; weights in
  ``models/pose_thumb.json``, trained by :mod:`hand_tracker_training.poses` on the train
  parts, chosen on val). ``poses.thumb_classifier: false`` uses the rule: straight and its tip
  away from the palm (``thumb_out`` palm widths from the index knuckle).

Each test is a logistic of its margin to its threshold (``softness``); a finger's extension
probability is the product of its tests, and the finger count's confidence is the probability
of the whole extended/folded pattern. Named poses follow from the pattern:

=============  ===================================================================
fist           no finger extended
point          the index alone
victory        index and middle
three          index to ring, or middle to little (thumb folded)
four           index to little (thumb folded)
open_palm      all five
thumb_up/down  the thumb alone, pointing up / down in the image (within 45 degrees)
ok             thumb out, thumb and index tips touch (``ok_touch`` palm widths), the
               other three extended
other          any other pattern (the count still holds)
=============  ===================================================================

Parameters: :class:`PoseParams` (ROS parameters ``poses.<name>``). Thresholds were chosen on
the train parts and checked on val (``hand-tracker-eval --poses``, docs in the README).
"""
from __future__ import annotations

from dataclasses import dataclass
import enum
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .gestures import Gesture, RecognisedGesture
from .resources import share_dir
from .tracking import param_field, Track, TrackState, validate_params

#: Keypoint indices: wrist, then (base, knuckle/MCP, middle joint/PIP, DIP, tip) per finger.
WRIST = 0
THUMB = (1, 2, 3, 4)
LONG_FINGERS = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
FINGER_NAMES = ('thumb', 'index', 'middle', 'ring', 'little')


class Pose(enum.IntEnum):
    """Named poses, numbered as the ``TrackedHand.msg`` POSE_* constants."""

    UNKNOWN = 0
    FIST = 1
    POINT = 2
    VICTORY = 3
    THREE = 4
    FOUR = 5
    OPEN_PALM = 6
    THUMB_UP = 7
    THUMB_DOWN = 8
    OK = 9
    OTHER = 10


#: Extended-finger patterns (thumb, index, middle, ring, little) of the poses named by pattern.
_PATTERNS = {
    (0, 0, 0, 0, 0): Pose.FIST,
    (0, 1, 0, 0, 0): Pose.POINT,
    (0, 1, 1, 0, 0): Pose.VICTORY,
    (0, 1, 1, 1, 0): Pose.THREE,
    (0, 0, 1, 1, 1): Pose.THREE,
    (0, 1, 1, 1, 1): Pose.FOUR,
    (1, 1, 1, 1, 1): Pose.OPEN_PALM,
}


@dataclass
class PoseParams:
    """Pose settings (ROS parameters ``poses.<name>``)."""

    enable: bool = param_field(True, 0, 1, 'classify the static pose of every hand with '
                               'keypoints')
    thumb_classifier: bool = param_field(True, 0, 1, 'read the thumb with the trained '
                                         'classifier (models/pose_thumb.json); false: the rule')
    straight: float = param_field(0.85, 0.0, 1.0, 'long finger extended: knuckle-to-tip '
                                  'distance over the bone lengths at least this')
    reach: float = param_field(1.1, 0.5, 3.0, "long finger extended: tip's distance to the "
                               "wrist over its middle joint's at least this")
    thumb_straight: float = param_field(0.85, 0.0, 1.0, 'thumb extended: knuckle-to-tip '
                                        'distance over the bone lengths at least this')
    thumb_out: float = param_field(0.9, 0.0, 5.0, 'thumb extended: tip at least this many palm '
                                   'widths from the index knuckle')
    ok_touch: float = param_field(0.35, 0.0, 2.0, 'ok: thumb and index tips within this many '
                                  'palm widths')
    softness: float = param_field(0.05, 0.001, 1.0, 'confidence: margin (in the units of each '
                                  'test) at which a test is 73 % sure')
    hold_time: float = param_field(0.5, 0.0, 60.0, 'a pose event fires when a hand has held '
                                   'the same pose this many seconds (once per occurrence)')
    min_confidence: float = param_field(0.6, 0.0, 1.0, 'frames where the pose is less sure '
                                        'than this count as no pose (publish UNKNOWN)')

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass
class PoseResult:
    """
    Per hand (N): the finger count, the named pose and their confidences.

    count:            int32 (N,) extended fingers 0-5; -1 without keypoints.
    count_confidence: float32 (N,) probability of the extended/folded pattern, [0, 1].
    pose:             int32 (N,) :class:`Pose`; UNKNOWN without keypoints or below
                      ``min_confidence``.
    confidence:       float32 (N,) the pose's confidence, [0, 1].
    extended:         float32 (N, 5) extension probability per finger (thumb first).
    """

    count: np.ndarray
    count_confidence: np.ndarray
    pose: np.ndarray
    confidence: np.ndarray
    extended: np.ndarray

    def names(self) -> list[str]:
        """Return each hand's pose name in lower case, e.g. 'thumb_up'."""
        return [Pose(int(p)).name.lower() for p in self.pose]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def finger_features(keypoints: np.ndarray) -> dict[str, np.ndarray]:
    """
    Return the geometry the rules read, per hand, from keypoints (N, 21, 3).

    ``straight`` (N, 5) knuckle-to-tip distance over the bone lengths (thumb: from its MCP);
    ``reach`` (N, 4) long fingers' tip-to-wrist over middle-joint-to-wrist distance;
    ``thumb_out`` (N,) thumb tip to index knuckle in palm widths (index to little knuckle);
    ``ok_gap`` (N,) thumb tip to index tip in palm widths; ``thumb_dir`` (N, 2) unit image
    direction of the thumb (MCP to tip).
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 21, 3)
    palm = np.maximum(_dist(kp[:, 5], kp[:, 17]), 1e-6)
    chains = ((2, 3, 4),) + tuple(f[1:] for f in LONG_FINGERS)
    straight = []
    for joints in chains:
        pts = kp[:, list(joints)]
        bones = sum(_dist(pts[:, j], pts[:, j + 1]) for j in range(len(joints) - 1))
        straight.append(_dist(pts[:, 0], pts[:, -1]) / np.maximum(bones, 1e-6))
    wrist = kp[:, WRIST]
    reach = np.stack([_dist(kp[:, f[3]], wrist) / np.maximum(_dist(kp[:, f[1]], wrist), 1e-6)
                      for f in LONG_FINGERS], 1)
    direction = kp[:, 4, :2] - kp[:, 2, :2]
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
    return {'straight': np.stack(straight, 1), 'reach': reach,
            'thumb_out': _dist(kp[:, 4], kp[:, 5]) / palm,
            'ok_gap': _dist(kp[:, 4], kp[:, 8]) / palm, 'thumb_dir': direction}


def canonical(keypoints: np.ndarray) -> np.ndarray:
    """
    Keypoints (N, 21, 3) in a canonical hand frame, (N, 21, 3).

    Origin at the wrist, the wrist-to-middle-knuckle vector pointing up (-y) with length 1,
    mirrored so that the index knuckle is right of the little one (left and right hands, palm
    and back alike).
    """
    kp = np.asarray(keypoints, np.float64).reshape(-1, 21, 3)
    kp = kp - kp[:, :1]
    length = np.maximum(np.linalg.norm(kp[:, 9, :2], axis=1), 1e-6)
    u = kp[:, 9, :2] / length[:, None]
    c, s = -u[:, 1], u[:, 0]
    x = c[:, None] * kp[:, :, 0] - s[:, None] * kp[:, :, 1]
    y = s[:, None] * kp[:, :, 0] + c[:, None] * kp[:, :, 1]
    out = np.stack([x, y, kp[:, :, 2]], -1) / length[:, None, None]
    flip = np.where(out[:, 5, 0] >= out[:, 17, 0], 1.0, -1.0)
    out[:, :, 0] *= flip[:, None]
    return out


#: The keypoints the thumb classifier reads: the thumb (1-4) and the four knuckles.
THUMB_INPUT = (1, 2, 3, 4, 5, 9, 13, 17)


def thumb_inputs(keypoints: np.ndarray) -> np.ndarray:
    """Return the thumb classifier's input (N, 24): :data:`THUMB_INPUT` keypoints, canonical."""
    c = canonical(keypoints)
    return c[:, list(THUMB_INPUT)].reshape(len(c), -1)


class ThumbModel:
    """
    P(thumb extended) from keypoints: standardise, ReLU hidden layer, softmax over 2.

    The JSON file holds ``mean``, ``std``, ``w1``, ``b1``, ``w2``, ``b2`` (lists) and how it
    was trained. Raises ValueError for a file that does not fit :func:`thumb_inputs`.
    """

    def __init__(self, weights: dict) -> None:
        self.info = {k: v for k, v in weights.items()
                     if k not in ('mean', 'std', 'w1', 'b1', 'w2', 'b2')}
        try:
            self.mean, self.std, self.w1, self.b1, self.w2, self.b2 = (
                np.asarray(weights[k], np.float64) for k in ('mean', 'std', 'w1', 'b1', 'w2',
                                                             'b2'))
        except KeyError as e:
            raise ValueError(f'thumb model: missing {e}') from None
        width = 3 * len(THUMB_INPUT)
        if (self.mean.shape != (width,) or self.w1.shape[0] != width
                or self.w2.shape != (self.w1.shape[1], 2)):
            raise ValueError(f'thumb model: shapes {self.w1.shape}, {self.w2.shape} do not fit '
                             f'{width} inputs')

    @staticmethod
    def load(path: str | Path) -> 'ThumbModel':
        """Read a thumb model JSON file."""
        return ThumbModel(json.loads(Path(path).read_text(encoding='utf-8')))

    def to_json(self) -> str:
        """Return the weights (and info) as JSON."""
        d = dict(self.info)
        d.update({k: getattr(self, k).tolist() for k in ('mean', 'std', 'w1', 'b1', 'w2', 'b2')})
        return json.dumps(d)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Return the (N, 2) logits of inputs `x` (N, 24), as :func:`thumb_inputs` makes them."""
        h = np.maximum(((x - self.mean) / self.std) @ self.w1 + self.b1, 0.0)
        return h @ self.w2 + self.b2

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        """Return P(thumb extended) (N,) of keypoints (N, 21, 3)."""
        z = self.logits(thumb_inputs(keypoints))
        return _sigmoid(z[:, 1] - z[:, 0])


def default_thumb_model_path() -> Path:
    """Return the shipped thumb classifier, models/pose_thumb.json."""
    return share_dir() / 'models' / 'pose_thumb.json'


def classify(keypoints: np.ndarray, params: Optional[PoseParams] = None,
             thumb: Optional[ThumbModel] = None) -> PoseResult:
    """
    Return the finger count and pose of each hand's keypoints (N, 21, 3); NaN: none.

    `thumb`: the thumb classifier, used when ``params.thumb_classifier`` (else the rule).
    """
    p = params if params is not None else PoseParams()
    kp = np.asarray(keypoints, np.float64).reshape(-1, 21, 3)
    n = len(kp)
    valid = np.isfinite(kp).all(axis=(1, 2))
    kp = np.where(valid[:, None, None], kp, 0.0)
    f = finger_features(kp)
    s = p.softness
    ext = np.empty((n, 5))
    if thumb is not None and p.thumb_classifier:
        ext[:, 0] = thumb(kp) if n else np.zeros(0)
    else:
        ext[:, 0] = (_sigmoid((f['straight'][:, 0] - p.thumb_straight) / s)
                     * _sigmoid((f['thumb_out'] - p.thumb_out) / s))
    ext[:, 1:] = (_sigmoid((f['straight'][:, 1:] - p.straight) / s)
                  * _sigmoid((f['reach'] - p.reach) / s))
    up = ext >= 0.5
    pattern_conf = np.prod(np.where(up, ext, 1.0 - ext), axis=1)
    count = up.sum(axis=1).astype(np.int32)
    pose = np.full(n, Pose.OTHER, np.int32)
    conf = pattern_conf.copy()
    for i in range(n):
        key = tuple(int(u) for u in up[i])
        if key in _PATTERNS:
            pose[i] = _PATTERNS[key]
        elif key == (1, 0, 0, 0, 0):
            dy = f['thumb_dir'][i, 1]     # image y grows downwards
            if abs(dy) >= np.cos(np.pi / 4):
                pose[i] = Pose.THUMB_UP if dy < 0 else Pose.THUMB_DOWN
                conf[i] *= _sigmoid((abs(dy) - np.cos(np.pi / 4)) / s)
        # OK: thumb and index tips touch, the thumb out (not folded over a bent index, which
        # is "three" with the little finger), the other three extended
        touch = _sigmoid((p.ok_touch - f['ok_gap'][i]) / s) * ext[i, 0]
        others = float(np.prod(ext[i, 2:]))
        if touch * others >= 0.5 and touch * others > conf[i]:
            pose[i], conf[i] = Pose.OK, touch * others
    count = np.where(valid, count, -1).astype(np.int32)
    pose = np.where(valid & (conf >= p.min_confidence), pose, Pose.UNKNOWN).astype(np.int32)
    conf = np.where(valid, conf, 0.0)
    return PoseResult(count, np.where(valid, pattern_conf, 0.0).astype(np.float32), pose,
                      conf.astype(np.float32), np.where(valid[:, None], ext, 0.0).astype(
                          np.float32))


class PoseClassifier:
    """
    The pose stage: ``classifier(keypoints)`` -> :class:`PoseResult`, at `params`.

    Loads the thumb classifier (``models/pose_thumb.json``, or `thumb_model_path`); raises
    OSError / ValueError naming a missing or bad file when ``params.thumb_classifier`` (without
    it the rule reads the thumb).
    `params` may be replaced between calls (run-time parameter changes).
    """

    def __init__(self, params: Optional[PoseParams] = None,
                 thumb_model_path: str | Path | None = None) -> None:
        self.params = params if params is not None else PoseParams()
        path = Path(thumb_model_path) if thumb_model_path else default_thumb_model_path()
        self.thumb = None
        try:
            self.thumb = ThumbModel.load(path)
        except (OSError, ValueError) as e:
            if self.params.thumb_classifier:
                raise type(e)(f'pose thumb classifier {path}: {e} (poses.thumb_classifier:='
                              'false uses the rule)') from e

    def __call__(self, keypoints: np.ndarray) -> PoseResult:
        """Return the poses of keypoints (N, 21, 3)."""
        return classify(keypoints, self.params, self.thumb)


class PoseHolds:
    """
    POSE gesture events: a hand held the same named pose for ``hold_time`` s, once per occurrence.

    Feed every frame's tracks and the poses of the hands they were matched to (a track's
    ``det_index`` into `poses`). Only CONFIRMED tracks are read (a frame where a track is lost
    changes nothing); a frame in which the hand shows another pose (UNKNOWN and OTHER
    included) restarts its clock, and after an event the same pose fires again only once the
    hand has shown another. Confidence: the
    pose's median confidence over the hold. State of vanished tracks is forgotten; an older
    stamp than the last forgets everything.
    """

    def __init__(self, params: Optional[PoseParams] = None) -> None:
        self.params = params if params is not None else PoseParams()
        self._hands: dict[int, tuple[int, float, list, bool]] = {}  # pose, since, confs, fired
        self._stamp: Optional[float] = None

    def update(self, tracks: Sequence[Track], poses: Optional[PoseResult],
               stamp: float) -> list[RecognisedGesture]:
        """Return the POSE events completed at `stamp` (s)."""
        if self._stamp is not None and stamp < self._stamp:
            self._hands = {}
        self._stamp = stamp
        events = []
        seen = {t.id: self._hands[t.id] for t in tracks if t.id in self._hands}
        for t in tracks:
            i = t.det_index
            if (t.state != TrackState.CONFIRMED or poses is None or i is None
                    or not 0 <= i < len(poses.pose)):
                continue
            pose, conf = int(poses.pose[i]), float(poses.confidence[i])
            last = self._hands.get(t.id)
            if last is None or last[0] != pose:
                last = (pose, stamp, [], False)
            confs = last[2] + [conf]
            fired = last[3]
            if (not fired and pose not in (Pose.UNKNOWN, Pose.OTHER)
                    and stamp - last[1] >= self.params.hold_time):
                fired = True
                events.append(RecognisedGesture(
                    t.id, Gesture.POSE, float(np.median(confs)), last[1], stamp, pose,
                    Pose(pose).name.lower()))
            seen[t.id] = (pose, last[1], confs[-200:], fired)
        self._hands = seen
        return events
