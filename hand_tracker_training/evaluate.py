r"""
COCO evaluation of hand detectors: metrics (pycocotools), latency, PR curves, failure cases.

The detector is evaluated through the very backends the ROS node uses
(:func:`hand_tracker_ros.backends.load_detector`), so a frozen graph and its TFLite export are
measured the way they run. Metrics are COCO bbox metrics over a single category, ``hand``.

Command line (``hand-tracker-eval``)::

    hand-tracker-eval --model models/model.tflite --egohands ../shared/data/egohands \
        --videos CARDS_OFFICE_S_B --json eval.json --plots eval_plots/
    hand-tracker-eval --model frozen_inference_graph.pb --label-map label_map.pbtxt \
        --yolo ../shared/data/hand_gestures_roboflow --yolo-splits test --json eval.json

It prints a table beside the original project's numbers, writes the metrics as JSON and, with
``--plots``, a precision-recall curve and annotated images of the worst failures.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
import sys
import time
from typing import Optional, Sequence, TYPE_CHECKING

import cv2
from hand_tracker_ros.annotate import draw_box, draw_label, draw_skeleton
from hand_tracker_ros.detections import Detections
from hand_tracker_ros.geometry import pairwise_iou
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params
from tqdm import tqdm


if TYPE_CHECKING:
    from hand_tracker_ros.backends import Detector
    from hand_tracker_training.datasets import Sample

#: COCOeval's defaults for bbox: IoU thresholds 0.50:0.05:0.95, 101 recall points 0:0.01:1.
IOU_THRESHOLDS: np.ndarray = Params(iouType='bbox').iouThrs
RECALL_THRESHOLDS: np.ndarray = Params(iouType='bbox').recThrs

#: COCOeval.stats positions of the metrics reported here (the first 9 of its 12).
METRIC_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100')

#: Keys written to the JSON of ``hand-tracker-eval``.
JSON_METRIC_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR100')

#: The original project's SSD MobileNet v2 (COCO-pretrained, EgoHands split by random frames).
REFERENCE = {'AP': 0.6022, 'AP50': 0.9426, 'AP75': 0.7235}

_TABLE_ROWS = (('AP', 'AP'), ('AP@0.5', 'AP50'), ('AP@0.75', 'AP75'), ('AP small', 'APs'),
               ('AP medium', 'APm'), ('AP large', 'APl'), ('AR@100', 'AR100'))

_CATEGORY_ID = 1

#: Recall bins by hand size: (name, low, high) of the box height / the image height, [low, high).
HEIGHT_BINS = (('<8%', 0.0, 0.08), ('8-12%', 0.08, 0.12), ('12-16%', 0.12, 0.16),
               ('>16%', 0.16, float('inf')))

#: RGB colours of write_failure_cases: true positives, missed hands, false positives.
TP_COLOUR = (40, 200, 40)
MISSED_COLOUR = (230, 30, 30)
FP_COLOUR = (255, 200, 0)


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    """[x_min, y_min, x_max, y_max] pixels -> COCO [x, y, width, height] lists."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]]).tolist()


def _coco_from(images: list[dict], annotations: list[dict]) -> COCO:
    """Return an in-memory COCO object (no file) of one category, ``hand``."""
    coco = COCO()
    coco.dataset = {'images': images, 'annotations': annotations,
                    'categories': [{'id': _CATEGORY_ID, 'name': 'hand', 'supercategory': 'hand'}]}
    coco.createIndex()
    return coco


