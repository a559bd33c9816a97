"""
Multi-hand tracker: one constant-velocity Kalman filter per hand, optimal association.

Each hand is a Kalman filter on the box centre and size, state ``[cx, cy, w, h, vcx, vcy, vw,
vh]`` in pixels and pixels/s, measurement ``[cx, cy, w, h]``. Time steps come from the image
stamps passed to :meth:`HandTracker.update`, never from the wall clock, so bag replay, sim time
and irregular frame rates behave like the live camera. The process noise is the continuous
white-noise-acceleration model (consistent for any split of a time interval; smaller for the
sides than for the centre) and, like the measurement noise, scales with the box size: a small
far hand and a big near hand are treated alike in hand-size units.

Association, every frame, is one optimal assignment
(:func:`scipy.optimize.linear_sum_assignment`) of detections to all live tracks. A pair is
allowed when its gating cost

    g = d² + iou_weight · (1 − IoU(predicted box, detection))   <=   gate,

the box sizes (geometric mean of the sides) differ by at most ``max_size_ratio`` and the centres
are at most ``max_distance`` predicted box sizes apart. d² is the squared Mahalanobis distance of
the detection ``[cx, cy, w, h]`` from the track's prediction under the Kalman innovation
covariance S (χ² with 4 degrees of freedom). S grows with velocity uncertainty and time since the
last match, so a small box that moves more than its own size between frames (IoU 0) still
matches its predicted position, and two crossing hands are told apart by their velocities;
``max_distance`` caps that growth, so a lost hand does not pass its id to a new hand appearing
far from where it was predicted. Among allowed pairs the assignment maximises the number of
matches, then minimises the sum of

    g + ln det S − ln det R

(the Gaussian negative log-likelihood relative to a perfectly known track, R the measurement
noise): an uncertain track (lost, or new with unknown velocity) pays for its wide gate, so it
does not take the detection of a well-established track that fits it about as well.

Track life cycle (states numbered as ``TrackedHand.STATE_*``):

* a detection matched to no track starts a TENTATIVE track; it becomes CONFIRMED once matched in
  ``min_hits`` frames in a row, and is deleted the first frame it is not matched;
* a confirmed track not matched in a frame is LOST (its box is the Kalman prediction); it keeps
  its id if a detection is matched to it again and is deleted ``max_age`` seconds after its last
  match;
* at most ``max_tracks`` tracks exist; beyond that the weakest go (rank: matched confirmed, then
  lost, then tentative; lower detector score first within a rank). A new detection that would be
  the weakest does not start a track.

Ids start at 1 and are never reused, not even after :meth:`HandTracker.reset`.

Time: a stamp equal to the previous one is a zero-length step; a stamp older than the previous
one (a looping bag, a restarted simulation) clears all tracks, as :meth:`HandTracker.reset`, and
the tracker starts afresh from that stamp (ids keep counting).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
import enum
import math
from typing import Any, Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .detections import Detections
from .geometry import cxcywh_to_xyxy, pairwise_iou, xyxy_to_cxcywh
from .vocabulary import SIDES, UNKNOWN_SIDE


#: The side labels a detection may carry: unknown, then :data:`~.vocabulary.SIDES`; the same
#: order as ``TrackedHand.SIDE_*``.
TRACK_SIDES = (UNKNOWN_SIDE,) + SIDES


class TrackState(enum.IntEnum):
    """Track states, numbered as the ``TrackedHand.STATE_*`` constants."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2


def param_field(default: Any, lo: float, hi: float, description: str) -> Any:
    """
    Return a dataclass field for a flat scalar parameter with its allowed range and description.

    The node declares one ROS parameter per field from ``default`` and this metadata.
    """
    return field(default=default, metadata={'range': (lo, hi), 'description': description})


def validate_params(params: Any) -> None:
    """
    Coerce and check every :func:`param_field` of a parameter dataclass, in place.

    Integers are accepted for float fields; bool fields (switches) take only bools, str
    fields any text. Raises TypeError for a value of the wrong type and
    ValueError for one outside its range.
    """
    name = type(params).__name__
    for f in fields(params):
        value = getattr(params, f.name)
        kind = type(f.default)
        if kind is str:  # a path or a name: any text
            if not isinstance(value, str):
                raise TypeError(f'{name}.{f.name} must be str, got {value!r}')
            continue
        if kind is bool:  # a switch: exactly True or False
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f'{name}.{f.name} must be bool, got {value!r}')
            setattr(params, f.name, bool(value))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f'{name}.{f.name} must be {kind.__name__}, got {value!r}')
        if kind is int:
            if int(value) != value:
                raise TypeError(f'{name}.{f.name} must be an integer, got {value!r}')
            value = int(value)
        else:
            value = float(value)
        lo, hi = f.metadata['range']
        if not (lo <= value <= hi):  # also rejects NaN
            raise ValueError(f'{name}.{f.name} = {value} is outside [{lo}, {hi}]')
        setattr(params, f.name, value)


