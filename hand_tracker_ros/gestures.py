"""
Gestures from hand tracks: swipes, hold, push/pull and wave, one event per occurrence.

:class:`GestureRecognizer` keeps, per confirmed track, the recent trajectory of its filtered box
(centre and size = geometric mean of the sides) with the image stamps, and recognises:

* swipe left/right/up/down: within ``swipe_time`` s the centre moved at least
  ``swipe_distance`` image diagonals, in a direction within ``acos(swipe_straightness)`` of an
  image axis;
* push/pull: within ``push_time`` s the box size grew/shrank by a factor ``push_ratio``;
* wave: within ``wave_time`` s the horizontal motion reversed ``wave_reversals`` times, every
  stroke between reversals at least ``wave_amplitude`` hand sizes long;
* hold: for ``hold_time`` s the centre and the size stayed within ``still_radius`` hand sizes
  of their means.

All distances are relative (image diagonal, hand size) so the same motion gives the same events
at any resolution and, for hold and wave, at any distance from the camera. Samples are taken
only from frames where the track is CONFIRMED (matched); lost frames add nothing.

Once per occurrence: after a motion gesture (swipe, push, pull, wave) fires, the hand's motion
gestures are disarmed until the hand has been still (as for hold, within ``still_radius``) for
``rearm_time`` s, and its trajectory restarts there, so neither the rest of the same stroke nor
the return stroke fires again. After a hold fires, hold re-arms only once the hand moved more
than twice ``still_radius`` from where it was held (hysteresis). At most one event per hand and
frame; the checks run in the order wave, swipe, push/pull, hold.

Known limit: a wave whose single strokes are longer than ``swipe_distance`` fires a swipe on its
first stroke (and no wave): keep ``swipe_distance`` above the stroke length of a wave.

The state of a track that is no longer in the list given to :meth:`GestureRecognizer.update`
(deleted by the tracker) is forgotten. A stamp older than the previous one (a looping bag, a
restarted simulation) forgets all state, as :meth:`GestureRecognizer.reset`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import enum
import math
from typing import Optional, Sequence

import numpy as np

from .tracking import param_field, Track, TrackState, validate_params


class Gesture(enum.IntEnum):
    """Gesture types, numbered as the ``GestureEvent.msg`` constants."""

    SWIPE_LEFT = 1
    SWIPE_RIGHT = 2
    SWIPE_UP = 3
    SWIPE_DOWN = 4
    HOLD = 5
    PUSH = 6
    PULL = 7
    WAVE = 8
    POSE = 9


@dataclass
class RecognisedGesture:
    """
    One recognised gesture (maps onto ``GestureEvent.msg``).

    hand_id:    id of the track that made it.
    gesture:    the :class:`Gesture`.
    confidence: [0, 1]: 0.5 when the gesture's measure is just at its threshold, 1 at twice it.
    start:      image stamp (s) where the motion began.
    end:        image stamp (s) of the frame in which it was recognised.
    pose:       POSE only: the held pose (:class:`~hand_tracker_ros.poses.Pose` value).
    pose_name:  POSE only: its name in lower case, e.g. 'thumb_up'.
    name:       the gesture's name in lower case, e.g. 'swipe_left', 'pose_thumb_up'
                (derived).
    """

    hand_id: int
    gesture: Gesture
    confidence: float
    start: float
    end: float
    pose: int = 0
    pose_name: str = ''
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.gesture = Gesture(self.gesture)
        self.name = self.gesture.name.lower()
        if self.gesture == Gesture.POSE:
            self.name = f'pose_{self.pose_name}'


@dataclass
class GestureParams:
    """Gesture settings (ROS parameters ``gestures.<name>``)."""

    swipe_distance: float = param_field(
        0.2, 0.01, 2.0, 'swipe: minimum displacement of the hand centre, in image diagonals')
    swipe_time: float = param_field(
        0.6, 0.05, 10.0, 'swipe: the displacement must happen within this many seconds')
    swipe_straightness: float = param_field(
        0.85, 0.0, 1.0, 'swipe: minimum cosine of the angle between the displacement and the '
        'image axis it is closest to')
    push_ratio: float = param_field(
        1.4, 1.01, 10.0, 'push/pull: minimum growth/shrink factor of the box size')
    push_time: float = param_field(
        0.6, 0.05, 10.0, 'push/pull: the size change must happen within this many seconds')
    wave_amplitude: float = param_field(
        0.5, 0.01, 10.0, 'wave: minimum horizontal stroke between reversals, in hand sizes')
    wave_reversals: int = param_field(
        3, 1, 20, 'wave: number of horizontal direction reversals')
    wave_time: float = param_field(
        2.0, 0.1, 20.0, 'wave: the reversals must happen within this many seconds')
    hold_time: float = param_field(
        1.0, 0.05, 60.0, 'hold: seconds the hand must stay still')
    still_radius: float = param_field(
        0.15, 0.001, 10.0, 'hold and re-arming: a still hand stays within this many hand sizes '
        'of its mean position')
    rearm_time: float = param_field(
        0.2, 0.0, 10.0, 'seconds a hand must be still after a swipe/push/pull/wave before the '
        'next one can fire')

    def __post_init__(self) -> None:
        validate_params(self)


def _confidence(measure: float, threshold: float) -> float:
    """0.5 at the threshold, growing linearly to 1 at twice it."""
    return 0.5 + 0.5 * float(np.clip(measure / threshold - 1.0, 0.0, 1.0))


@dataclass
class _Samples:
    """A trajectory slice as arrays: stamps t, centres xy (K, 2) and sizes s (K,), in pixels."""

    t: np.ndarray
    xy: np.ndarray
    s: np.ndarray


class _GestureHistory:
    """Trajectory and arming state of one hand."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float, float, float]] = deque()   # (t, cx, cy, size)
        self.motion_armed = True
        self.hold_armed = True
        self.hold_anchor: Optional[np.ndarray] = None

    def window(self, t0: float, one_before: bool = False) -> _Samples:
        """
        Return the samples with stamp >= t0.

        With `one_before`, also the last one before t0 (so that the slice covers [t0, now]
        when t0 falls between two frames).
        """
        a = np.asarray(self.samples, dtype=np.float64).reshape(-1, 4)
        first = int(np.searchsorted(a[:, 0], t0, side='left'))
        if one_before and first > 0 and a[first - 1, 0] < t0:
            first -= 1
        a = a[first:]
        return _Samples(a[:, 0], a[:, 1:3], a[:, 3])

    def still_for(self, duration: float, radius: float, stamp: float) -> Optional[float]:
        """
        Largest deviation (hand sizes) of the centre from its mean.

        Or of the size from its mean, over the last `duration` s if it is at most `radius`;
        None when the hand moved more or the trajectory does not cover that long.
        """
        if not self.samples or self.samples[0][0] > stamp - duration:
            return None
        w = self.window(stamp - duration, one_before=True)
        size = float(np.median(w.s))
        dev = max(float(np.linalg.norm(w.xy - w.xy.mean(axis=0), axis=1).max()),
                  float(np.abs(w.s - w.s.mean()).max())) / size
        return dev if dev <= radius else None