def coco_metrics(samples: Sequence['Sample'], predictions: Sequence[Detections],
                 verbose: bool = False) -> dict:
    """
    Score `predictions` against the boxes of `samples` with COCO bbox metrics.

    `predictions` holds one :class:`Detections` per sample (pixels); pycocotools' COCOeval runs
    over the single category ``hand``.

    Every prediction counts as a hand whatever its class id. Returns floats under
    ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100`` (-1 where COCO gives -1: no ground truth
    in that size range) and, for curves, ``precision``: COCOeval's raw precision array of shape
    (10 IoU thresholds, 101 recall points, 1 category, 4 area ranges, 3 maxDets), -1 where
    undefined. pycocotools prints only when `verbose`.
    """
    if len(samples) != len(predictions):
        raise ValueError(
            f'coco_metrics: {len(samples)} samples but {len(predictions)} predictions')
    images, gts, dts = [], [], []
    for image_id, (sample, det) in enumerate(zip(samples, predictions), start=1):
        images.append({'id': image_id, 'width': int(sample.width), 'height': int(sample.height),
                       'file_name': str(sample.image_path)})
        for box in _xywh(sample.boxes):
            # ids start at 1: COCOeval stores matched ids and treats 0 as "unmatched"
            gts.append({'id': len(gts) + 1, 'image_id': image_id, 'category_id': _CATEGORY_ID,
                        'bbox': box, 'area': box[2] * box[3], 'iscrowd': 0})
        for box, score in zip(_xywh(det.boxes), det.scores.tolist()):
            dts.append({'id': len(dts) + 1, 'image_id': image_id, 'category_id': _CATEGORY_ID,
                        'bbox': box, 'area': box[2] * box[3], 'iscrowd': 0, 'score': score})
    with contextlib.redirect_stdout(sys.stdout if verbose else io.StringIO()):
        # loadRes() fails on an empty result list, so the detections get a COCO object built
        # the same way as the ground truth.
        coco_eval = COCOeval(_coco_from(images, gts), _coco_from(images, dts), iouType='bbox')
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    metrics: dict = {key: float(value) for key, value in zip(METRIC_KEYS, coco_eval.stats)}
    metrics['precision'] = coco_eval.eval['precision']
    return metrics


def evaluate_detector(detector: 'Detector', samples: Sequence['Sample'], min_score: float = 0.0,
                      progress: bool = True) -> tuple[dict, list[Detections]]:
    """
    Run `detector` on every sample's image (read with OpenCV, given as RGB) and score it.

    Returns ``(metrics, predictions)``: :func:`coco_metrics` plus ``latency_ms_median`` and
    ``latency_ms_p95``, the time of ``detector.detect`` alone per image (reading the file
    excluded; one untimed warm-up call first, so one-off graph set-up does not count), and one
    :class:`Detections` per sample. Raises FileNotFoundError for an unreadable image and
    ValueError for no samples.
    """
    if not samples:
        raise ValueError('evaluate_detector: no samples')
    predictions: list[Detections] = []
    latencies_ms: list[float] = []
    for i, sample in enumerate(tqdm(samples, desc='evaluating', unit='img', disable=not progress)):
        bgr = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f'cannot read image {sample.image_path}')
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if i == 0:
            detector.detect(rgb, min_score)
        t0 = time.perf_counter()
        predictions.append(detector.detect(rgb, min_score))
        latencies_ms.append((time.perf_counter() - t0) * 1000.0)
    metrics = coco_metrics(samples, predictions)
    metrics['latency_ms_median'] = float(np.median(latencies_ms))
    metrics['latency_ms_p95'] = float(np.percentile(latencies_ms, 95))
    return metrics, predictions


