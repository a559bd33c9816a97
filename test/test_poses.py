"""
The pose stage on real images: finger counts of held-out webcam hands, labels, pose events.

Keypoints are read by the real MediaPipe landmark model in ground-truth boxes of
``../shared/data`` (the webcam test sessions: reporting only, nothing is chosen here).
"""
import json
from pathlib import Path
import shutil

from hand_tracker_ros.chain import chain_from_defaults
from hand_tracker_ros.gestures import Gesture
from hand_tracker_ros.poses import (canonical, classify, Pose, PoseClassifier, PoseHolds,
                                    PoseParams, PoseResult, ThumbModel)
from hand_tracker_ros.tracking import Track, TrackState
from hand_tracker_training.poses import finger_labels, labelled_hands, pose_report
import numpy as np
import pytest


@pytest.fixture(scope='module')
def chain():
    return chain_from_defaults(num_threads=2)


@pytest.fixture(scope='module')
def webcam_test_paths(shared_data):
    from hand_tracker_training.datasets.parts import load_part
    samples = load_part('hands_webcam_subhih', 'test')
    return [s.image_path for s in samples[::12]]   # ~30 images spread over the 4 sessions


def test_finger_labels_follow_labels_boxes_and_class_names(shared_data):
    webcam = shared_data / 'hands_webcam_subhih' / 'test' / 'images'
    image = sorted(webcam.glob('*.jpg'))[0]
    boxes, counts = finger_labels(image)
    plain = np.loadtxt(webcam.parent / 'labels' / (image.stem + '.txt'), ndmin=2)
    assert len(boxes) == len(plain) == len(counts)
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2 / 640, plain[:, 1], atol=1e-4)
    assert set(counts) <= set(range(6))
    # gestures: data.yaml names the classes 'five', 'four', 'one', 'three', 'two'
    gestures = shared_data / 'hand_gestures_roboflow' / 'test'
    seen = {}
    for label in sorted((gestures / 'labels').glob('*.txt'))[:40]:
        cls = int(label.read_text().split()[0])
        image = next((gestures / 'images').glob(label.stem + '.*'))
        seen[cls] = int(finger_labels(image)[1][0])
    assert seen == {c: n for c, n in {0: 5, 1: 4, 2: 1, 3: 3, 4: 2}.items() if c in seen}
    # a data set without counts has no pose labels
    asl = next((shared_data / 'asl_letters_roboflow' / 'test' / 'images').glob('*.jpg'))
    assert finger_labels(asl) is None


def test_finger_count_on_held_out_webcam_hands(chain, webcam_test_paths):
    hands = labelled_hands(chain, webcam_test_paths)
    assert len(hands['count']) >= 25 and len(set(hands['count'])) >= 5
    with_classifier = pose_report(hands['count'], PoseClassifier()(hands['keypoints']).count)
    rule = pose_report(hands['count'], classify(hands['keypoints']).count)
    # measured on all 361 test hands: 0.99+ with the thumb classifier, 0.93 with the rule
    assert with_classifier['accuracy'] >= 0.9, with_classifier
    assert with_classifier['accuracy'] >= rule['accuracy']
    res = PoseClassifier()(hands['keypoints'])
    fists = res.pose[hands['count'] == 0]
    assert np.mean(fists == Pose.FIST) >= 0.8
    assert np.all((res.confidence >= 0) & (res.confidence <= 1))


def test_named_poses_follow_the_finger_pattern(chain, webcam_test_paths):
    hands = labelled_hands(chain, webcam_test_paths)
    res = PoseClassifier()(hands['keypoints'])
    up = res.extended >= 0.5
    for pose, pattern in ((Pose.FIST, [0, 0, 0, 0, 0]), (Pose.POINT, [0, 1, 0, 0, 0]),
                          (Pose.VICTORY, [0, 1, 1, 0, 0]), (Pose.FOUR, [0, 1, 1, 1, 1]),
                          (Pose.OPEN_PALM, [1, 1, 1, 1, 1])):
        assert np.all(up[res.pose == pose] == pattern), pose
    assert np.all(res.count == up.sum(axis=1))
    # rotating the image (the keypoints) does not change the count; thumb up becomes down
    kp = hands['keypoints'].copy()
    flipped = kp.copy()
    flipped[:, :, 1] = -flipped[:, :, 1]
    flipped[:, :, 0] = -flipped[:, :, 0]
    np.testing.assert_array_equal(PoseClassifier()(flipped).count, res.count)
    np.testing.assert_allclose(canonical(flipped), canonical(kp), atol=1e-6)


def test_no_keypoints_is_unknown_not_a_guess():
    res = classify(np.full((2, 21, 3), np.nan))
    assert list(res.count) == [-1, -1] and list(res.pose) == [Pose.UNKNOWN] * 2
    assert res.names() == ['unknown', 'unknown'] and not res.confidence.any()
    assert len(classify(np.zeros((0, 21, 3))).count) == 0


