r"""
A contact sheet per static pose, from the test parts: what the pose stage calls each pose.

Keypoints are read in the ground-truth boxes of the test parts (as ``hand-tracker-eval
--poses`` does) and classified at the node's defaults; per named pose, the surest hands,
taken in turn from each source, are cropped with their skeleton and label::

    .venv/bin/python tools/pose_contact_sheets.py docs/poses

writes ``<out>/<pose>.jpg`` and prints how many test hands each pose got per source.
``--errors SOURCE`` instead writes ``<out>/count_errors_<short>.jpg``: every test hand of
that source whose finger count differs from its label, with both (for auditing the labels).
``--review SOURCE`` writes ``<out>/label_review_<short>_<k>.jpg`` (short: webcam, gestures,
asl): every labelled test hand of that source, numbered, with its label only (no keypoints, no
reading), 20 per sheet, so that a person can check every label and not only those the stage
disagrees with.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
import sys
import tempfile

import cv2
from hand_tracker_ros.annotate import draw_label, draw_skeleton
from hand_tracker_ros.chain import chain_from_defaults
from hand_tracker_ros.poses import Pose, PoseClassifier
from hand_tracker_training.datasets.parts import load_part
from hand_tracker_training.eval_suite import contact_sheet
import numpy as np

SOURCES = ('hands_webcam_subhih', 'hand_gestures_roboflow', 'asl_letters_roboflow')
SHORT = {'hands_webcam_subhih': 'webcam', 'hand_gestures_roboflow': 'gestures',
         'asl_letters_roboflow': 'asl'}


def _crop(rgb: np.ndarray, box, keypoints, text: str, size: int = 200) -> np.ndarray:
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if keypoints is not None:
        draw_skeleton(img, keypoints, (0, 220, 0), 2)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * 0.65
    m = np.float32([[size / (2 * half), 0, size / 2 - cx * size / (2 * half)],
                    [0, size / (2 * half), size / 2 - cy * size / (2 * half)]])
    out = cv2.warpAffine(img, m, (size, size), borderValue=(30, 30, 30))
    draw_label(out, text, 0, size - 1, (255, 255, 255), 0.4, 1)
    return out


def _labelled_test_hands(source: str):
    """Yield (image path, RGB, boxes, finger counts) of each test image of `source` with labels."""
    from hand_tracker_training.poses import finger_labels

    for sample in load_part(source, 'test'):
        labels = finger_labels(sample.image_path)
        if labels is None or not len(labels[0]):
            continue
        rgb = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
        yield sample.image_path, rgb, *labels


def _error_sheet(chain, classifier, source: str, out: Path) -> int:
    """Write the sheet of the hands of `source`'s test part whose count differs from its label."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        crops, hands_seen = [], 0
        for path, rgb, boxes, counts in _labelled_test_hands(source):
            hands, _ = chain.check_boxes(rgb, boxes)
            got = classifier(hands.keypoints).count
            hands_seen += len(boxes)
            for i in np.flatnonzero(got != counts):
                text = f'label {counts[i]} read {got[i]} {Path(path).name[:16]}'
                print(f'{Path(path).name}: box {i}, label {counts[i]}, read {got[i]}')
                p = Path(tmp) / f'{len(crops)}.png'
                cv2.imwrite(str(p), _crop(rgb, boxes[i], hands.keypoints[i], text))
                crops.append(p)
        print(f'{len(crops)} of {hands_seen} hands read differently from their label')
        contact_sheet(crops, out / f'count_errors_{SHORT[source]}.jpg', columns=5,
                      cell=(200, 200))
    return 0


def _review_sheets(source: str, out: Path, per_sheet: int = 20) -> int:
    """Write every labelled test hand of `source`, numbered, with its finger-count label."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        crops = []
        for path, rgb, boxes, counts in _labelled_test_hands(source):
            for i, (box, count) in enumerate(zip(boxes, counts)):
                print(f'#{len(crops)} {Path(path).name}: box {i}, label {count}')
                p = Path(tmp) / f'{len(crops)}.png'
                cv2.imwrite(str(p), _crop(rgb, box, None, f'#{len(crops)} label {count}'))
                crops.append(p)
        for k in range(0, len(crops), per_sheet):
            contact_sheet(crops[k:k + per_sheet],
                          out / f'label_review_{SHORT[source]}_{k // per_sheet}.jpg',
                          columns=5, cell=(200, 200))
        print(f'{len(crops)} hands on {-(-len(crops) // per_sheet)} sheets in {out}')
    return 0


def main(argv=None) -> int:
    """Write the sheets; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', type=Path)
    parser.add_argument('--per-pose', type=int, default=6)
    parser.add_argument('--errors', choices=SOURCES, help='sheet of the count errors instead')
    parser.add_argument('--review', choices=SOURCES,
                        help='sheets of every labelled test hand with its label only instead')
    args = parser.parse_args(argv)
    if args.review:
        return _review_sheets(args.review, args.out)
    chain, classifier = chain_from_defaults(), PoseClassifier()
    if args.errors:
        return _error_sheet(chain, classifier, args.errors, args.out)
    found = defaultdict(lambda: defaultdict(list))   # pose -> source -> [(conf, crop)]
    for source in SOURCES:
        for sample in load_part(source, 'test'):
            if not len(sample.boxes):
                continue
            rgb = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
            hands, _ = chain.check_boxes(rgb, sample.boxes)
            res = classifier(hands.keypoints)
            for i, pose in enumerate(res.pose):
                if pose in (Pose.UNKNOWN, Pose.OTHER):
                    continue
                text = f'{res.names()[i]} {res.confidence[i]:.2f} {SHORT[source]}'
                found[int(pose)][source].append(
                    (float(res.confidence[i]), sample.image_path, sample.boxes[i],
                     hands.keypoints[i], text))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pose in Pose:
            by_source = found.get(int(pose), {})
            print(f'{pose.name.lower():<11} ' + ', '.join(
                f'{SHORT[s]} {len(by_source.get(s, []))}' for s in SOURCES))
            queues = [sorted(v, key=lambda r: -r[0]) for v in by_source.values()]
            picked = []
            while len(picked) < args.per_pose and any(queues):
                for q in queues:
                    if q and len(picked) < args.per_pose:
                        picked.append(q.pop(0))
            paths = []
            for k, (_, path, box, kp, text) in enumerate(picked):
                rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
                p = Path(tmp) / f'{pose.name}_{k}.png'
                cv2.imwrite(str(p), _crop(rgb, box, kp, text))
                paths.append(p)
            sheet = args.out / f'{pose.name.lower()}.jpg'
            if paths:
                contact_sheet(paths, sheet, columns=args.per_pose, cell=(200, 200))
            else:
                sheet.unlink(missing_ok=True)   # no stale sheet of an earlier run
    return 0


if __name__ == '__main__':
    sys.exit(main())
