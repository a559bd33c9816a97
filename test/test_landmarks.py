"""
The hand-landmark chain's stages on real images: palm decoding, regions, landmarks, merge, chain.

The MediaPipe models come from tools/fetch_mediapipe_models.sh (run by tools/setup_venv.sh);
the images and their labels from ../shared/data (EgoHands' own/other left/right polygons for
the handedness convention; validation parts only).
"""
from pathlib import Path

import cv2
from hand_tracker_ros import regions as R
from hand_tracker_ros.backends import load_detector, ModelLoadError
from hand_tracker_ros.chain import (CHAIN_GROUPS, ChainResult, HandChain, LandmarkParams,
                                    mediapipe_model, MergeParams, PalmParams, SsdParams)
from hand_tracker_ros.geometry import pairwise_iou
from hand_tracker_ros.hands import (HANDEDNESS_LEFT, HANDEDNESS_RIGHT, HANDEDNESS_UNKNOWN, Hands,
                                    ORIGIN_PALM, ORIGIN_SSD, ORIGIN_TRACK)
from hand_tracker_ros.landmarks import LandmarkModel
from hand_tracker_ros.merge import (cluster_means, keypoint_boxes, merge, nms, nms_clusters,
                                    proposal_scores, rescore)
from hand_tracker_ros.palm import palm_anchors, PalmDetector
from hand_tracker_ros.resources import default_model_path
import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PALM = Path(mediapipe_model('', 'palm_detection', False))
LANDMARK = Path(mediapipe_model('', 'hand_landmark', False))
SSD = load_detector(default_model_path())


def _need_models():
    if not (PALM.is_file() and LANDMARK.is_file()):
        pytest.fail(f'MediaPipe models missing ({PALM.parent}): run '
                    'tools/fetch_mediapipe_models.sh (tools/setup_venv.sh runs it)')


@pytest.fixture(scope='module')
def palm():
    _need_models()
    return PalmDetector(PALM)


@pytest.fixture(scope='module')
def landmarks():
    _need_models()
    return LandmarkModel(LANDMARK)


@pytest.fixture(scope='module')
def webcam_val(shared_data):
    from hand_tracker_training.datasets.parts import load_part
    return [s for s in load_part('hands_webcam_subhih', 'val') if len(s.boxes) == 1][:12]


@pytest.fixture(scope='module')
def egohands_val(shared_data):
    from hand_tracker_training.datasets.parts import load_part
    return load_part('egohands', 'val')


def _rgb(sample) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------- regions
def test_upright_crop_puts_the_fingers_up_for_every_direction():
    for angle_deg in (0, 37, 90, 160, -120):
        a = np.deg2rad(angle_deg)
        direction = np.array([np.sin(a), -np.cos(a)])  # "up" rotated by a
        base = np.array([300.0, 200.0])
        tip = base + 50 * direction
        got = R.upright_angle(base[None], tip[None])[0]
        assert np.isclose(np.cos(got - a), 1.0, atol=1e-9), (angle_deg, np.rad2deg(got))
        region = R.transform([300], [200], [60], [60], [got], 2.0, 0.0)[0]
        m = R.crop_affine(region, 224)
        # the crop's centre is the region's centre, the fingers point up in the crop
        assert np.allclose(R.to_image(np.array([[112.0, 112.0]]), m)[0], base, atol=1e-3)
        crop_tip = m[:, :2] @ tip + m[:, 2]
        assert crop_tip[1] < 112 - 40 and abs(crop_tip[0] - 112) < 1e-3