def test_a_bad_thumb_model_is_a_clear_error(tmp_path):
    bad = tmp_path / 'thumb.json'
    bad.write_text(json.dumps({'mean': [0.0] * 3}))
    with pytest.raises(ValueError, match='thumb model'):
        ThumbModel.load(bad)
    with pytest.raises(OSError, match='thumb_classifier:=false'):
        PoseClassifier(thumb_model_path=tmp_path / 'missing.json')
    assert PoseClassifier(PoseParams(thumb_classifier=False),
                          thumb_model_path=tmp_path / 'missing.json').thumb is None


def _track(track_id, state=TrackState.CONFIRMED, det_index=0):
    return Track(track_id, np.array([0, 0, 50, 50], np.float32), 0.9, np.zeros(2, np.float32),
                 1.0, 5, state, '', np.zeros((0, 2), np.float32), det_index)


def _poses(*pose):
    n = len(pose)
    return PoseResult(np.zeros(n, np.int32), np.ones(n, np.float32), np.array(pose, np.int32),
                      np.full(n, 0.9, np.float32), np.zeros((n, 5), np.float32))


def test_a_held_pose_fires_once_per_occurrence():
    holds = PoseHolds(PoseParams(hold_time=0.5))
    events = []
    seq = [Pose.THUMB_UP] * 10 + [Pose.OTHER] + [Pose.THUMB_UP] * 10
    for k, pose in enumerate(seq):
        events += [(k, e) for e in holds.update([_track(1)], _poses(pose), k * 0.1)]
    assert [k for k, _ in events] == [5, 16]    # 0.5 s after each start
    k, ev = events[0]
    assert ev.gesture == Gesture.POSE and ev.name == 'pose_thumb_up' and ev.pose == Pose.THUMB_UP
    assert ev.start == 0.0 and ev.end == pytest.approx(0.5) and ev.confidence == pytest.approx(0.9)
    # a lost frame keeps the clock; UNKNOWN / OTHER never fire; a vanished track is forgotten
    holds = PoseHolds(PoseParams(hold_time=0.3))
    out = []
    for k in range(6):
        state = TrackState.LOST if k == 2 else TrackState.CONFIRMED
        out += holds.update([_track(1, state), _track(2, det_index=1)],
                            _poses(Pose.FIST, Pose.UNKNOWN), k * 0.1)
    assert [(e.hand_id, e.name, e.end) for e in out] == [(1, 'pose_fist', pytest.approx(0.3))]
    assert holds.update([], _poses(), 1.0) == [] and not holds._hands


def test_hand_tracker_eval_poses_on_a_yolo_folder(shared_data, tmp_path, webcam_test_paths):
    from hand_tracker_training.eval_cli import main
    root = tmp_path / 'yolo'
    for sub in ('images', 'labels', 'labels_fingers'):
        (root / 'test' / sub).mkdir(parents=True)
    for path in webcam_test_paths[:6]:
        path = Path(path)
        shutil.copy(path, root / 'test' / 'images')
        for sub in ('labels', 'labels_fingers'):
            shutil.copy(path.parent.parent / sub / (path.stem + '.txt'), root / 'test' / sub)
    out = tmp_path / 'eval.json'
    assert main(['--yolo', str(root), '--poses', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert 0.5 <= report['pose_accuracy_end_to_end'] <= 1.0
    assert report['pose_accuracy'] >= 0.8
    matrix = np.array(report['pose_confusion']['ground_truth_boxes'])
    assert matrix.shape == (6, 7) and matrix.sum() == report['pose_hands'] == report['hands']


def test_a_still_hand_fires_no_motion_gesture(shared_data):
    """One held-out webcam frame, 1.5 s at 30 fps with sensor noise and shake: no motion."""
    import cv2
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_ros.resources import default_model_path
    from hand_tracker_training.datasets.parts import load_part
    from hand_tracker_training.still_hands import MOTION, run_still_sequence
    sample = next(s for s in load_part('hands_webcam_subhih', 'test') if len(s.boxes) == 1)
    rgb = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
    out = run_still_sequence(chain_from_defaults(still=False), load_detector(
        str(default_model_path())), rgb, seconds=1.5, fps=30, noise=3.0, shake=0.5)
    assert out['frames'] == 45 and out['max_hands'] == 1
    assert not any(out['events'][k] for k in MOTION), out['events']
    # the still hand does what a still hand should: hold (1 s) and its pose, once each
    assert out['events']['hold'] == 1 and sum(
        v for k, v in out['events'].items() if k.startswith('pose_')) == 1, out['events']
