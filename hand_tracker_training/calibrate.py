"""
The model's calibrated operating point: the score threshold chosen on the validation parts.

Rule (:data:`RULE`): among thresholds 0.05, 0.06, ..., 0.95, take the one with the highest
mean over sources of F1 at IoU 0.5, subject to every source's recall >= ``recall_floor``
(0.85 by default, the project's recall target) and every source's precision >=
``precision_floor`` (0.5). A source-mean weights every domain equally (a pooled F1 is decided
by the largest set); the recall floor stops the mean from buying precision on easy sources
with the recall of the weakest one, which is what the node's former fixed 0.5 did; the
precision floor stops the recall floor from dragging the threshold down to where most boxes
are false (a first run met a 0.85 recall floor only at 0.1, with precision 0.05 everywhere).
When no threshold meets both floors, the highest mean F1 is taken and ``floor_met: false``
says so. A source of :data:`SOURCE_RECALL_FLOORS` has its own, lower recall floor: the far-hands
validation set (the recipe's ``val_far_hands``) holds hands of 4-15 % of the image height only,
where the project asks a recall of 0.5, not 0.85.

The result goes into ``model_info.yaml`` beside ``label_map.pbtxt``: the node reads
``score_threshold`` from it (:func:`hand_tracker_ros.resources.model_score_threshold`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from hand_tracker_ros.resources import MODEL_INFO_NAME
import numpy as np

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)
RULE = ('highest mean-over-sources F1 (IoU 0.5) on the validation parts, subject to every '
        "source's recall >= recall_floor and precision >= precision_floor (else the highest "
        'mean F1); thresholds 0.05..0.95 step 0.01')
#: The default lowest precision of every source at the operating point.
PRECISION_FLOOR = 0.5
#: Sources whose recall floor is this instead of ``recall_floor`` (when lower).
SOURCE_RECALL_FLOORS = {'far_hands': 0.5}


def scored_matches(samples: Sequence, predictions: Sequence, iou: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """
    (scores, is-true-positive, number of hands) of all detections of a set.

    Greedy matching in descending score order does not depend on the threshold (dropping the
    lowest-scored detections never changes the matches of the others), so one matching at the
    lowest score gives P/R at every threshold.
    """
    from hand_tracker_training.evaluate import match_detections

    scores, tps, hands = [], [], 0
    for sample, det in zip(samples, predictions):
        tp, _ = match_detections(sample.boxes, det, iou)
        scores.append(np.asarray(det.scores, np.float64))
        tps.append(np.asarray(tp, bool))
        hands += len(sample.boxes)
    return np.concatenate(scores or [[]]), np.concatenate(tps or [[]]).astype(bool), hands


def pr_curve(scores: np.ndarray, tps: np.ndarray, hands: int,
             thresholds: np.ndarray = THRESHOLDS) -> dict[str, np.ndarray]:
    """Precision, recall and F1 at each threshold (precision 1 when nothing is detected)."""
    keep = scores[None, :] >= thresholds[:, None]
    tp = (keep & tps[None, :]).sum(axis=1).astype(np.float64)
    det = keep.sum(axis=1)
    precision = np.where(det > 0, tp / np.maximum(det, 1), 1.0)
    recall = tp / max(hands, 1)
    f1 = np.where(precision + recall > 0,
                  2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return {'precision': precision, 'recall': recall, 'f1': f1}


def choose_threshold(curves: Mapping[str, dict], recall_floor: float = 0.85,
                     thresholds: np.ndarray = THRESHOLDS,
                     precision_floor: float = PRECISION_FLOOR) -> dict:
    """
    Apply :data:`RULE` to per-source curves of :func:`pr_curve`.

    Returns the threshold, the rule and each source's precision / recall / F1 there.
    """
    if not curves:
        raise ValueError('choose_threshold: no validation sources')
    mean_f1 = np.mean([c['f1'] for c in curves.values()], axis=0)
    floors = {s: min(recall_floor, SOURCE_RECALL_FLOORS.get(s, recall_floor)) for s in curves}
    recall_ok = np.all([c['recall'] >= floors[s] for s, c in curves.items()], axis=0)
    least_precise = np.min([c['precision'] for c in curves.values()], axis=0)
    ok = recall_ok & (least_precise >= precision_floor)
    k = int(np.argmax(np.where(ok, mean_f1, -1.0))) if ok.any() else int(np.argmax(mean_f1))
    return {'score_threshold': float(thresholds[k]), 'rule': RULE,
            'recall_floor': float(recall_floor), 'precision_floor': float(precision_floor),
            'floor_met': bool(ok.any()),
            **({'source_recall_floors': {s: f for s, f in sorted(floors.items())
                                         if f != recall_floor}}
               if any(f != recall_floor for f in floors.values()) else {}),
            'mean_f1': round(float(mean_f1[k]), 4),
            'validation': {s: {m: round(float(c[m][k]), 4) for m in ('precision', 'recall', 'f1')}
                           for s, c in sorted(curves.items())}}


def calibrate(detector, parts: Mapping[str, Sequence], recall_floor: float = 0.85) -> dict:
    """
    Run `detector` on each source's validation samples and choose the threshold.

    `detector` is a :mod:`hand_tracker_ros.backends` detector; adds image / hand counts per
    source.
    """
    from hand_tracker_training.evaluate import evaluate_detector

    curves, counts = {}, {}
    for source, samples in sorted(parts.items()):
        _, preds = evaluate_detector(detector, samples, min_score=float(THRESHOLDS[0]),
                                     progress=False)
        scores, tps, hands = scored_matches(samples, preds)
        curves[source] = pr_curve(scores, tps, hands)
        counts[source] = {'images': len(samples), 'hands': hands}
    info = choose_threshold(curves, recall_floor)
    for source, c in counts.items():
        info['validation'][source].update(c)
    info['calibrated_on'] = Path(str(detector.model_path)).name
    return info


def write_model_info(info: Mapping, out_dir: str | Path) -> Path:
    """Write ``model_info.yaml`` (``score_threshold`` first) into `out_dir`."""
    import yaml

    path = Path(out_dir) / MODEL_INFO_NAME
    text = ('# Written by hand-tracker-train / hand-tracker-export: the operating point of the '
            'model beside it.\n# The node uses score_threshold unless its parameter is set.\n')
    path.write_text(text + yaml.safe_dump(dict(info), sort_keys=False))
    return path