@dataclass
class TrackerParams:
    """
    Tracker settings (ROS parameters ``tracker.<name>``).

    Sizes are in box sizes (geometric mean of the box sides), so the same settings fit small
    far hands and big near ones.
    """

    min_hits: int = param_field(
        3, 1, 100, 'frames in a row a new track must be matched in before it is confirmed')
    max_age: float = param_field(
        1.0, 0.0, 60.0, 'seconds a confirmed track may go unmatched (lost) before it is deleted')
    min_score: float = param_field(
        0.3, 0.0, 1.0, 'detections scoring lower are ignored by the tracker')
    max_tracks: int = param_field(
        10, 1, 100, 'maximum number of tracks; the weakest are dropped beyond it')
    gate: float = param_field(
        16.0, 0.1, 1000.0, 'maximum association cost: squared Mahalanobis distance (chi2, 4 dof; '
        '13.3 = 99%) plus iou_weight * (1 - IoU)')
    iou_weight: float = param_field(
        2.0, 0.0, 100.0, 'weight of (1 - IoU) in the association cost')
    max_distance: float = param_field(
        3.0, 0.1, 100.0, 'largest distance between the predicted centre of a track and a '
        'detection matched to it, in box sizes')
    max_size_ratio: float = param_field(
        2.0, 1.0, 100.0, 'largest size ratio (geometric mean of the sides) of a track and a '
        'detection matched to it')
    process_noise: float = param_field(
        20.0, 0.01, 10000.0, 'Kalman acceleration noise density of the box centre, box sizes / '
        's^1.5: higher follows sudden moves better, lower smooths more')
    size_process_noise: float = param_field(
        5.0, 0.01, 10000.0, 'Kalman noise density of the box width and height, box sizes / '
        's^1.5 (sizes change more slowly than positions)')
    measurement_noise: float = param_field(
        0.1, 0.001, 10.0, 'standard deviation of detected box centre and sides, in box sizes')
    init_velocity_std: float = param_field(
        20.0, 0.0, 1000.0, 'velocity uncertainty of a new track, box sizes / s: how fast a hand '
        'may already move when it appears')
    history_length: int = param_field(
        30, 1, 10000, 'number of recent filtered centres kept per track (trails)')

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass
class Track:
    """
    One tracked hand as published (a snapshot: later updates do not change it).

    id:        > 0, stable while the hand is tracked, never reused.
    box:       float32 (4,) filtered [x_min, y_min, x_max, y_max] in pixels; for a LOST track the
               Kalman prediction.
    score:     detector confidence of the last matched detection.
    velocity:  float32 (2,) centre velocity (vx, vy) in pixels/s.
    age:       seconds since the track was born (image stamps).
    hits:      frames in which a detection was matched to the track.
    state:     TENTATIVE, CONFIRMED (matched in this frame) or LOST.
    side:      one of TRACK_SIDES: the most frequent side label of its matched detections, ''
               if none.
    history:   float32 (K, 2) filtered centres of the last K <= history_length frames, oldest
               first.
    det_index: index in this frame's Detections of the detection matched to the track, or None.
    """

    id: int  # noqa: A003
    box: np.ndarray
    score: float
    velocity: np.ndarray
    age: float
    hits: int
    state: TrackState
    side: str
    history: np.ndarray
    det_index: Optional[int]


_H = np.hstack([np.eye(4), np.zeros((4, 4))])   # measurement matrix: [cx, cy, w, h] of the state
_MIN_SIDE = 1.0                                  # px: sides never shrink below this


def _size(w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(w, _MIN_SIDE) * np.maximum(h, _MIN_SIDE))


