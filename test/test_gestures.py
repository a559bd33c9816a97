"""GestureRecognizer on generated hand trajectories with known gestures."""
from __future__ import annotations

from pathlib import Path
import re

from hand_tracker_ros.detections import Detections
from hand_tracker_ros.gestures import Gesture, GestureParams, GestureRecognizer, RecognisedGesture
from hand_tracker_ros.tracking import HandTracker, Track, TrackState
import numpy as np
import pytest


MSG_DIR = Path(__file__).resolve().parents[1] / 'msg'
IMAGE = (640, 480)            # diagonal 800 px
FPS = 30.0


def make_track(cx: float, cy: float, size: float, hand_id: int = 1,
               state: TrackState = TrackState.CONFIRMED) -> Track:
    h = size / 2
    return Track(id=hand_id, box=np.array([cx - h, cy - h, cx + h, cy + h], np.float32),
                 score=0.9, velocity=np.zeros(2, np.float32), age=1.0, hits=10, state=state,
                 side='', history=np.zeros((0, 2), np.float32), det_index=0)


def trajectory(keys: list[tuple[float, float, float, float]], fps: float = FPS,
               jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """
    (K, 4) samples [t, cx, cy, size] through key frames (t, cx, cy, size).

    Smoothstep between them; `jitter` adds Gaussian noise of that many hand sizes to centre and
    size.
    """
    keys = np.asarray(keys, np.float64)
    t = np.arange(keys[0, 0], keys[-1, 0] + 1e-9, 1.0 / fps)
    seg = np.clip(np.searchsorted(keys[:, 0], t, side='right') - 1, 0, len(keys) - 2)
    u = (t - keys[seg, 0]) / (keys[seg + 1, 0] - keys[seg, 0])
    u = (3 * u ** 2 - 2 * u ** 3)[:, None]
    xs = keys[seg, 1:] + u * (keys[seg + 1, 1:] - keys[seg, 1:])
    if jitter:
        rng = np.random.default_rng(seed)
        xs = xs + rng.normal(0, jitter, xs.shape) * xs[:, 2:3]
    return np.column_stack([t, xs])


def feed(samples: np.ndarray, recognizer: GestureRecognizer | None = None,
         image_size: tuple[int, int] = IMAGE, scale: float = 1.0,
         state: TrackState = TrackState.CONFIRMED) -> list[RecognisedGesture]:
    """Run one hand's samples through a recognizer (positions and sizes times `scale`)."""
    recognizer = recognizer or GestureRecognizer()
    events = []
    for t, cx, cy, size in samples:
        track = make_track(cx * scale, cy * scale, size * scale, state=state)
        events += recognizer.update([track], t, image_size)
    return events


def kinds(events: list[RecognisedGesture]) -> list[Gesture]:
    return [e.gesture for e in events]


def test_gesture_constants_match_msg():
    text = (MSG_DIR / 'GestureEvent.msg').read_text()
    constants = {m[1]: int(m[2]) for m in re.finditer(r'^uint8 ([A-Z_]+)=(\d+)', text, re.M)}
    assert {g.name: int(g) for g in Gesture} == constants
    ev = RecognisedGesture(3, 2, 0.7, 1.0, 1.5)
    assert ev.gesture is Gesture.SWIPE_RIGHT and ev.name == 'swipe_right'


# 280 px = 0.35 image diagonals in 0.3 s, after 0.4 s still; then still for 0.5 s (< hold_time).
SWIPES = {Gesture.SWIPE_RIGHT: (180, 240, 460, 240), Gesture.SWIPE_LEFT: (460, 240, 180, 240),
          Gesture.SWIPE_DOWN: (320, 100, 320, 380), Gesture.SWIPE_UP: (320, 380, 320, 100)}


def swipe(gesture: Gesture, jitter: float = 0.0) -> np.ndarray:
    x0, y0, x1, y1 = SWIPES[gesture]
    return trajectory([(0, x0, y0, 80), (0.4, x0, y0, 80), (0.7, x1, y1, 80), (1.2, x1, y1, 80)],
                      jitter=jitter)


@pytest.mark.parametrize('gesture', list(SWIPES))
def test_each_swipe_fires_once_with_its_direction(gesture):
    events = feed(swipe(gesture, jitter=0.02))
    assert kinds(events) == [gesture]
    ev = events[0]
    assert ev.hand_id == 1 and 0.5 <= ev.confidence <= 1.0
    assert 0.35 <= ev.start < ev.end <= 0.7                 # within the stroke, while moving


def test_swipe_needs_distance_speed_and_straightness():
    too_short = trajectory([(0, 300, 240, 80), (0.4, 300, 240, 80), (0.7, 440, 240, 80),
                            (1.2, 440, 240, 80)])          # 0.175 diagonals
    too_slow = trajectory([(0, 180, 240, 80), (0.4, 180, 240, 80), (2.4, 460, 240, 80),
                           (2.7, 460, 240, 80)])           # same distance in 2 s
    diagonal = trajectory([(0, 180, 100, 80), (0.4, 180, 100, 80), (0.7, 400, 320, 80),
                           (1.2, 400, 320, 80)])           # 45 degrees
    for samples in (too_short, too_slow, diagonal):
        assert feed(samples) == []


@pytest.mark.parametrize('gesture, sizes', [(Gesture.PUSH, (60, 110)), (Gesture.PULL, (110, 60))])
def test_push_and_pull_fire_once(gesture, sizes):
    a, b = sizes
    samples = trajectory([(0, 320, 240, a), (0.4, 320, 240, a), (0.75, 320, 250, b),
                          (1.2, 320, 250, b)], jitter=0.02)
    events = feed(samples)
    assert kinds(events) == [gesture]
    assert 0.3 <= events[0].start < events[0].end <= 0.75          # onset 0.4 s, +-jitter


def test_wave_fires_once_and_no_swipe():
    # +-0.6 hand sizes at 2 Hz for 2 s: 8 strokes of 96 px = 0.12 diagonals (below a swipe).
    t = np.arange(0, 3.0, 1 / FPS)
    x = 320 + np.where((t > 0.5) & (t < 2.5), 48 * np.sin(2 * np.pi * 2 * (t - 0.5)), 0.0)
    samples = np.column_stack([t, x, np.full_like(t, 240), np.full_like(t, 80)])
    events = feed(samples)
    assert kinds(events) == [Gesture.WAVE]
    assert 0.45 <= events[0].start <= 0.7 and events[0].end < 2.0
    # Fewer reversals than wave_reversals: nothing.
    short = samples[t < 0.5 + 0.6]
    assert feed(short) == []


def test_still_hand_holds_once_after_hold_time_and_again_after_moving():
    params = GestureParams()
    samples = trajectory([(0, 300, 240, 80), (3.0, 300, 240, 80), (3.3, 420, 240, 80),
                          (6.0, 420, 240, 80)], jitter=0.02)
    rec = GestureRecognizer(params)
    events = []
    for t, cx, cy, size in samples:
        new = rec.update([make_track(cx, cy, size)], t, IMAGE)
        assert not new or t >= params.hold_time - 1e-9       # nothing before hold_time
        events += [(t, e) for e in new]
    assert [e.gesture for _, e in events] == [Gesture.HOLD, Gesture.HOLD]
    (t1, first), (t2, second) = events
    assert first.start == pytest.approx(0.0)
    assert t1 == pytest.approx(params.hold_time, abs=1.5 / FPS)
    assert second.start >= 3.0 and t2 == pytest.approx(3.3 + params.hold_time, abs=0.1)
    assert first.end == t1 and first.confidence >= 0.5


def test_jitter_fires_no_motion_gesture():
    # 10 s of a hand that stays put but whose box jitters by 5 % (centre and size) every frame.
    samples = trajectory([(0, 320, 240, 80), (10, 320, 240, 80)], jitter=0.05, seed=4)
    events = feed(samples)
    assert set(kinds(events)) <= {Gesture.HOLD} and len(events) <= 1
    # A steady slow drift (0.5 hand sizes/s) with jitter is neither still nor a gesture.
    t = np.arange(0, 10, 1 / FPS)
    rng = np.random.default_rng(5)
    drift = np.column_stack([t, 100 + 40 * t, np.full_like(t, 240), np.full_like(t, 80)])
    drift[:, 1:] += rng.normal(0, 0.03 * 80, (len(t), 3))
    assert feed(drift) == []


def test_same_motion_at_another_resolution_gives_the_same_events():
    samples = np.vstack([swipe(Gesture.SWIPE_RIGHT)[:-1],
                         trajectory([(1.2, 460, 240, 80), (1.5, 460, 240, 130),
                                     (2.0, 460, 240, 130)])])
    base = feed(samples)
    assert kinds(base) == [Gesture.SWIPE_RIGHT, Gesture.PUSH]
    for scale in (0.5, 2.25):
        size = (round(IMAGE[0] * scale), round(IMAGE[1] * scale))
        scaled = feed(samples, image_size=size, scale=scale)
        assert [(e.gesture, e.hand_id, e.start, e.end) for e in scaled] == \
            [(e.gesture, e.hand_id, e.start, e.end) for e in base]
        assert [e.confidence for e in scaled] == pytest.approx([e.confidence for e in base])


def test_only_confirmed_tracks_make_gestures():
    samples = swipe(Gesture.SWIPE_LEFT)
    assert feed(samples, state=TrackState.TENTATIVE) == []
    assert feed(samples, state=TrackState.LOST) == []


def test_state_of_a_deleted_track_is_forgotten():
    # Two halves of a swipe (0.175 diagonals each): one swipe when continuous, none when the
    # track disappears (deleted) in between.
    first = trajectory([(0, 180, 240, 80), (0.3, 180, 240, 80), (0.45, 320, 240, 80)])
    second = trajectory([(0.45 + 1 / FPS, 320, 240, 80), (0.6, 460, 240, 80),
                         (0.9, 460, 240, 80)])
    rec = GestureRecognizer()
    assert kinds(feed(first, rec) + feed(second, rec)) == [Gesture.SWIPE_RIGHT]
    rec = GestureRecognizer()
    events = feed(first, rec)
    events += rec.update([], 0.45 + 0.5 / FPS, IMAGE)
    events += feed(second, rec)
    assert events == []


def test_stamp_going_backwards_forgets_state():
    first = trajectory([(10.0, 180, 240, 80), (10.3, 180, 240, 80), (10.45, 320, 240, 80)])
    second = trajectory([(0.0, 320, 240, 80), (0.15, 460, 240, 80), (0.5, 460, 240, 80)])
    rec = GestureRecognizer()
    assert feed(first, rec) + feed(second, rec) == []
    # Stamps go back again: reset, and a whole swipe is recognised from scratch.
    assert kinds(feed(swipe(Gesture.SWIPE_UP), rec)) == [Gesture.SWIPE_UP]
    with pytest.raises(ValueError):
        rec.update([], float('inf'), IMAGE)
    with pytest.raises(ValueError):
        rec.update([], 1.0, (0, 480))


def test_tracker_to_gestures_on_jittery_detections():
    """End to end: noisy detections -> HandTracker -> GestureRecognizer."""
    rng = np.random.default_rng(9)
    samples = np.vstack([swipe(Gesture.SWIPE_RIGHT)[:-1],
                         trajectory([(1.2, 460, 240, 80), (4.0, 460, 240, 80)])])
    tracker, rec = HandTracker(), GestureRecognizer()
    events = []
    for t, cx, cy, size in samples:
        j = rng.normal(0, 0.04 * size, 4)
        h = size / 2
        box = [cx - h + j[0], cy - h + j[1], cx + h + j[2], cy + h + j[3]]
        dets = Detections([box], [0.9], [1])
        events += rec.update(tracker.update(dets, t), t, IMAGE)
    assert kinds(events) == [Gesture.SWIPE_RIGHT, Gesture.HOLD]
    assert len({e.hand_id for e in events}) == 1


def test_params_are_validated():
    with pytest.raises(ValueError, match='push_ratio'):
        GestureParams(push_ratio=1.0)
    with pytest.raises(ValueError, match='swipe_straightness'):
        GestureParams(swipe_straightness=1.5)
    with pytest.raises(TypeError):
        GestureParams(wave_reversals=2.5)
    rec = GestureRecognizer()
    rec.params = GestureParams(swipe_distance=0.5)            # applies from the next update
    assert feed(swipe(Gesture.SWIPE_RIGHT), rec) == []