def test_keypoint_region_follows_the_hand_rotation_and_extent():
    # a synthetic upright hand (wrist below, fingers above) rotated by 90 degrees ccw on screen
    rng = np.random.default_rng(0)
    kp = np.zeros((21, 2))
    kp[:, 0] = rng.uniform(-30, 30, 21)
    kp[:, 1] = rng.uniform(-60, 0, 21)
    kp[0] = (0, 40)
    kp[5], kp[9], kp[13] = (-20, -10), (0, -12), (20, -10)
    upright = R.from_keypoints(kp[None] + (100, 100), 2.0, 0.0)[0]
    assert abs(upright[3]) < 1e-6
    rot = np.array([[0.0, 1.0], [-1.0, 0.0]])  # fingers (0, -1) -> (-1, 0): pointing left
    turned = R.from_keypoints((kp @ rot.T)[None] + (100, 100), 2.0, 0.0)[0]
    assert np.isclose(abs(turned[3]), np.pi / 2, atol=1e-6)
    assert np.isclose(turned[2], upright[2], rtol=1e-6)
    shifted = R.from_keypoints((kp @ rot.T)[None] + (100, 100), 2.0, 0.5)[0]
    assert shifted[0] < turned[0] and np.isclose(shifted[1], turned[1], atol=1e-6)


def test_regions_at_the_border_tiny_and_huge_do_not_crash(landmarks):
    rgb = np.full((480, 640, 3), 128, np.uint8)
    regions = np.array([[0, 0, 100, 0.3], [639, 479, 50, 0], [320, 240, 1e-4, 0],
                        [320, 240, 1e5, 1.0], [-500, -500, 30, 0]], np.float32)
    res = landmarks.run(rgb, regions)
    assert res.keypoints.shape == (5, 21, 3) and np.isfinite(res.keypoints).all()
    assert ((res.presence >= 0) & (res.presence <= 1)).all()
    # boxes from the same: clipped, never outside the image
    hands = Hands(keypoint_boxes(res.keypoints, 0.1), np.ones(5), res.keypoints, res.presence,
                  res.right, np.zeros(5), regions)
    out = merge(hands, np.zeros(5, bool), 0.1, 0.5, 10, 640, 480)
    assert (out.boxes >= 0).all() and (out.boxes[:, [0, 2]] <= 640).all()
    assert (out.boxes[:, [1, 3]] <= 480).all()


# ---------------------------------------------------------------------------- palm
def test_palm_anchors_are_mediapipes_2016():
    a = palm_anchors()
    assert a.shape == (2016, 2)
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24]) and np.allclose(a[0], a[1])
    assert np.allclose(a[1152], [0.5 / 12, 0.5 / 12]) and np.allclose(a[1152], a[1157])


def test_palm_detector_finds_the_raised_hands_and_survives_letterboxing(palm, webcam_val):
    found = 0
    for s in webcam_val:
        rgb = _rgb(s)
        p = palm.detect(rgb, 0.5, 6)
        assert p.keypoints.shape == (len(p), 7, 2)
        if len(p) and pairwise_iou(p.boxes[:1], s.boxes).max() > 0.1:
            # the palm lies inside the labelled hand
            gt = s.boxes[pairwise_iou(p.boxes[:1], s.boxes).argmax()]
            cx, cy = (p.boxes[0, :2] + p.boxes[0, 2:]) / 2
            assert gt[0] <= cx <= gt[2] and gt[1] <= cy <= gt[3]
            found += 1
            # the same image inside a taller black canvas: the same palm, shifted
            canvas = np.zeros((rgb.shape[0] + 200, rgb.shape[1], 3), np.uint8)
            canvas[150:150 + rgb.shape[0]] = rgb
            q = palm.detect(canvas, 0.5, 6)
            assert len(q) and np.abs(q.boxes[0] - (p.boxes[0] + [0, 150, 0, 150])).max() < 0.1 * (
                p.boxes[0, 2] - p.boxes[0, 0]) + 4
    assert found >= 0.75 * len(webcam_val), (found, len(webcam_val))


def test_palm_detector_finds_nothing_in_a_plain_image(palm):
    assert len(palm.detect(np.full((480, 640, 3), 90, np.uint8), 0.5, 6)) == 0


