"""
Detector + tracker on real hands in motion with known boxes.

A camera pan is simulated by sliding a crop window over real EgoHands frames, so the shipped
model sees real hands moving continuously and every hand's true box is known in every frame.
Scored with motmetrics. Two videos: CARDS_LIVINGROOM_B_T (the shipped model's EgoHands training
video) and the held-out CARDS_OFFICE_S_B (never trained on: the detector misses and flickers
more). The thresholds are the numbers measured with the shipped model, as a regression guard;
measured 2026-11-29 with the shipped model (finetune2 stage): training video MOTA 0.758,
IDF1 0.862, 0 switches in 150 frames, recall 0.83; held-out video MOTA 0.471, IDF1 0.649,
13 switches, recall 0.69 (the model before it, recipe_v2: 5 and 8 switches, MOTA 0.735 / 0.494;
the EgoHands-only model before that: 1 and 11 switches).
"""
import cv2
from hand_tracker_ros.backends import load_detector
from hand_tracker_ros.resources import default_model_path
from hand_tracker_ros.tracking import HandTracker, TrackerParams, TrackState
from hand_tracker_training.datasets import load_egohands
import motmetrics as mm
import numpy as np
import pytest


WINDOW = (800, 600)
STEPS = 30
FPS = 30.0


def pan_sequence(sample, rgb, dx_total=480, dy_total=120):
    """
    Crops of `rgb` along a straight pan.

    With the hands' boxes in each crop (hands less than 60% inside the crop are not required to
    be found).
    """
    w, h = WINDOW
    for k in range(STEPS):
        x0 = int(round(dx_total * k / (STEPS - 1)))
        y0 = int(round(dy_total * k / (STEPS - 1)))
        crop = np.ascontiguousarray(rgb[y0:y0 + h, x0:x0 + w])
        boxes = sample.boxes - np.array([x0, y0, x0, y0], np.float32)
        clipped = np.clip(boxes, 0, [w, h, w, h])
        area = lambda b: np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)  # noqa: E731
        keep = area(clipped) >= 0.6 * area(boxes)
        yield k / FPS, crop, clipped[keep], np.flatnonzero(keep)


@pytest.fixture(scope='module')
def detector():
    return load_detector(str(default_model_path()))


@pytest.mark.parametrize('video, max_switches, min_idf1, min_mota', [
    ('CARDS_LIVINGROOM_B_T', 2, 0.80, 0.70),
    ('CARDS_OFFICE_S_B', 15, 0.60, 0.42),
])
def test_pan_over_real_hands_keeps_ids(detector, egohands_dir, video, max_switches, min_idf1,
                                       min_mota):
    samples = load_egohands(egohands_dir, videos=[video], progress=False)
    held_out = [s for s in samples if len(s.boxes) >= 2][::9][:5]
    acc = mm.MOTAccumulator(auto_id=True)
    summaries = []
    for i, sample in enumerate(held_out):
        rgb = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
        tracker = HandTracker(TrackerParams())
        for t, crop, gt, gt_ids in pan_sequence(sample, rgb):
            dets = detector.detect(crop, min_score=0.4)
            tracks = [tr for tr in tracker.update(dets, 100.0 * i + t)
                      if tr.state == TrackState.CONFIRMED]
            hyp = np.array([tr.box for tr in tracks]).reshape(-1, 4)
            to_xywh = lambda b: np.c_[b[:, :2], b[:, 2:] - b[:, :2]]  # noqa: E731
            if len(gt) and len(hyp):
                dist = mm.distances.boxiou(to_xywh(gt)[:, None], to_xywh(hyp)[None])
            else:
                dist = np.empty((len(gt), len(hyp)))
            dist = np.where(dist > 0.5, np.nan, 1 - dist) if dist.size else dist
            acc.update([1000 * i + int(g) for g in gt_ids], [1000 * i + int(tr.id)
                       for tr in tracks], dist)
        summaries.append(sample.image_path)
    mh = mm.metrics.create()
    summary = mh.compute(acc, metrics=['mota', 'idf1', 'num_switches', 'recall', 'precision',
                                       'num_frames'], name='pan')
    print(mm.io.render_summary(summary))
    row = summary.loc['pan']
    assert row['num_frames'] == STEPS * len(held_out)
    assert row['num_switches'] <= max_switches, 'hands keep their ids while the camera pans'
    assert row['idf1'] >= min_idf1
    assert row['mota'] >= min_mota
