r"""
Static hand poses: finger-count labels, the thumb classifier's training, pose accuracy.

Labels: a YOLO folder's ``<split>/labels_fingers/<image>.txt`` (same boxes, same order as
``labels/``, class = extended fingers 0-5; ``hands_webcam_subhih``), else ``labels/`` whose
``data.yaml`` class names are counts (``one`` ... ``five``, ``hand_gestures_roboflow``).

Keypoints are read in each ground-truth box as the chain reads them in an SSD proposal
(:meth:`hand_tracker_ros.chain.HandChain.check_boxes`), and classified by
:func:`hand_tracker_ros.poses.classify`: the evaluation runs the node's stages.

Training the thumb classifier (train parts of the sources, selection on val; writes the JSON
the node loads)::

    python -m hand_tracker_training.poses --out models/pose_thumb.json
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

import cv2
from hand_tracker_ros.poses import classify, PoseParams, thumb_inputs, ThumbModel
import numpy as np
import yaml

#: Class names that are finger counts (data.yaml ``names``).
COUNT_NAMES = {'zero': 0, 'fist': 0, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5,
               '0_fingers': 0, '1_finger': 1, '2_fingers': 2, '3_fingers': 3, '4_fingers': 4,
               '5_fingers': 5}
#: Sources of config/data_splits.yaml with finger counts.
POSE_SOURCES = ('hands_webcam_subhih', 'hand_gestures_roboflow')
COUNTS = 6


def _class_counts(root: Path) -> Optional[list[int]]:
    """Return the count of each class of ``root/data.yaml``, None if a name is no count."""
    path = root / 'data.yaml'
    if not path.is_file():
        return None
    names = (yaml.safe_load(path.read_text(encoding='utf-8')) or {}).get('names') or []
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    counts = [COUNT_NAMES.get(str(n).lower()) for n in names]
    return None if not counts or None in counts else counts


def finger_labels(image_path: str | Path) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """
    (boxes (N, 4) pixels, finger counts (N,)) of an image of a YOLO folder, None without.

    ``labels_fingers/`` beside the image folder first, else ``labels/`` when ``data.yaml``
    (in the folder above the split) names counts. Raises ValueError for a malformed line.
    """
    image_path = Path(image_path)
    split = image_path.parent.parent
    label = split / 'labels_fingers' / (image_path.stem + '.txt')
    mapping = None
    if not label.is_file():
        mapping = _class_counts(split.parent)
        label = split / 'labels' / (image_path.stem + '.txt')
        if mapping is None or not label.is_file():
            return None
    img = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'{image_path}: not a readable image')
    height, width = img.shape[:2]
    boxes, counts = [], []
    for lineno, line in enumerate(label.read_text(encoding='utf-8').splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise ValueError(f'{label}:{lineno}: expected "class cx cy w h", got {line!r}')
        c, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:])
        count = mapping[c] if mapping is not None else c
        if not 0 <= count < COUNTS:
            raise ValueError(f'{label}:{lineno}: finger count {count} not in 0-5')
        boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                      (cy + h / 2) * height])
        counts.append(count)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(counts, np.int32)


def labelled_hands(chain, image_paths: Sequence[str | Path]) -> dict:
    """
    Keypoints in every labelled ground-truth box of the images, as the chain reads them.

    Returns ``{'image': [path per hand], 'box': (N, 4), 'count': (N,), 'keypoints':
    (N, 21, 3)}``; images without finger labels are skipped.
    """
    out = {'image': [], 'box': [], 'count': [], 'keypoints': []}
    for path in image_paths:
        labels = finger_labels(path)
        if labels is None or not len(labels[0]):
            continue
        boxes, counts = labels
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        hands, _ = chain.check_boxes(rgb, boxes)
        out['image'] += [str(path)] * len(boxes)
        out['box'].append(boxes)
        out['count'].append(counts)
        out['keypoints'].append(hands.keypoints)
    for k, shape in (('box', (0, 4)), ('count', (0,)), ('keypoints', (0, 21, 3))):
        out[k] = np.concatenate(out[k]) if out[k] else np.zeros(shape, np.float32)
    return out


def pose_evaluation(chain, classifier, samples: Sequence, predictions: Sequence,
                    threshold: float, iou: float = 0.5) -> Optional[dict]:
    """
    Pose accuracy of a set: on the ground-truth boxes and end to end; None without labels.

    Ground truth: keypoints read in every labelled box (:func:`labelled_hands`). End to end:
    the detections (`predictions`, with keypoints, one per sample) scoring at least
    `threshold`, matched best score first to the labelled box they overlap most (IoU >=
    `iou`); a labelled hand without a match counts as wrong ('none' in the confusion).
    Returns ``{'pose_accuracy', 'pose_accuracy_end_to_end', 'pose_confusion':
    {'ground_truth_boxes', 'end_to_end'}, 'pose_hands'}``.
    """
    from hand_tracker_ros.geometry import pairwise_iou
    paths = [s.image_path for s in samples]
    gt = labelled_hands(chain, paths)
    if not len(gt['count']):
        return None
    on_boxes = pose_report(gt['count'], classifier(gt['keypoints']).count)
    truth, predicted = [], []
    for path, det in zip(paths, predictions):
        labels = finger_labels(path)
        if labels is None or not len(labels[0]):
            continue
        boxes, counts = labels
        got = np.full(len(boxes), -1)
        kept = det.filter(threshold)
        if len(kept) and kept.keypoints is not None:
            ious = pairwise_iou(kept.boxes, boxes)
            poses = classifier(kept.keypoints).count
            for d in np.argsort(-kept.scores, kind='stable'):
                candidates = np.where(got >= 0, -1.0, ious[d])
                g = int(np.argmax(candidates))
                if candidates[g] >= iou and got[g] < 0:
                    got[g] = poses[d] if poses[d] >= 0 else COUNTS
        truth.append(counts)
        predicted.append(got)
    end_to_end = pose_report(np.concatenate(truth), np.concatenate(predicted))
    return {'pose_hands': on_boxes['hands'], 'pose_accuracy': on_boxes['accuracy'],
            'pose_accuracy_end_to_end': end_to_end['accuracy'],
            'pose_confusion': {'ground_truth_boxes': on_boxes['confusion'],
                               'end_to_end': end_to_end['confusion']}}


def confusion(truth: np.ndarray, predicted: np.ndarray) -> list[list[int]]:
    """Return the confusion matrix: rows true count 0-5, columns predicted 0-5 then 'none'."""
    m = np.zeros((COUNTS, COUNTS + 1), int)
    for t, p in zip(truth, predicted):
        m[int(t), int(p) if 0 <= p < COUNTS else COUNTS] += 1
    return m.tolist()


def pose_report(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """``{hands, accuracy, confusion}`` of predicted finger counts (-1: none) vs. the truth."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    return {'hands': int(len(truth)),
            'accuracy': float(np.mean(truth == predicted)) if len(truth) else float('nan'),
            'confusion': confusion(truth, predicted)}