class _TrackFilter:
    """Internal state of one track: Kalman filter plus bookkeeping."""

    def __init__(self, track_id: int, z: np.ndarray, score: float, side: str, det_index: int,
                 stamp: float, params: TrackerParams) -> None:
        self.id = track_id
        self.x = np.concatenate([z, np.zeros(4)])
        s = float(_size(z[2], z[3]))
        self.P = np.diag([(params.measurement_noise * s) ** 2] * 4
                         + [(params.init_velocity_std * s) ** 2] * 4)
        self.birth = stamp
        self.last_match = stamp
        self.hits = 1
        self.score = score
        self.sides: Counter = Counter()
        if side:
            self.sides[side] += 1
        self.det_index: Optional[int] = det_index
        self.confirmed = params.min_hits <= 1
        self.history: list[tuple[float, float]] = [(float(z[0]), float(z[1]))]

    # --------------------------------------------------------------- Kalman filter
    @property
    def size(self) -> float:
        return float(_size(self.x[2], self.x[3]))

    def predict(self, dt: float, params: TrackerParams) -> None:
        """Advance the state by `dt` seconds (constant velocity, white-noise acceleration)."""
        if dt <= 0.0:
            return
        F = np.kron(np.array([[1.0, dt], [0.0, 1.0]]), np.eye(4))
        q = self.size ** 2 * np.array([params.process_noise, params.process_noise,
                                       params.size_process_noise, params.size_process_noise]) ** 2
        Q = np.kron(np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]]), np.diag(q))
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], _MIN_SIDE)
        self.P = F @ self.P @ F.T + Q

    def innovation_cov(self, params: TrackerParams) -> np.ndarray:
        """S = H P H^T + R for the measurement [cx, cy, w, h]."""
        r = (params.measurement_noise * self.size) ** 2
        return self.P[:4, :4] + r * np.eye(4)

    def correct(self, z: np.ndarray, params: TrackerParams) -> None:
        """Kalman update with the measurement z = [cx, cy, w, h]."""
        S = self.innovation_cov(params)
        K = np.linalg.solve(S, self.P[:4, :]).T            # P H^T S^-1 (S and P symmetric)
        self.x = self.x + K @ (z - self.x[:4])
        self.x[2:4] = np.maximum(self.x[2:4], _MIN_SIDE)
        IKH = np.eye(8) - K @ _H
        R = (params.measurement_noise * self.size) ** 2 * np.eye(4)
        self.P = IKH @ self.P @ IKH.T + K @ R @ K.T    # Joseph form: stays positive definite

    # --------------------------------------------------------------- association
    def costs(self, Z: np.ndarray, boxes: np.ndarray, params: TrackerParams) -> np.ndarray:
        """
        Return the assignment cost to each measurement of Z (N, 4 cxcywh, xyxy `boxes`).

        Inf where the pair is not allowed (module docstring).
        """
        S = self.innovation_cov(params)
        y = Z - self.x[:4]
        d2 = np.einsum('ij,ij->i', y, np.linalg.solve(S, y.T).T)
        pred = cxcywh_to_xyxy(self.x[:4])[0]
        gating = d2 + params.iou_weight * (1.0 - pairwise_iou(pred, boxes)[0])
        ratio = _size(Z[:, 2], Z[:, 3]) / self.size
        distance = np.hypot(y[:, 0], y[:, 1]) / self.size
        ok = ((gating <= params.gate) & (np.maximum(ratio, 1.0 / ratio) <= params.max_size_ratio)
              & (distance <= params.max_distance))
        r = (params.measurement_noise * self.size) ** 2
        uncertainty = np.linalg.slogdet(S)[1] - 4.0 * math.log(r)
        return np.where(ok, gating + uncertainty, np.inf)

    def state(self) -> TrackState:
        if self.det_index is None:
            return TrackState.LOST
        return TrackState.CONFIRMED if self.confirmed else TrackState.TENTATIVE

    def rank(self) -> tuple[int, float]:
        """Sort key, strongest last: matched confirmed > lost > tentative, then score."""
        return {TrackState.CONFIRMED: 2, TrackState.LOST: 1, TrackState.TENTATIVE: 0}[
            self.state()], self.score

    def snapshot(self, stamp: float) -> Track:
        side = self.sides.most_common(1)[0][0] if self.sides else UNKNOWN_SIDE
        return Track(id=self.id, box=cxcywh_to_xyxy(self.x[:4])[0].astype(np.float32),
                     score=self.score, velocity=self.x[4:6].astype(np.float32),
                     age=stamp - self.birth, hits=self.hits, state=self.state(), side=side,
                     history=np.asarray(self.history, dtype=np.float32).reshape(-1, 2),
                     det_index=self.det_index)