def _onset(measure: np.ndarray, qualifies: np.ndarray) -> int:
    """
    Index of the sample where a motion began.

    The latest qualifying one whose `measure` (displacement to now) is within 10 % of the
    largest, so a still period before the motion is not counted as part of it.
    """
    best = measure[qualifies].max()
    return int(np.flatnonzero(qualifies & (measure >= 0.9 * best))[-1])


class GestureRecognizer:
    """
    Turns successive track lists into gesture events; see the module docstring.

    `params` may be replaced between updates (run-time parameter changes).
    """

    def __init__(self, params: Optional[GestureParams] = None) -> None:
        self.params = params if params is not None else GestureParams()
        self._hands: dict[int, _GestureHistory] = {}
        self._stamp: Optional[float] = None

    def reset(self) -> None:
        """Forget every hand's trajectory and the last stamp."""
        self._hands = {}
        self._stamp = None

    def update(self, tracks: Sequence[Track], stamp: float,
               image_size: tuple[int, int]) -> list[RecognisedGesture]:
        """
        Feed the tracks of the image at `stamp` (s) of size `image_size` = (width, height).

        Returns the gestures completed in this frame (usually none). Raises ValueError for a
        non-finite stamp or a non-positive image size.
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f'GestureRecognizer.update: stamp must be finite, got {stamp}')
        width, height = image_size
        if width <= 0 or height <= 0:
            raise ValueError(f'GestureRecognizer.update: bad image size {image_size}')
        if self._stamp is not None and stamp < self._stamp:
            self.reset()
        self._stamp = stamp
        diagonal = math.hypot(width, height)

        live = {t.id for t in tracks}
        self._hands = {i: h for i, h in self._hands.items() if i in live}
        events = []
        for track in tracks:
            if track.state != TrackState.CONFIRMED:
                continue
            hand = self._hands.setdefault(track.id, _GestureHistory())
            x0, y0, x1, y1 = (float(v) for v in track.box)
            size = math.sqrt(max(x1 - x0, 1.0) * max(y1 - y0, 1.0))
            hand.samples.append((stamp, (x0 + x1) / 2, (y0 + y1) / 2, size))
            self._trim(hand, stamp)
            event = self._recognise(track.id, hand, stamp, diagonal)
            if event is not None:
                events.append(event)
        return events

    def _trim(self, hand: _GestureHistory, stamp: float) -> None:
        """Drop samples no check can look at any more (keep one at or before the horizon)."""
        p = self.params
        horizon = stamp - max(p.swipe_time, p.push_time, p.wave_time, p.hold_time, p.rearm_time)
        while len(hand.samples) > 1 and hand.samples[1][0] <= horizon:
            hand.samples.popleft()

    def _recognise(self, hand_id: int, hand: _GestureHistory, stamp: float,
                   diagonal: float) -> Optional[RecognisedGesture]:
        p = self.params
        if not hand.motion_armed:
            # Re-arm once still; the trajectory restarts at the still period.
            if hand.still_for(p.rearm_time, p.still_radius, stamp) is not None:
                hand.motion_armed = True
                while len(hand.samples) > 1 and hand.samples[1][0] <= stamp - p.rearm_time:
                    hand.samples.popleft()
        if hand.motion_armed:
            found = (self._wave(hand, stamp) or self._swipe(hand, stamp, diagonal)
                     or self._push_pull(hand, stamp))
            if found is not None:
                gesture, confidence, start = found
                hand.motion_armed = False
                return RecognisedGesture(hand_id, gesture, confidence, start, stamp)
        return self._hold(hand_id, hand, stamp)

    def _swipe(self, hand: _GestureHistory, stamp: float,
               diagonal: float) -> Optional[tuple[Gesture, float, float]]:
        p = self.params
        w = hand.window(stamp - p.swipe_time)
        d = w.xy[-1] - w.xy[:-1]                    # displacement to now from each sample
        if not len(d):
            return None
        axis = np.argmax(np.abs(d), axis=1)
        major = np.abs(d[np.arange(len(d)), axis])
        norm = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        ok = (major / diagonal >= p.swipe_distance) & (major / norm >= p.swipe_straightness)
        if not ok.any():
            return None
        i = _onset(major, ok)
        positive = d[i, axis[i]] > 0
        gesture = ((Gesture.SWIPE_RIGHT if positive else Gesture.SWIPE_LEFT) if axis[i] == 0 else
                   (Gesture.SWIPE_DOWN if positive else Gesture.SWIPE_UP))
        return gesture, _confidence(major[i] / diagonal, p.swipe_distance), float(w.t[i])

    def _push_pull(self, hand: _GestureHistory,
                   stamp: float) -> Optional[tuple[Gesture, float, float]]:
        p = self.params
        w = hand.window(stamp - p.push_time)
        t, s = w.t, w.s
        if len(s) < 2:
            return None
        log_ratio = np.log(s[-1] / s[:-1])
        threshold = math.log(p.push_ratio)
        ok = np.abs(log_ratio) >= threshold
        if not ok.any():
            return None
        sign = np.sign(log_ratio[np.argmax(np.abs(log_ratio))])
        i = _onset(sign * log_ratio, ok & (sign * log_ratio > 0))
        gesture = Gesture.PUSH if sign > 0 else Gesture.PULL
        return gesture, _confidence(abs(log_ratio[i]), threshold), float(t[i])

    def _wave(self, hand: _GestureHistory, stamp: float) -> Optional[tuple[Gesture, float, float]]:
        p = self.params
        w = hand.window(stamp - p.wave_time)
        t, x = w.t, w.xy[:, 0]
        if len(x) < 3:
            return None
        amplitude = p.wave_amplitude * float(np.median(w.s))
        # Zig-zag: a reversal counts when x retreats from the running extreme by `amplitude`.
        direction, start = 0, t[0]
        lo = hi = x[0]
        t_lo = t_hi = t[0]
        extreme = x[0]
        strokes: list[float] = []
        stroke_from = x[0]
        for ti, xi in zip(t, x):
            if direction == 0:     # onset: the latest time the hand was near its extreme
                lo, hi = min(lo, xi), max(hi, xi)
                if xi <= lo + 0.1 * amplitude:
                    t_lo = ti
                if xi >= hi - 0.1 * amplitude:
                    t_hi = ti
                if xi - lo >= amplitude:
                    direction, start, stroke_from, extreme = 1, t_lo, lo, xi
                elif hi - xi >= amplitude:
                    direction, start, stroke_from, extreme = -1, t_hi, hi, xi
            elif direction * (xi - extreme) > 0:
                extreme = xi
            elif direction * (extreme - xi) >= amplitude:
                strokes.append(abs(extreme - stroke_from))
                direction, stroke_from, extreme = -direction, extreme, xi
        if len(strokes) < p.wave_reversals:
            return None
        return Gesture.WAVE, _confidence(min(strokes), amplitude), float(start)

    def _hold(self, hand_id: int, hand: _GestureHistory,
              stamp: float) -> Optional[RecognisedGesture]:
        p = self.params
        size = hand.samples[-1][3]
        here = np.array(hand.samples[-1][1:3])
        if not hand.hold_armed:
            if np.linalg.norm(here - hand.hold_anchor) > 2 * p.still_radius * size:
                hand.hold_armed = True
            return None
        deviation = hand.still_for(p.hold_time, p.still_radius, stamp)
        if deviation is None:
            return None
        w = hand.window(stamp - p.hold_time, one_before=True)
        hand.hold_armed = False
        hand.hold_anchor = w.xy.mean(axis=0)
        # 0.5 when the deviation is just still_radius, 1 when at most half of it.
        confidence = _confidence(p.still_radius / max(deviation, 1e-9), 1.0)
        return RecognisedGesture(hand_id, Gesture.HOLD, confidence, float(w.t[0]), stamp)
