"""HandTracker on generated sequences with known truth, scored with motmetrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import re

from hand_tracker_ros.detections import Detections
from hand_tracker_ros.geometry import pairwise_iou
from hand_tracker_ros.tracking import HandTracker, Track, TRACK_SIDES, TrackerParams, TrackState
import motmetrics as mm
import numpy as np
import pytest


MSG_DIR = Path(__file__).resolve().parents[1] / 'msg'


def box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


@dataclass
class Frame:
    """One generated image: its stamp, the visible hands (truth id -> box) and the detections."""

    stamp: float
    truth: dict[int, list[float]]
    boxes: list[list[float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def detections(self) -> Detections:
        return Detections(np.array(self.boxes, np.float32).reshape(-1, 4), self.scores,
                          np.ones(len(self.scores), np.int32))


def perfect(stamp: float, truth: dict[int, list[float]], score: float = 0.9) -> Frame:
    """Return a frame whose detections are exactly the truth."""
    return Frame(stamp, truth, list(truth.values()), [score] * len(truth))


def _xywh(boxes) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]])


@dataclass
class Result:
    summary: dict
    outputs: list[list[Track]]
    mapping: dict[int, set[int]]      # truth id -> confirmed track ids matched to it


def run(frames: list[Frame], params: TrackerParams | None = None) -> Result:
    """Track `frames`; score the CONFIRMED tracks against the truth (IoU >= 0.5), motmetrics."""
    tracker = HandTracker(params or TrackerParams())
    acc = mm.MOTAccumulator(auto_id=True)
    outputs = []
    for f in frames:
        tracks = tracker.update(f.detections(), f.stamp)
        outputs.append(tracks)
        hyps = [t for t in tracks if t.state == TrackState.CONFIRMED]
        gt_ids = list(f.truth)
        gt = _xywh([f.truth[i] for i in gt_ids])
        hb = _xywh([t.box for t in hyps])
        # motmetrics' own box IoU (its iou_matrix wrapper calls np.asfarray, gone in NumPy 2).
        dist = 1.0 - mm.distances.boxiou(gt[:, None], hb[None, :])
        acc.update(gt_ids, [t.id for t in hyps], np.where(dist > 0.5, np.nan, dist))
    summary = mm.metrics.create().compute(
        acc, metrics=['mota', 'idf1', 'num_switches', 'num_false_positives', 'num_misses',
                      'num_unique_objects'], name='seq').iloc[0].to_dict()
    mapping: dict[int, set[int]] = {}
    ev = acc.mot_events
    for oid, hid in ev[ev.Type.isin(['MATCH', 'SWITCH'])][['OId', 'HId']].itertuples(index=False):
        mapping.setdefault(int(oid), set()).add(int(hid))
    return Result(summary, outputs, mapping)


def confirmed_ids(result: Result) -> set[int]:
    return {t.id for tracks in result.outputs for t in tracks if t.state == TrackState.CONFIRMED}


# --------------------------------------------------------------------------- mapping to msg/
def _msg_constants(name: str, prefix: str) -> dict[str, int]:
    text = (MSG_DIR / name).read_text()
    return {m[1]: int(m[2]) for m in re.finditer(rf'^uint8 {prefix}(\w+)=(\d+)', text, re.M)}


def test_states_and_sides_match_tracked_hand_msg():
    assert {s.name: int(s) for s in TrackState} == _msg_constants('TrackedHand.msg', 'STATE_')
    sides = _msg_constants('TrackedHand.msg', 'SIDE_')
    assert {name.lower() if name != 'UNKNOWN' else '': v for name, v in sides.items()} == \
        {s: i for i, s in enumerate(TRACK_SIDES)}


# --------------------------------------------------------------------------- scenarios
@pytest.mark.parametrize('occlude_back_hand', [False, True])
def test_two_crossing_hands_keep_their_ids(occlude_back_hand):
    fps, n = 30.0, 60
    frames, overlap = [], 0.0
    for k in range(n):
        truth = {1: box(100 + 9 * k, 200 + 0.5 * k, 64, 72),      # left to right, down
                 2: box(640 - 9 * k, 230 - 0.5 * k, 60, 68)}      # right to left, up
        overlap = max(overlap, float(pairwise_iou(truth[1], truth[2])[0, 0]))
        if occlude_back_hand and 28 <= k < 33:                    # passes behind hand 1
            del truth[2]
        frames.append(perfect(k / fps, truth))
    assert overlap > 0.8                                          # they really cross
    r = run(frames)
    assert r.summary['num_switches'] == 0
    assert r.summary['idf1'] >= 0.95
    assert r.summary['mota'] >= 0.9
    assert all(len(ids) == 1 for ids in r.mapping.values()) and len(r.mapping) == 2
    assert r.mapping[1] != r.mapping[2]


def test_hand_lost_for_a_few_frames_keeps_its_id():
    fps = 30.0
    frames = []
    for k in range(60):
        truth = {1: box(150 + 6 * k, 240, 70, 80)}
        frames.append(perfect(k / fps, truth) if not 25 <= k < 33 else Frame(k / fps, {}))
    r = run(frames)
    assert r.summary['num_switches'] == 0
    assert r.summary['idf1'] >= 0.95
    assert len(confirmed_ids(r)) == 1
    gap = r.outputs[25:33]
    assert all(len(ts) == 1 and ts[0].state == TrackState.LOST for ts in gap)
    # While lost, the box is the prediction: it keeps moving with the hand.
    predicted_cx = float(gap[-1][0].box[[0, 2]].mean())
    assert abs(predicted_cx - (150 + 6 * 32)) < 0.3 * 70
    assert r.outputs[33][0].state == TrackState.CONFIRMED
    assert r.outputs[33][0].id == r.outputs[24][0].id


def test_a_new_hand_far_from_a_lost_one_gets_a_new_id():
    tracker = HandTracker()
    for k in range(10):
        first = tracker.update(Detections([box(200 + 5 * k, 240, 50, 50)], [0.9], [1]), k / 30)
    for k in range(10, 16):                                     # lost for 0.2 s
        assert tracker.update(Detections(), k / 30)[0].state == TrackState.LOST
    # A hand appears 4 box sizes from where the lost one is predicted: not the same hand.
    tracks = tracker.update(Detections([box(280 + 200, 240, 50, 50)], [0.9], [1]), 16 / 30)
    assert {(t.id, t.state) for t in tracks} == {(first[0].id, TrackState.LOST),
                                                 (first[0].id + 1, TrackState.TENTATIVE)}


def test_lost_track_is_deleted_after_max_age_and_ids_are_not_reused():
    params = TrackerParams(max_age=0.5)
    tracker = HandTracker(params)
    b = box(300, 200, 60, 60)
    for k in range(5):
        first = tracker.update(perfect(k / 30, {1: b}).detections(), k / 30)
    assert [t.state for t in first] == [TrackState.CONFIRMED] and first[0].id == 1
    assert tracker.update(Detections(), 4 / 30 + 0.45)[0].state == TrackState.LOST
    assert tracker.update(Detections(), 4 / 30 + 0.55) == []     # past max_age: deleted
    again = tracker.update(perfect(1.0, {1: b}).detections(), 1.0)
    assert len(again) == 1 and again[0].id == 2 and again[0].state == TrackState.TENTATIVE


def test_one_frame_false_positive_is_never_confirmed():
    frames = [perfect(k / 30, {1: box(200 + 3 * k, 300, 80, 80)}) for k in range(40)]
    spurious = box(520, 90, 50, 50)
    frames[20].boxes.append(spurious)
    frames[20].scores.append(0.95)
    r = run(frames)
    assert r.summary['num_false_positives'] == 0
    assert r.summary['num_switches'] == 0
    assert len(confirmed_ids(r)) == 1
    fp = [t for t in r.outputs[20] if t.det_index == 1]
    assert len(fp) == 1 and fp[0].state == TrackState.TENTATIVE
    assert all(t.id != fp[0].id for ts in r.outputs[21:] for t in ts)


@pytest.mark.parametrize('fps, peak', [(10.0, 30.0), (30.0, 40.0)])
def test_fast_swipe_of_a_small_box_keeps_its_id(fps, peak):
    """
    A far hand (24 px) swiping at up to `peak` hand widths/s (~5-7 m/s for an 18 cm hand).

    At 10 fps (a slow detector) it jumps up to 3 widths between frames.
    """
    size, duration = 24.0, 0.6
    t = np.arange(int(1.6 * fps)) / fps
    profile = np.where((t > 0.3) & (t < 0.3 + duration),
                       0.5 * (1 - np.cos(2 * np.pi * (t - 0.3) / duration)), 0.0)
    x = 40 + np.cumsum(profile * peak * size / fps)
    frames = [perfect(tk, {1: box(xk, 240 + 30 * np.sin(3 * tk), size, size)})
              for tk, xk in zip(t, x)]
    ious = [float(pairwise_iou(a.truth[1], b.truth[1])[0, 0])
            for a, b in zip(frames, frames[1:])]
    assert sum(v == 0.0 for v in ious) >= 3                   # no overlap frame to frame
    r = run(frames)
    assert r.summary['num_switches'] == 0
    assert len(confirmed_ids(r)) == 1
    assert r.summary['idf1'] >= 0.9
    assert r.summary['mota'] >= 0.85


def test_jittery_boxes_give_one_smoothed_track():
    rng = np.random.default_rng(7)
    fps, n = 30.0, 150
    frames, det_err, track_err = [], [], []
    for k in range(n):
        truth = {1: box(320, 240, 90, 100), 2: box(120 + 2 * k, 380, 60, 66)}
        noisy = {}
        for i, (x0, y0, x1, y1) in truth.items():
            w, h = x1 - x0, y1 - y0
            cx = (x0 + x1) / 2 + rng.normal(0, 0.05 * w)
            cy = (y0 + y1) / 2 + rng.normal(0, 0.05 * h)
            noisy[i] = box(cx, cy, w * (1 + rng.normal(0, 0.05)), h * (1 + rng.normal(0, 0.05)))
        frames.append(Frame(k / fps, truth, list(noisy.values()), [0.8, 0.8]))
    r = run(frames)
    assert r.summary['num_switches'] == 0
    assert len(confirmed_ids(r)) == 2
    assert r.summary['idf1'] >= 0.97
    for f, tracks in zip(frames[30:], r.outputs[30:]):       # after the filter settled
        still = next(t for t in tracks if t.det_index == 0)
        det_err.append(np.abs(np.array(f.boxes[0]) - f.truth[1]).mean())
        track_err.append(np.abs(still.box - np.array(f.truth[1])).mean())
    assert np.mean(track_err) < 0.9 * np.mean(det_err)        # the filter smooths the jitter


def test_irregular_stamps_give_velocity_in_pixels_per_second():
    rng = np.random.default_rng(3)
    stamps = np.cumsum(rng.uniform(0.01, 0.12, 40)) + 1000.0    # e.g. sim time, dropped frames
    stamps = np.insert(stamps, 20, stamps[19])                  # a repeated stamp is fine
    vx, vy = 250.0, -120.0
    frames = [perfect(s, {1: box(100 + vx * (s - stamps[0]), 400 + vy * (s - stamps[0]), 70, 70)})
              for s in stamps]
    r = run(frames)
    assert r.summary['num_switches'] == 0 and len(confirmed_ids(r)) == 1
    assert r.summary['idf1'] >= 0.95
    last = r.outputs[-1][0]
    assert last.velocity == pytest.approx([vx, vy], rel=0.05, abs=5.0)
    assert last.age == pytest.approx(stamps[-1] - stamps[0])
    assert last.hits == len(stamps)


def test_max_tracks_keeps_the_strongest_and_ids_are_never_reused():
    params = TrackerParams(max_tracks=3)
    tracker = HandTracker(params)
    scores = [0.55, 0.95, 0.6, 0.9, 0.85, 0.5]
    seen: list[int] = []
    for k in range(20):
        boxes = [box(60 + 100 * i, 200 + k, 24, 24) for i in range(len(scores))]
        tracks = tracker.update(Detections(boxes, scores, np.ones(len(scores))), k / 30)
        assert len(tracks) <= 3
        seen += [t.id for t in tracks if t.id not in seen]
        assert sorted(float(t.score) for t in tracks) == pytest.approx(sorted(scores)[-3:])
    assert seen == [1, 2, 3]                                 # weaker detections never got an id
    # A stronger new hand does not evict an established (confirmed) one...
    boxes = [box(60 + 100 * i, 220, 24, 24) for i in range(len(scores))] + [box(330, 60, 24, 24)]
    tracks = tracker.update(Detections(boxes, scores + [0.99], np.ones(7)), 20 / 30)
    assert sorted(t.id for t in tracks) == [1, 2, 3]
    # ... but takes the place of a lost one once that one is deleted (max_age).
    lost_id = next(t.id for t in tracks if t.score == pytest.approx(0.95))
    without = [i for i in range(7) if i != 1]               # hand 1 (score 0.95) disappears
    for k in range(21, 70):
        stamp = k / 30
        tracks = tracker.update(Detections([boxes[i] for i in without],
                                           [(scores + [0.99])[i] for i in without],
                                           np.ones(6)), stamp)
        ids = {t.id for t in tracks}
        if stamp - 20 / 30 <= params.max_age:
            assert lost_id in ids and 4 not in ids
        else:
            assert lost_id not in ids and 4 in ids
        assert len(tracks) == 3
    assert [t.state for t in tracks if t.id == 4] == [TrackState.CONFIRMED]
    # max_tracks changed at run time applies from the next update.
    tracker.params = TrackerParams(max_tracks=1)
    assert len(tracker.update(Detections(boxes, scores + [0.99], np.ones(7)), 3.0)) == 1


def random_sequence(seed: int, n: int = 240, fps: float = 30.0) -> list[Frame]:
    """
    Three hands on smooth random paths (640x480), 4 % box jitter, 10 % missed detections.

    A false detection anywhere in 10 % of the frames.
    """
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    phase = rng.uniform(0, 2 * np.pi, (3, 2))
    frames = []
    for k in range(n):
        t = k / fps
        truth, boxes, scores = {}, [], []
        for i in range(3):
            cx = width / 2 + 220 * np.sin(0.9 * (i + 1) * t + phase[i, 0])
            cy = height / 2 + 150 * np.sin(0.7 * (i + 1) * t + phase[i, 1])
            w = 50 + 25 * i
            truth[i + 1] = b = box(cx, cy, w, 1.1 * w)
            if rng.random() > 0.1:
                j = rng.normal(0, 0.04 * w, 4)
                boxes.append([b[0] + j[0], b[1] + j[1], b[2] + j[2], b[3] + j[3]])
                scores.append(float(rng.uniform(0.5, 1.0)))
        if rng.random() < 0.1:
            boxes.append(box(rng.uniform(0, width), rng.uniform(0, height), 60, 60))
            scores.append(float(rng.uniform(0.5, 1.0)))
        frames.append(Frame(t, truth, boxes, scores))
    return frames


def test_random_multi_hand_sequences_with_misses_and_false_positives():
    results = [run(random_sequence(seed)).summary for seed in range(4)]
    assert sum(r['num_switches'] for r in results) <= 1
    assert np.mean([r['idf1'] for r in results]) >= 0.9
    # Misses bound MOTA: a hand whose detection is missed has no CONFIRMED track that frame.
    assert np.mean([r['mota'] for r in results]) >= 0.85
    assert sum(r['num_false_positives'] for r in results) <= 10


# --------------------------------------------------------------------------- API details
def test_detections_below_min_score_are_ignored_and_det_index_points_into_the_input():
    tracker = HandTracker(TrackerParams(min_score=0.5, min_hits=1))
    dets = Detections([box(100, 100, 40, 40), box(300, 300, 50, 50)], [0.3, 0.8], [1, 1])
    tracks = tracker.update(dets, 0.0)
    assert len(tracks) == 1 and tracks[0].det_index == 1
    assert tracks[0].state == TrackState.CONFIRMED          # min_hits=1
    assert tracks[0].box == pytest.approx(dets.boxes[1])
    assert tracks[0].id == 1 and tracks[0].age == 0.0


def test_side_is_the_majority_label_and_sides_are_validated():
    tracker = HandTracker()
    labels = ['own_left', 'own_left', '', 'own_right', 'own_left']
    for k, side in enumerate(labels):
        tracks = tracker.update(Detections([box(200, 200, 60, 60)], [0.9], [1]), k / 30, [side])
    assert tracks[0].side == 'own_left'
    with pytest.raises(ValueError, match='unknown side'):
        tracker.update(Detections([box(200, 200, 60, 60)], [0.9], [1]), 1.0, ['left'])
    with pytest.raises(ValueError, match='sides'):
        tracker.update(Detections([box(200, 200, 60, 60)], [0.9], [1]), 1.0, [])


def test_history_holds_recent_filtered_centres():
    tracker = HandTracker(TrackerParams(history_length=5))
    for k in range(12):
        tracks = tracker.update(Detections([box(100 + 10 * k, 200, 60, 60)], [0.9], [1]), k / 30)
    hist = tracks[0].history
    assert hist.shape == (5, 2)
    assert np.all(np.diff(hist[:, 0]) > 5) and hist[-1] == pytest.approx([210, 200], abs=2)


def test_stamp_going_backwards_resets_and_reset_keeps_counting_ids():
    tracker = HandTracker()
    dets = Detections([box(200, 200, 60, 60)], [0.9], [1])
    for k in range(4):
        tracker.update(dets, 10 + k / 30)
    after = tracker.update(dets, 5.0)                       # a looping bag
    assert len(after) == 1 and after[0].id == 2 and after[0].state == TrackState.TENTATIVE
    assert after[0].hits == 1 and after[0].age == 0.0
    tracker.reset()
    assert tracker.update(dets, 0.0)[0].id == 3
    with pytest.raises(ValueError, match='finite'):
        tracker.update(dets, float('nan'))


def test_returned_tracks_are_snapshots():
    tracker = HandTracker()
    first = tracker.update(Detections([box(200, 200, 60, 60)], [0.9], [1]), 0.0)
    before = first[0].box.copy()
    tracker.update(Detections([box(260, 200, 60, 60)], [0.9], [1]), 0.1)
    assert first[0].box == pytest.approx(before) and first[0].hits == 1


def test_params_are_validated():
    with pytest.raises(ValueError, match='min_hits'):
        TrackerParams(min_hits=0)
    with pytest.raises(ValueError, match='max_age'):
        TrackerParams(max_age=-1.0)
    with pytest.raises(TypeError):
        TrackerParams(gate='large')
    with pytest.raises(TypeError):
        TrackerParams(max_tracks=2.5)
    p = TrackerParams(gate=20, max_tracks=4.0)              # ints for floats, integral floats
    assert isinstance(p.gate, float) and p.gate == 20.0 and isinstance(p.max_tracks, int)