class HandTracker:
    """
    Tracks hands across frames; see the module docstring for the model and the rules.

    `params` may be replaced between updates (run-time parameter changes); the new values apply
    from the next update.
    """

    def __init__(self, params: Optional[TrackerParams] = None) -> None:
        self.params = params if params is not None else TrackerParams()
        self._hands: list[_TrackFilter] = []
        self._stamp: Optional[float] = None
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks and the last stamp. Ids keep counting (never reused)."""
        self._hands = []
        self._stamp = None

    def update(self, detections: Detections, stamp: float,
               sides: Optional[Sequence[str]] = None) -> list[Track]:
        """
        Advance to image time `stamp` (seconds) with that image's detections.

        sides: optional side label per detection (one of TRACK_SIDES, '' unknown).
        Returns every live track (tentative, confirmed and lost), sorted by id.
        Raises ValueError for a non-finite stamp or a `sides` list of the wrong length or with
        unknown labels. A stamp older than the previous one resets the tracker (module docstring).
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f'HandTracker.update: stamp must be finite, got {stamp}')
        if sides is None:
            sides = [UNKNOWN_SIDE] * len(detections)
        sides = list(sides)
        if len(sides) != len(detections):
            raise ValueError(f'HandTracker.update: {len(sides)} sides for {len(detections)} '
                             'detections')
        unknown = set(sides) - set(TRACK_SIDES)
        if unknown:
            raise ValueError(f'HandTracker.update: unknown side labels {sorted(unknown)}; '
                             f'expected one of {TRACK_SIDES}')
        if self._stamp is not None and stamp < self._stamp:
            self.reset()
        p = self.params
        dt = 0.0 if self._stamp is None else stamp - self._stamp
        self._stamp = stamp

        # Age out, then predict every track to this stamp.
        self._hands = [h for h in self._hands if stamp - h.last_match <= p.max_age]
        for h in self._hands:
            h.predict(dt, p)
            h.det_index = None

        keep = np.flatnonzero(detections.scores >= p.min_score)
        boxes = detections.boxes[keep].astype(np.float64)
        Z = xyxy_to_cxcywh(boxes)
        free = list(range(len(keep)))      # positions in `keep` of the unmatched detections
        if self._hands and free:
            cost = np.stack([h.costs(Z, boxes, p) for h in self._hands])
            allowed = np.isfinite(cost)
            # Forbidden pairs cost more than any sum of allowed ones, so the assignment
            # maximises the number of allowed matches first, then minimises their cost.
            big = 1.0 + len(keep) * (np.abs(cost[allowed]).max() if allowed.any() else 0.0)
            rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    self._match(self._hands[r], int(c), keep, Z, detections, sides, stamp)
                    free.remove(int(c))

        # Unmatched tentative tracks die; unmatched confirmed ones are lost.
        self._hands = [h for h in self._hands if h.det_index is not None or h.confirmed]
        for h in self._hands:
            if h.det_index is None:
                h.history.append((float(h.x[0]), float(h.x[1])))
            del h.history[:-p.history_length]
        self._add_new_tracks(free, keep, Z, detections, sides, stamp)
        return [h.snapshot(stamp) for h in sorted(self._hands, key=lambda h: h.id)]

    def _match(self, hand: _TrackFilter, k: int, keep: np.ndarray, Z: np.ndarray,
               detections: Detections, sides: list[str], stamp: float) -> None:
        i = int(keep[k])
        hand.correct(Z[k], self.params)
        hand.hits += 1
        hand.score = float(detections.scores[i])
        hand.last_match = stamp
        hand.det_index = i
        if sides[i]:
            hand.sides[sides[i]] += 1
        hand.confirmed = hand.confirmed or hand.hits >= self.params.min_hits
        hand.history.append((float(hand.x[0]), float(hand.x[1])))

    def _add_new_tracks(self, free: list[int], keep: np.ndarray, Z: np.ndarray,
                        detections: Detections, sides: list[str], stamp: float) -> None:
        """Start tentative tracks on unmatched detections, then hold the max_tracks bound."""
        # Candidates are ranked like tentative tracks; only those that survive get an id.
        entries = [(h.rank(), 0, h) for h in self._hands]
        entries += [((0, float(detections.scores[keep[k]])), 1, k) for k in free]
        entries.sort(key=lambda e: (e[0], -e[1]), reverse=True)   # existing first on ties
        survivors = entries[:self.params.max_tracks]
        self._hands = [obj for _, is_new, obj in survivors if not is_new]
        for _, is_new, k in survivors:
            if is_new:
                i = int(keep[k])
                self._hands.append(_TrackFilter(self._next_id, Z[k], float(detections.scores[i]),
                                                sides[i], i, stamp, self.params))
                self._next_id += 1