# ---------------------------------------------------------------------------- landmarks
def test_presence_is_a_probability_high_on_hands_low_elsewhere(landmarks, webcam_val):
    hand, other = [], []
    for s in webcam_val:
        rgb = _rgb(s)
        hand.append(landmarks.run(rgb, R.from_boxes(s.boxes, 1.6)).presence[0])
        # a region of the same size away from the hand (the other half of the image)
        b = s.boxes[0]
        side = max(b[2] - b[0], b[3] - b[1])
        cx = 0.25 * s.width if (b[0] + b[2]) / 2 > s.width / 2 else 0.75 * s.width
        other.append(landmarks.run(rgb, np.array([[cx, s.height * 0.8, 1.6 * side, 0]]))
                     .presence[0])
    hand, other = np.array(hand), np.array(other)
    assert ((hand >= 0) & (hand <= 1)).all() and ((other >= 0) & (other <= 1)).all()
    assert np.mean(hand > 0.5) >= 0.8, hand
    assert np.mean(other < 0.5) >= 0.8, other


def test_keypoints_map_back_onto_the_labelled_hand(landmarks, webcam_val):
    inside = []
    for s in webcam_val:
        res = landmarks.run(_rgb(s), R.from_boxes(s.boxes, 1.6))
        if res.presence[0] < 0.5:
            continue
        b = s.boxes[0]
        pad = 0.1 * max(b[2] - b[0], b[3] - b[1])
        k = res.keypoints[0]
        inside.append(np.mean((k[:, 0] >= b[0] - pad) & (k[:, 0] <= b[2] + pad)
                              & (k[:, 1] >= b[1] - pad) & (k[:, 1] <= b[3] + pad)))
    assert len(inside) >= 8 and np.mean(inside) > 0.9, inside


def test_handedness_convention_against_egohands_labels(landmarks, egohands_val):
    """
    Identity_2 > 0.5 is the person's own right hand on these non-mirrored frames.

    Upright second-pass crops of EgoHands' labelled hands (validation video); the other
    player's hands, which the model sees as a third person would, are the clear test.
    """
    right_on = {'other_left': [], 'other_right': [], 'own_left': [], 'own_right': []}
    for s in egohands_val[::5]:
        rgb = _rgb(s)
        first = landmarks.run(rgb, R.from_boxes(s.boxes, 1.6))
        second = landmarks.run(rgb, R.from_keypoints(first.keypoints, 2.0, 0.1))
        for side, p, r in zip(s.sides, second.presence, second.right):
            if p > 0.5 and max(r, 1 - r) >= 0.8:
                right_on[side].append(r > 0.5)
    other = [not v for v in right_on['other_left']] + right_on['other_right']
    assert len(other) >= 10 and np.mean(other) >= 0.85, right_on
    own = [not v for v in right_on['own_left']] + right_on['own_right']
    assert len(own) == 0 or np.mean(own) >= 0.5, right_on


def test_handedness_is_unknown_below_the_confidence():
    h = Hands(np.zeros((4, 4)), np.ones(4), right=[0.95, 0.05, 0.6, np.nan])
    label, conf = h.handedness(0.8)
    assert list(label) == [HANDEDNESS_RIGHT, HANDEDNESS_LEFT, HANDEDNESS_UNKNOWN,
                           HANDEDNESS_UNKNOWN]
    assert np.allclose(conf[:3], [0.95, 0.95, 0.6])