def plot_pr_curve(eval_result: dict, png: str | Path) -> Path:
    """
    Precision-recall curves (area all, 100 detections per image) at IoU 0.5.

    0.75 and the mean over IoU 0.5:0.95, AP in the legend, from a :func:`coco_metrics` result,
    to `png`.

    Curves COCO leaves undefined (no ground truth) are left out. Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    precision = np.asarray(eval_result['precision'])[:, :, 0, 0, -1]   # (IoU, recall)
    i50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    i75 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75)))
    curves = [(f'IoU 0.50 (AP {eval_result["AP50"]:.3f})', precision[i50]),
              (f'IoU 0.75 (AP {eval_result["AP75"]:.3f})', precision[i75]),
              (f'mean IoU 0.50:0.95 (AP {eval_result["AP"]:.3f})', precision.mean(axis=0))]
    fig = Figure(figsize=(6.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (label, curve), style in zip(curves, ('-', '--', ':')):
        if np.all(curve >= 0):
            ax.plot(RECALL_THRESHOLDS, curve, style, label=label, linewidth=2)
    ax.set(xlabel='recall', ylabel='precision', xlim=(0.0, 1.0), ylim=(0.0, 1.02),
           title='Hand detection: precision-recall (COCO, interpolated)')
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower left')
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    return png


def match_detections(gt_boxes: np.ndarray, det: Detections, iou: float = 0.5
                     ) -> tuple[np.ndarray, np.ndarray]:
    """
    Greedy COCO-style matching of one image.

    Detections in descending score order each take the unmatched ground-truth box they overlap
    most, if that IoU is at least `iou`.

    Returns ``(det_is_tp (D,) bool, gt_is_found (G,) bool)``.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    ious = pairwise_iou(det.boxes, gt_boxes)
    det_tp = np.zeros(len(det), bool)
    gt_found = np.zeros(len(gt_boxes), bool)
    if not len(gt_boxes):
        return det_tp, gt_found
    for d in np.argsort(-det.scores, kind='stable'):
        candidates = np.where(gt_found, -1.0, ious[d])
        g = int(np.argmax(candidates))
        if candidates[g] >= iou:
            det_tp[d] = gt_found[g] = True
    return det_tp, gt_found


def handedness_report(samples: Sequence['Sample'], predictions: Sequence[Detections],
                      min_score: float, min_confidence: float, iou: float = 0.5) -> dict:
    """
    Handedness against labelled sides (EgoHands: own / other, left / right).

    Detections scoring at least `min_score` are matched to labelled hands as
    :func:`match_detections` does; a matched detection the model is at least `min_confidence`
    sure of (``max(right, 1 - right)``) is "sided", right when ``right > 0.5`` (the person's
    own right hand). Returns per side, ``own``, ``other`` and ``all``: ``{sided, correct,
    accuracy, unknown}`` (accuracy None without sided hands).
    """
    from hand_tracker_ros.vocabulary import SIDES
    counts = {k: [0, 0, 0] for k in (*SIDES, 'own', 'other', 'all')}
    for sample, det in zip(samples, predictions):
        kept = det.filter(min_score)
        if det.right is None or not len(kept) or not len(sample.boxes):
            continue
        ious = pairwise_iou(kept.boxes, sample.boxes)
        taken = np.zeros(len(sample.boxes), bool)
        for d in np.argsort(-kept.scores, kind='stable'):
            candidates = np.where(taken, -1.0, ious[d])
            g = int(np.argmax(candidates))
            if candidates[g] < iou or sample.sides[g] not in SIDES:
                continue
            taken[g] = True
            side, right = sample.sides[g], float(kept.right[d])
            keys = (side, side.split('_')[0], 'all')
            if np.isnan(right) or max(right, 1 - right) < min_confidence:
                for k in keys:
                    counts[k][2] += 1
                continue
            correct = (right > 0.5) == side.endswith('right')
            for k in keys:
                counts[k][0] += 1
                counts[k][1] += int(correct)
    return {k: {'sided': s, 'correct': c, 'accuracy': c / s if s else None, 'unknown': u}
            for k, (s, c, u) in counts.items()}


