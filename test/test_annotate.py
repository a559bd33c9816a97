"""draw_annotations on a real EgoHands frame with its labelled hands."""
from __future__ import annotations

from pathlib import Path

import cv2
from hand_tracker_ros.annotate import draw_annotations, RecentGestures, track_colour
from hand_tracker_ros.detections import Detections
from hand_tracker_ros.gestures import Gesture, RecognisedGesture
from hand_tracker_ros.tracking import HandTracker, TrackState
from hand_tracker_ros.vocabulary import SIDES  # polygons.mat field order
import numpy as np
import pytest
import scipy.io


VIDEO = 'CARDS_LIVINGROOM_B_T'


def load_frame(egohands_dir: Path, index: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """RGB image, (N, 4) xyxy boxes and side labels of the `index`-th labelled frame."""
    folder = egohands_dir / '_LABELLED_SAMPLES' / VIDEO
    path = sorted(folder.glob('frame_*.jpg'))[index]
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    entry = scipy.io.loadmat(folder / 'polygons.mat')['polygons'][0][index]
    boxes, sides = [], []
    for field, side in zip(entry.dtype.names, SIDES):
        poly = np.asarray(entry[field], np.float64).reshape(-1, 2)
        if len(poly):
            x0, y0 = np.clip(poly.min(axis=0), 0, [w, h])
            x1, y1 = np.clip(poly.max(axis=0), 0, [w, h])
            boxes.append([x0, y0, x1, y1])
            sides.append(side)
    return rgb, np.array(boxes, np.float32), sides


@pytest.fixture(scope='module')
def scene(egohands_dir):
    """Return a real frame, its hands as detections, and confirmed tracks with short trails."""
    rgb, boxes, sides = load_frame(egohands_dir)
    assert len(boxes) >= 2
    tracker = HandTracker()
    for k in range(4):                                    # the hands drift by 3 px per frame
        dets = Detections(boxes + np.float32([3 * (k - 3), 0, 3 * (k - 3), 0]),
                          np.linspace(0.95, 0.8, len(boxes)), np.ones(len(boxes)))
        tracks = tracker.update(dets, k / 30, sides)
    assert all(t.state == TrackState.CONFIRMED for t in tracks)
    return rgb, dets, tracks


def near_boxes_mask(shape, boxes, margin: int, text_width: int) -> np.ndarray:
    """Return a mask: True within `margin` px of each box and `text_width` px right of it."""
    mask = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        mask[max(y0 - margin, 0):y1 + margin, max(x0 - margin, 0):x1 + margin + text_width] = True
    return mask


def test_draws_only_near_the_hands_and_leaves_the_input_alone(scene):
    rgb, dets, tracks = scene
    before = rgb.copy()
    events = [RecognisedGesture(tracks[0].id, Gesture.SWIPE_LEFT, 0.8, 0.0, 0.1)]
    out = draw_annotations(rgb, detections=dets, tracks=tracks, gestures=events,
                           labels={1: 'hand'})
    assert np.array_equal(rgb, before)                    # input untouched
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, rgb)
    changed = np.any(out != rgb, axis=2)
    assert changed.sum() > 1000
    allowed = near_boxes_mask(rgb.shape, [t.box for t in tracks], margin=60, text_width=300)
    assert not changed[~allowed].any()
    for t in tracks:                                      # every hand got its box drawn
        x0, y0, x1, y1 = np.round(t.box).astype(int)
        assert changed[y0 + 5:y1 - 5, x0].mean() > 0.9 and changed[y0 + 5:y1 - 5, x1].mean() > 0.9
        assert tuple(out[(y0 + y1) // 2, x1]) == track_colour(t.id)   # in the track's colour
        # The inside of the box is the camera image (the trail is only a few pixels).
        inner = np.zeros(changed.shape, bool)
        inner[y0 + 10:y1 - 10, x0 + 10:x1 - 10] = True
        assert changed[inner].mean() < 0.05


def test_status_text_and_gesture_without_a_track_go_top_left(scene):
    rgb, _, _ = scene
    out = draw_annotations(rgb, gestures=[RecognisedGesture(99, Gesture.WAVE, 0.9, 0.0, 1.0)],
                           status='12.5 fps, 2 hands')
    changed = np.any(out != rgb, axis=2)
    ys, xs = np.nonzero(changed)
    assert len(ys) > 500
    assert ys.max() < 0.15 * rgb.shape[0] and xs.max() < 0.5 * rgb.shape[1]
    assert np.array_equal(draw_annotations(rgb), rgb)      # nothing to draw: an identical copy


def test_detections_alone_are_labelled_with_class_names(scene):
    rgb, dets, _ = scene
    plain = draw_annotations(rgb, detections=dets)
    named = draw_annotations(rgb, detections=dets, labels={1: 'a_much_longer_class_name'})
    changed = np.any(plain != rgb, axis=2)
    allowed = near_boxes_mask(rgb.shape, dets.boxes, margin=40, text_width=400)
    assert changed.any() and not changed[~allowed].any()
    assert np.any(named != rgb, axis=2).sum() > changed.sum()   # longer label, more pixels


def test_colours_are_stable_and_distinct_per_id():
    assert track_colour(7) == track_colour(7)
    colours = np.array([track_colour(i) for i in range(1, 11)], float)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=2)
    assert distances[~np.eye(10, dtype=bool)].min() > 40


def test_read_only_input_and_bad_input(scene):
    rgb, dets, tracks = scene
    frozen = rgb.copy()
    frozen.setflags(write=False)
    out = draw_annotations(frozen, detections=dets, tracks=tracks)
    assert out.flags.writeable and np.any(out != frozen)
    with pytest.raises(ValueError):
        draw_annotations(rgb.astype(np.float32))
    with pytest.raises(ValueError):
        draw_annotations(rgb[..., 0])


def test_recent_gestures_keep_the_last_one_per_hand_for_a_while():
    recent = RecentGestures(keep_s=1.0)
    swipe = RecognisedGesture(1, Gesture.SWIPE_LEFT, 0.8, 0.5, 1.0)
    assert recent.update([swipe], 1.0) == [swipe]
    assert recent.update([], 1.9) == [swipe]
    hold = RecognisedGesture(2, Gesture.HOLD, 0.7, 0.9, 1.95)
    push = RecognisedGesture(1, Gesture.PUSH, 0.9, 1.8, 1.95)
    assert recent.update([hold, push], 1.95) == [push, hold]   # newer one replaces, by hand id
    assert recent.update([], 3.0) == []
    assert recent.update([swipe], 1.0) == [swipe]
    assert recent.update([], 0.5) == []                          # time went back: cleared


def test_lost_tracks_are_faint_thin_and_unlabelled(egohands_dir):
    """
    Draw a lost hand as a thin faint outline without label or trail.

    A hand that vanishes from the detections (its track LOST, the box only predicted) gets the
    outline; the hand still seen keeps its full box and label.
    """
    rgb, boxes, sides = load_frame(egohands_dir)
    tracker = HandTracker()
    for k in range(4):
        dets = Detections(boxes, np.linspace(0.95, 0.8, len(boxes)), np.ones(len(boxes)))
        tracker.update(dets, k / 30, sides)
    seen = Detections(boxes[1:], np.full(len(boxes) - 1, 0.9), np.ones(len(boxes) - 1))
    tracks = tracker.update(seen, 4 / 30, sides[1:])
    lost = [t for t in tracks if t.state == TrackState.LOST]
    kept = [t for t in tracks if t.state == TrackState.CONFIRMED]
    assert len(lost) == 1 and kept
    alone = draw_annotations(rgb, tracks=lost)
    changed = np.any(alone != rgb, axis=2)
    x0, y0, x1, y1 = np.round(lost[0].box).astype(int)
    around = near_boxes_mask(rgb.shape, [lost[0].box], margin=3, text_width=0)
    inside = near_boxes_mask(rgb.shape, [[x0 + 3, y0 + 3, x1 - 3, y1 - 3]], 0, 0)
    ring = around & ~inside
    perimeter = 2 * ((x1 - x0) + (y1 - y0))
    assert changed[ring].sum() > 0.8 * perimeter, 'outline drawn'
    assert not changed[~ring].any(), 'no trail, no label: nothing but the outline'
    assert changed.sum() < 1.5 * perimeter, f'thin: {changed.sum() / perimeter:.1f} px'
    colour = np.array(track_colour(lost[0].id), float)
    full = np.abs(colour - rgb[changed].astype(float)).sum(axis=1)
    drawn = np.abs(alone[changed].astype(float) - rgb[changed].astype(float)).sum(axis=1)
    assert np.median(drawn / np.maximum(full, 1)) < 0.6, 'faint'
    out = draw_annotations(rgb, tracks=tracks)
    without = draw_annotations(rgb, tracks=kept)
    differs = np.any(out != without, axis=2)
    assert differs.any() and not differs[~ring].any(), 'the lost track adds its outline only'
    for t in kept:                                    # seen hands: full, labelled boxes
        kx0, ky0, kx1, ky1 = np.round(t.box).astype(int)
        edge = np.all(out[ky0 + 5:ky1 - 5, kx0] == track_colour(t.id), axis=1)
        assert edge.mean() > 0.8, 'full colour'