# ---------------------------------------------------------------------------- merge
def test_merge_rescores_chooses_boxes_per_source_and_suppresses_duplicates():
    kp = np.zeros((3, 21, 3), np.float32)
    kp[:, :, 0] = np.linspace(100, 200, 21)
    kp[:, :, 1] = np.linspace(100, 150, 21)
    kp[2] = np.nan  # not measured
    hands = Hands([[90, 90, 210, 160], [95, 95, 205, 155], [0, 0, 10, 10]], [0.9, 0.8, 0.7], kp,
                  presence=[0.5, 1.0, 0.9], origin=[ORIGIN_SSD, ORIGIN_PALM, ORIGIN_SSD])
    out = merge(hands, hands.origin == ORIGIN_SSD, 0.1, 0.5, 10, 640, 480)
    # palm 0.8 x 1.0 beats SSD 0.9 x 0.5 on the same hand; the keypoint box of the third
    # (an SSD proposal keeping its own box) survives elsewhere
    assert np.allclose(out.scores, [0.8, 0.63])
    assert np.allclose(out.boxes[0], [90, 95, 210, 155])
    assert np.allclose(out.boxes[1], [0, 0, 10, 10])
    # fusion: the palm hand's box becomes the mean of its cluster's boxes (its keypoint box,
    # score 0.8, and the SSD box it suppressed, score 0.45) weighted by score^k; 0 keeps its own
    for k in (1.0, 2.0):
        fused = merge(hands, hands.origin == ORIGIN_SSD, 0.1, 0.5, 10, 640, 480, box_fusion=k)
        w = np.array([0.8, 0.45]) ** k
        assert np.allclose(fused.boxes[0], (w[0] * np.array([90, 95, 210, 155])
                                            + w[1] * np.array([90, 90, 210, 160])) / w.sum())
        assert np.allclose(fused.boxes[1], out.boxes[1])  # a hand alone stays itself
    assert np.allclose(cluster_means(np.array([[0, 0, 10, 10], [10, 10, 20, 20]], np.float32),
                                     np.zeros(2), [np.array([1, 0])], 1.5), [[10, 10, 20, 20]])
    kept, clusters = nms_clusters(np.array([[0, 0, 10, 10]] * 3 + [[50, 50, 60, 60]]),
                                  np.array([0.1, 0.3, 0.2, 0.05]), 0.5, 5)
    assert list(kept) == [1, 3] and [list(c) for c in clusters] == [[1, 2, 0], [3]]
    assert list(nms(np.array([[0, 0, 10, 10]] * 3), np.array([0.1, 0.3, 0.2]), 0.5, 5)) == [1]
    # one hand measured twice: boxes of different extents (IoU 0.25), the same keypoints
    boxes = np.array([[100, 100, 200, 150], [100, 100, 300, 200]], np.float32)
    assert len(nms(boxes, np.array([0.9, 0.8]), 0.5, 5)) == 2
    assert list(nms(boxes, np.array([0.9, 0.8]), 0.5, 5, kp[:2])) == [0]


def test_presence_floor_keeps_a_share_of_an_unreadable_proposal_and_tracking_inverts_it():
    # presence floor f: q counts as f + (1 - f) q; an unreadable proposal keeps f of its score
    assert np.allclose(rescore([0.8, 0.8, 0.5], [0.0, 1.0, np.nan], 'product', 0.2),
                       [0.16, 0.8, 0.5])
    for rule in ('product', 'geometric'):  # a tracked hand's proposal score from its score
        s = rescore([0.8, 0.3], [0.25, 0.9], rule, 0.2)
        assert np.allclose(proposal_scores(s, [0.25, 0.9], rule, 0.2), [0.8, 0.3])
    # merge scores with it: a hand the landmark model calls absent stays below 0.5 at f = 0.2
    kp = np.full((1, 21, 3), np.nan, np.float32)
    hands = Hands([[10, 10, 50, 50]], [0.95], kp, presence=[0.0], origin=[ORIGIN_SSD])
    assert np.allclose(merge(hands, [True], 0.1, 0.5, 5, 640, 480, presence_floor=0.2).scores,
                       [0.19])
    with pytest.raises(ValueError, match='unknown score rule'):
        rescore([0.5], [0.5], 'mean')


# ---------------------------------------------------------------------------- the chain
def _chain(still=True, **groups):
    return HandChain(groups.get('ssd', SsdParams()),
                     groups.get('palm', PalmParams()), groups.get('landmarks', LandmarkParams()),
                     groups.get('merge', MergeParams()), still=still)