def format_confusion(matrix: Sequence[Sequence[int]]) -> str:
    """Return a confusion matrix as a text table."""
    head = 'true\\pred ' + ' '.join(f'{c:>4}' for c in list(range(COUNTS)) + ['none'])
    return '\n'.join([head] + [f'{i:>9} ' + ' '.join(f'{v:>4}' for v in row)
                               for i, row in enumerate(matrix)])


def train_thumb(keypoints: np.ndarray, counts: np.ndarray, params: PoseParams,
                hidden: int = 16, weight_decay: float = 1e-2, epochs: int = 400,
                seed: int = 0) -> ThumbModel:
    """
    Fit the thumb classifier on labelled hands (full-batch Adam, numpy).

    A hand's thumb label is its finger count minus the long fingers the rules find extended;
    hands where that is not 0 or 1 (a long finger misread) are left out.
    """
    kp = np.asarray(keypoints, np.float64)
    ok = np.isfinite(kp).all(axis=(1, 2))
    kp, counts = kp[ok], np.asarray(counts)[ok]
    long_fingers = (classify(kp, params).extended[:, 1:] >= 0.5).sum(axis=1)
    thumb = counts - long_fingers
    keep = (thumb == 0) | (thumb == 1)
    x, y = thumb_inputs(kp[keep]), thumb[keep]
    rng = np.random.default_rng(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xn = (x - mean) / std
    w = [rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], hidden)), np.zeros(hidden),
         rng.normal(0, 1 / np.sqrt(hidden), (hidden, 2)), np.zeros(2)]
    m1 = [np.zeros_like(v) for v in w]
    m2 = [np.zeros_like(v) for v in w]
    target = np.eye(2)[y]
    for t in range(1, epochs + 1):
        h = np.maximum(xn @ w[0] + w[1], 0.0)
        z = h @ w[2] + w[3]
        z -= z.max(axis=1, keepdims=True)
        prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        g = (prob - target) / len(y)
        gh = g @ w[2].T * (h > 0)
        grads = [xn.T @ gh + weight_decay * w[0], gh.sum(0), h.T @ g + weight_decay * w[2],
                 g.sum(0)]
        for i, gr in enumerate(grads):
            m1[i] = 0.9 * m1[i] + 0.1 * gr
            m2[i] = 0.999 * m2[i] + 0.001 * gr ** 2
            w[i] -= 0.01 * (m1[i] / (1 - 0.9 ** t)) / (np.sqrt(m2[i] / (1 - 0.999 ** t)) + 1e-8)
    return ThumbModel({'mean': mean, 'std': std, 'w1': w[0], 'b1': w[1], 'w2': w[2],
                       'b2': w[3], 'hidden': hidden, 'weight_decay': weight_decay,
                       'epochs': epochs, 'seed': seed, 'train_hands': int(len(y))})


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m hand_tracker_training.poses',
        description='Train the thumb classifier of the pose stage on the train parts, compare '
                    'it with the rule on val, write the JSON the node loads.')
    parser.add_argument('--out', type=Path, required=True, help='thumb model JSON to write')
    parser.add_argument('--sources', nargs='+', default=list(POSE_SOURCES))
    parser.add_argument('--hidden', type=int, nargs='+', default=[8, 16, 32],
                        help='hidden sizes to try (chosen on val)')
    parser.add_argument('--threads', type=int, default=2)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Train, select on val (mean accuracy over the sources), write the model."""
    args = _parse_args(argv)
    from hand_tracker_ros.chain import chain_from_defaults
    from hand_tracker_training.datasets.parts import load_part
    chain = chain_from_defaults(num_threads=args.threads)
    data = {(s, part): labelled_hands(chain, [x.image_path for x in load_part(s, part)])
            for s in args.sources for part in ('train', 'val')}
    params = PoseParams()
    kp = np.concatenate([data[s, 'train']['keypoints'] for s in args.sources])
    counts = np.concatenate([data[s, 'train']['count'] for s in args.sources])

    def val_accuracy(model: Optional[ThumbModel]) -> dict:
        return {s: pose_report(data[s, 'val']['count'],
                               classify(data[s, 'val']['keypoints'], params, model).count
                               )['accuracy'] for s in args.sources}

    rows = [('rule', None, val_accuracy(None))]
    for hidden in args.hidden:
        model = train_thumb(kp, counts, params, hidden)
        rows.append((f'classifier hidden={hidden}', model, val_accuracy(model)))
    for name, _, acc in rows:
        print(f'{name:<24} val accuracy ' + '  '.join(f'{s} {a:.3f}' for s, a in acc.items()))
    name, best, acc = max(rows[1:], key=lambda r: np.mean(list(r[2].values())))
    rule_mean = np.mean(list(rows[0][2].values()))
    print(f'chosen: {name} (mean val {np.mean(list(acc.values())):.3f}, rule {rule_mean:.3f})')
    best.info.update({'trained_on': [f'{s}/train' for s in args.sources],
                      'val_accuracy': acc, 'val_accuracy_rule': rows[0][2]})
    args.out.write_text(best.to_json() + '\n', encoding='utf-8')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