def _draw_box(img: np.ndarray, box: np.ndarray, colour: tuple[int, int, int],
              text: str = '') -> None:
    """Draw `box` on the RGB `img` in place, with `text` on a label of the same colour."""
    draw_box(img, box, colour, max(2, img.shape[1] // 400), text,
             font_scale=max(0.5, img.shape[1] / 1600), line_type=cv2.LINE_8)


def write_failure_cases(samples: Sequence['Sample'], predictions: Sequence[Detections],
                        out_dir: str | Path, n: int = 8, iou: float = 0.5,
                        min_score: float = 0.5) -> list[Path]:
    """
    Write annotated PNGs of the `n` images with the most errors, worst first.

    Errors are missed hands and false positives among detections scoring at least `min_score`,
    matched at IoU `iou`.

    Drawn: true positives green, missed ground truth red, false positives yellow (with score
    and, from the landmark chain, the hand's skeleton); a banner states the counts. Images
    without an error are never written. Returns the paths,
    named ``NN_<errors>err_<image name>.png``.
    """
    if len(samples) != len(predictions):
        raise ValueError(f'write_failure_cases: {len(samples)} samples, '
                         f'{len(predictions)} predictions')
    scored = []
    for idx, (sample, det) in enumerate(zip(samples, predictions)):
        kept = det.filter(min_score)
        det_tp, gt_found = match_detections(sample.boxes, kept, iou)
        errors = int((~gt_found).sum() + (~det_tp).sum())
        if errors:
            scored.append((errors, idx, kept, det_tp, gt_found))
    scored.sort(key=lambda s: (-s[0], s[1]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, (errors, idx, kept, det_tp, gt_found) in enumerate(scored[:n]):
        sample = samples[idx]
        img = draw_matches(sample, kept, det_tp, gt_found, min_score, iou)
        stem = f'{Path(sample.image_path).parent.name}_{Path(sample.image_path).stem}'
        path = out_dir / f'{rank:02d}_{errors}err_{stem}.png'
        if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise OSError(f'cannot write {path}')
        written.append(path)
    return written


def draw_matches(sample: 'Sample', kept: Detections, det_tp: np.ndarray, gt_found: np.ndarray,
                 min_score: float, iou: float) -> np.ndarray:
    """
    Return the RGB image of `sample` annotated with its matches (:func:`match_detections`).

    True positives green, missed ground truth red, false positives yellow (with score and the
    skeleton when there are keypoints); a banner states the counts.
    """
    bgr = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read image {sample.image_path}')
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    for box in np.asarray(sample.boxes)[~gt_found]:
        _draw_box(img, box, MISSED_COLOUR, 'missed')
    for i, (box, score, tp) in enumerate(zip(kept.boxes, kept.scores, det_tp)):
        _draw_box(img, box, TP_COLOUR if tp else FP_COLOUR, f'{score:.2f}')
        if kept.keypoints is not None:
            draw_skeleton(img, kept.keypoints[i], TP_COLOUR if tp else FP_COLOUR)
    banner = (f'{Path(sample.image_path).name}: TP {int(det_tp.sum())}  '
              f'missed {int((~gt_found).sum())}  FP {int((~det_tp).sum())}  '
              f'(score >= {min_score:g}, IoU >= {iou:g})')
    draw_label(img, banner, 0, 28, (30, 30, 30), 0.6, 1)
    return img


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return '-'
    return 'n/a' if value < 0 else f'{value:.4f}'


def format_table(metrics: dict) -> str:
    """
    Return the metrics as the original project's report table.

    AP, AP@0.5, AP@0.75, AP small / medium / large, AR@100 beside its SSD MobileNet v2 numbers,
    with the caveat that those come from a random frame split and are not comparable with a
    split by video.

    ``n/a`` = no ground truth in that size range; ``-`` = not reported by the original.
    """
    header = ('metric', 'this model', 'original SSD MobileNet v2 *')
    rows = [(name, _fmt(metrics.get(key)), _fmt(REFERENCE.get(key))) for name, key in _TABLE_ROWS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [f'| {header[0]:<{widths[0]}} | {header[1]:>{widths[1]}} | {header[2]:>{widths[2]}} |',
             f'|{"-" * (widths[0] + 2)}|{"-" * (widths[1] + 1)}:|{"-" * (widths[2] + 1)}:|']
    lines += [f'| {a:<{widths[0]}} | {b:>{widths[1]}} | {c:>{widths[2]}} |' for a, b, c in rows]
    lines += ['* COCO-pretrained, EgoHands split by random frames (near-duplicate neighbours in',
              '  train and test): not comparable with a split by video.']
    return '\n'.join(lines)