def test_chain_finds_the_hands_with_keypoints_and_ssd_only_is_the_ssd(shared_data, webcam_val):
    chain = _chain()
    ssd_only = _chain(landmarks=LandmarkParams(enable=False))
    assert ssd_only.landmarks is None and ssd_only.palm is None
    hits = 0
    for s in webcam_val[:6]:
        rgb = _rgb(s)
        res = chain.process(rgb, SSD, 0.5, 10)
        assert res.landmark_calls >= 1 and res.palm_ran
        assert set(res.timings_ms) >= {'ssd', 'palm', 'landmarks_ssd', 'landmarks_palm', 'merge'}
        if len(res.hands) and pairwise_iou(res.hands.boxes, s.boxes).max() >= 0.5:
            hits += 1
            assert np.isfinite(res.hands.keypoints[0]).all()
        assert (res.hands.scores >= chain.merge_params.score_threshold).all()
        dets = SSD.detect(rgb, 0.5)
        alone = ssd_only.process(rgb, SSD, 0.5, 10)
        assert np.allclose(alone.hands.boxes, dets.boxes) and np.isnan(alone.hands.keypoints).all()
    assert hits >= 5


def test_an_upside_down_hand_is_read_from_a_turned_crop(shared_data):
    # webcam test frames turned by 180 degrees: the fingers point down in the labelled box, and
    # the landmark model reads the axis-aligned first crop (and the upright one made from its
    # keypoints) as no hand; ssd.turn_min_score reads it again from turned first crops
    from hand_tracker_training.datasets.parts import load_part
    names = {f'1528664299.56_pic00{n}.jpg' for n in ('000', '045', '155', '175', '194')}
    samples = [s for s in load_part('hands_webcam_subhih', 'test')
               if Path(s.image_path).name in names]
    assert len(samples) == 5
    turning, plain = _chain(), _chain(ssd=SsdParams(turn_min_score=1.0))
    absent_without = 0
    for s in samples:
        rgb = cv2.rotate(_rgb(s), cv2.ROTATE_180)
        h, w = rgb.shape[:2]
        b = s.boxes
        boxes = np.stack([w - b[:, 2], h - b[:, 3], w - b[:, 0], h - b[:, 1]], 1)
        without, calls_without = plain.check_boxes(rgb, boxes)
        hands, calls = turning.check_boxes(rgb, boxes)
        absent_without += int(without.presence[0] < 0.5)
        assert calls_without == 2
        assert hands.presence[0] > 0.9
        assert calls == (8 if without.presence[0] < 0.5 else 2)
        kp = hands.keypoints[0]
        assert kp[12, 1] > kp[0, 1]  # middle fingertip below the wrist, as in the turned image
        x0, y0, x1, y1 = boxes[0]
        pad_x, pad_y = 0.25 * (x1 - x0), 0.25 * (y1 - y0)  # on the labelled hand
        assert ((kp[:, 0] > x0 - pad_x) & (kp[:, 0] < x1 + pad_x) & (kp[:, 1] > y0 - pad_y)
                & (kp[:, 1] < y1 + pad_y)).all()
        # a proposal scoring below ssd.turn_min_score is left as the upright crop read it
        weak, weak_calls = turning.check_boxes(rgb, boxes, np.array([0.3], np.float32))
        assert weak_calls == 2 and np.isclose(weak.presence[0], without.presence[0])
    assert absent_without >= 3
    # the same frames upright: read at once, nothing turned
    upright, calls = turning.check_boxes(_rgb(samples[0]), samples[0].boxes)
    assert calls == 2 and upright.presence[0] > 0.9


def test_chain_tracks_from_keypoints_and_runs_the_palm_detector_on_schedule(webcam_val):
    chain = _chain(still=False, palm=PalmParams(every_n_frames=3))
    s = webcam_val[0]
    rgb = _rgb(s)
    budget = chain.ssd.max_new_per_frame
    first = chain.process(rgb, SSD, 0.5, 10)
    # video: new proposals one crop each, at most `budget` per source
    assert first.palm_ran and len(first.hands) >= 1 and first.landmark_calls <= 2 * budget
    chain.remember(first)
    second = chain.process(rgb, SSD, 0.5, 10)
    # the hand is re-measured from last frame's keypoints; its proposals are not re-checked
    assert not second.palm_ran and second.tracked_in == len(first.hands)
    assert ORIGIN_TRACK in second.hands.origin
    assert second.landmark_calls <= len(first.hands) + budget
    assert pairwise_iou(second.hands.boxes[:1], first.hands.boxes).max() > 0.5
    ssd_boxes = second.candidates.boxes[second.candidates.origin == ORIGIN_SSD]
    if len(ssd_boxes):
        assert pairwise_iou(ssd_boxes, first.hands.boxes).max() < 0.5
    chain.remember(second)
    third = chain.process(rgb, SSD, 0.5, 10)
    assert third.palm_ran  # every 3rd frame
    # what the check rejected in the second frame is not checked again in the third
    again = third.candidates.boxes[third.candidates.origin != ORIGIN_TRACK]
    if len(second.rejected) and len(again):
        assert pairwise_iou(again, second.rejected).max() < 0.5
    lost = ChainResult(Hands(), Hands(), tracked_in=1)
    chain.remember(lost)  # the tracked hand was lost: the palm detector runs on the next frame
    assert chain.process(rgb, SSD, 0.5, 10).palm_ran


def test_chain_runs_the_ssd_every_nth_frame_while_it_tracks_a_hand(webcam_val):
    chain = _chain(still=False, ssd=SsdParams(every_n_frames_tracking=2))
    rgb = _rgb(webcam_val[0])
    ran, tracked = [], []
    for _ in range(5):
        res = chain.process(rgb, SSD, 0.5, 10)
        ran.append(res.ssd_ran)
        tracked.append(res.tracked_in)
        chain.remember(res)
    # frame 1 has no tracked hand: the SSD runs; from frame 2 on the hand is tracked and the SSD
    # runs on every 2nd frame (the chain's frame count: 2 and 4)
    assert tracked[0] == 0 and min(tracked[1:]) >= 1
    assert ran == [True, True, False, True, False]
    assert chain.process(rgb, SSD, 0.5, 10).ssd_ran  # frame 6
    ssd_only = _chain(still=False, landmarks=LandmarkParams(enable=False))
    assert ssd_only.process(rgb, SSD, 0.5, 10).ssd_ran


def test_missing_or_corrupt_model_names_the_file_and_the_setup(tmp_path):
    with pytest.raises(ModelLoadError, match='fetch_mediapipe_models.sh') as err:
        _chain(landmarks=LandmarkParams(model_path=str(tmp_path / 'gone.tflite')))
    assert 'gone.tflite' in str(err.value)
    bad = tmp_path / 'bad.tflite'
    bad.write_bytes(b'not a model')
    with pytest.raises(ModelLoadError, match='bad.tflite.*fetch_mediapipe_models.sh'):
        _chain(palm=PalmParams(model_path=str(bad)))
    # a landmark model in the palm slot is refused, not misread
    with pytest.raises(ModelLoadError, match='not a MediaPipe palm detector'):
        _chain(palm=PalmParams(model_path=str(LANDMARK)))


def test_chain_info_records_the_settings_the_node_runs_with():
    """models/chain_info.yaml (chosen on val) = the dataclasses' defaults = hand_tracker.yaml."""
    info = yaml.safe_load((REPO / 'models' / 'chain_info.yaml').read_text())
    node = yaml.safe_load((REPO / 'config' / 'hand_tracker.yaml').read_text())
    node = node['/**/hand_detector']['ros__parameters']
    recorded = {f'{group}.{name}': value for group in CHAIN_GROUPS
                for name, value in info[group].items()}
    recorded.update(info['video'])
    assert len(recorded) >= 25
    for key, value in recorded.items():
        group, name = key.split('.')
        default = getattr(CHAIN_GROUPS[group](), name)
        assert default == pytest.approx(value), f'{key}: chain_info {value}, default {default}'
        assert node[group][name] == pytest.approx(value), f'{key}: hand_tracker.yaml'
