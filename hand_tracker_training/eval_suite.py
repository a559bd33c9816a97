"""
Evaluation per data set: a suite of sets, one row each, the operating point, PR curves.

A suite file (``config/eval_suite.yaml``) lists sets. An entry either names a data set of the
split file with a part (``{name: egohands, part: test}``; ``source:`` when the row name
differs), or gives a format and a path, so a user's own set drops in without code::

    sets:
      - {name: hands_webcam_subhih, part: test}
      - {name: my_yolo, format: yolo, path: /data/my_hands, splits: [test]}
      - {name: my_coco, format: coco, path: /data/hands.json, images: /data/images}
      - {name: my_video, format: egohands, path: /data/egohands, videos: [CARDS_OFFICE_S_B]}
      - {name: far_hands, generate: far_hands, path: ../data/far_hands, count: 300}

A ``generate`` entry is a set made from test parts by a generator of :data:`GENERATORS`
(:mod:`~hand_tracker_training.datasets.far_hands`): it is written to ``path`` when absent or
made with other parameters, then read as a YOLO folder. Relative paths are relative to the
suite file; ``limit: N`` keeps N images spread evenly over the set (quick runs). The operating
threshold is ``--threshold``, else the model's own (``score_threshold`` in ``model_info.yaml``
beside the model), else the node's default 0.5.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import cv2
from hand_tracker_ros.detections import Detections
from hand_tracker_training.datasets import far_hands
from hand_tracker_training.datasets.coco import load_coco
from hand_tracker_training.datasets.egohands import load_egohands
from hand_tracker_training.datasets.parts import DATA_SPLITS, load_part, read_data_splits
from hand_tracker_training.datasets.sample import Sample
from hand_tracker_training.datasets.yolo import load_yolo
from hand_tracker_training.evaluate import (HEIGHT_BINS, IOU_THRESHOLDS, match_detections,
                                            RECALL_THRESHOLDS, write_failure_cases)
import numpy as np
import yaml

#: The node's ``score_threshold`` default (config/hand_tracker.yaml).
NODE_DEFAULT_THRESHOLD = 0.5
#: The metadata file beside a model that may hold its calibrated ``score_threshold``.
MODEL_INFO = 'model_info.yaml'
#: The name of the row of every set together.
POOLED = 'pooled'
#: Generated sets (``generate:`` in a suite entry): name -> ensure(path, count, seed,
#: data_splits, data_root) returning the YOLO folder, and that folder's split.
GENERATORS = {'far_hands': (far_hands.ensure_far_hands, far_hands.SPLIT,
                            far_hands.DEFAULT_IMAGES, far_hands.DEFAULT_SEED)}


def model_threshold(model: str | Path) -> tuple[float, str]:
    """
    Return (operating threshold, where it comes from) of a model file.

    The threshold is ``score_threshold`` of ``model_info.yaml`` beside it, else
    :data:`NODE_DEFAULT_THRESHOLD`.
    """
    info = Path(model).parent / MODEL_INFO
    if info.is_file():
        value = (yaml.safe_load(info.read_text(encoding='utf-8')) or {}).get('score_threshold')
        if value is not None:
            return float(value), str(info)
    return NODE_DEFAULT_THRESHOLD, 'the node default'


def read_suite(path: str | Path) -> list[dict]:
    """Read the entries of a suite file, paths made absolute; ValueError for a malformed one."""
    path = Path(path)
    suite = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    entries = suite.get('sets')
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{path}: no "sets" list')
    names = [e.get('name') for e in entries]
    if None in names or len(set(names)) != len(names):
        raise ValueError(f'{path}: every set needs a unique name, got {names}')
    splits_file = path.parent / suite.get('data_splits', DATA_SPLITS)
    for entry in entries:
        entry['data_splits'] = splits_file
        for key in ('path', 'images'):
            if key in entry:
                entry[key] = path.parent / entry[key]
        if 'generate' in entry:
            if entry['generate'] not in GENERATORS or 'path' not in entry:
                raise ValueError(f'{path}: set {entry["name"]}: generate must be one of '
                                 f'{", ".join(GENERATORS)}, with a path to write it to')
        elif 'part' not in entry and entry.get('format') not in ('egohands', 'yolo', 'coco'):
            raise ValueError(f'{path}: set {entry["name"]}: give a part of the split file or a '
                             f'format (egohands, yolo, coco) and a path')
    return entries


def _read_entry(entry: dict, data_root: Optional[Path], fold: Optional[str]) -> list[Sample]:
    if 'generate' in entry:
        ensure, split, count, seed = GENERATORS[entry['generate']]
        folder = ensure(entry['path'], entry.get('count', count), entry.get('seed', seed),
                        entry['data_splits'], data_root)
        return load_yolo(folder, [split], progress=False)
    if 'part' in entry:
        config = read_data_splits(entry['data_splits'], data_root, fold)
        return load_part(entry.get('source', entry['name']), entry['part'], config)
    if entry['format'] == 'egohands':
        return load_egohands(entry['path'], entry.get('videos'), progress=False)
    if entry['format'] == 'yolo':
        return load_yolo(entry['path'], entry.get('splits'), progress=False)
    return load_coco(entry['path'], entry.get('images'), entry.get('categories'))


def load_suite(entries: Sequence[dict], data_root: Optional[Path] = None,
               limit: Optional[int] = None, fold: Optional[str] = None) -> dict[str, list[Sample]]:
    """
    Load ``{set name: samples}`` of suite entries (``dataset`` = the set name).

    At most `limit` (or the entry's ``limit``) images per set, spread evenly. `fold`: the
    leave-one-video-out fold of the split file's parts (a part it empties is left out, with a
    line saying so; generated sets keep their own parts).
    """
    sets = {}
    for entry in entries:
        samples = _read_entry(entry, data_root, fold)
        if not samples and fold:
            print(f'{entry["name"]}: no {entry.get("part")} part in fold {fold}, left out')
            continue
        n = min(x for x in (limit, entry.get('limit'), len(samples)) if x is not None)
        if n < len(samples):
            samples = [samples[i] for i in np.linspace(0, len(samples) - 1, n).round().astype(int)]
        for sample in samples:
            sample.dataset = entry['name']
        sets[entry['name']] = samples
    return sets


def operating_point(samples: Sequence[Sample], predictions: Sequence[Detections],
                    threshold: float, iou: float = 0.5) -> dict:
    """
    Compute precision, recall and F1 of the detections scoring at least `threshold`.

    Detections are matched greedily at IoU `iou`
    (:func:`~hand_tracker_training.evaluate.match_detections`). ``recall_by_height``: per bin
    of :data:`~hand_tracker_training.evaluate.HEIGHT_BINS` (hand height / image height),
    ``{hands, recall}`` of the labelled hands in it (recall None without one).
    """
    tp = fp = fn = 0
    found, heights = [], []
    for sample, det in zip(samples, predictions):
        det_tp, gt_found = match_detections(sample.boxes, det.filter(threshold), iou)
        tp, fp, fn = tp + int(det_tp.sum()), fp + int((~det_tp).sum()), fn + int((~gt_found).sum())
        found.extend(gt_found.tolist())
        boxes = sample.boxes.astype(np.float64)  # float32 would put 8 px of 100 below 8 %
        heights.extend(((boxes[:, 3] - boxes[:, 1]) / sample.height).tolist())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    found_arr, heights_arr = np.asarray(found, bool), np.asarray(heights, np.float64)
    by_height = {}
    for name, low, high in HEIGHT_BINS:
        in_bin = (heights_arr >= low) & (heights_arr < high)
        n = int(in_bin.sum())
        by_height[name] = {'hands': n,
                           'recall': float(found_arr[in_bin].mean()) if n else None}
    return {'threshold': float(threshold), 'precision': precision, 'recall': recall, 'F1': f1,
            'recall_by_height': by_height}


_ROW_KEYS = (('AP', 'AP'), ('AP@0.5', 'AP50'), ('AP@0.75', 'AP75'), ('AP S', 'APs'),
             ('AP M', 'APm'), ('AP L', 'APl'), ('P', 'precision'), ('R', 'recall'), ('F1', 'F1'))


def format_suite_table(reports: dict[str, dict]) -> str:
    """One Markdown row per set, the pooled row last (``n/a``: no hand of that size)."""
    header = ['set', 'images', 'hands'] + [name for name, _ in _ROW_KEYS]
    lines = ['| ' + ' | '.join(header) + ' |', '|---|' + '---:|' * (len(header) - 1)]
    for name, r in reports.items():
        cells = [f'**{name}**' if name == POOLED else name, str(r['images']), str(r['hands'])]
        cells += ['n/a' if r[key] < 0 else f'{r[key]:.3f}' for _, key in _ROW_KEYS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_height_table(reports: dict[str, dict]) -> str:
    """
    One Markdown row per set: recall at the operating point per hand-height bin.

    Cells are ``recall (hands)``; ``n/a`` where the set has no hand of that size.
    """
    header = ['set'] + [f'R {name}' for name, _, _ in HEIGHT_BINS]
    lines = ['| ' + ' | '.join(header) + ' |', '|---|' + '---:|' * (len(header) - 1)]
    for name, r in reports.items():
        cells = [f'**{name}**' if name == POOLED else name]
        for bin_name, _, _ in HEIGHT_BINS:
            b = r['recall_by_height'][bin_name]
            cells.append('n/a (0)' if b['recall'] is None
                         else f'{b["recall"]:.3f} ({b["hands"]})')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_pr_curves(metrics: dict[str, dict], png: str | Path) -> Path:
    """One figure, a precision-recall curve at IoU 0.5 per set (AP@0.5 in the legend)."""
    from matplotlib.figure import Figure

    i50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    fig = Figure(figsize=(6.5, 4.8), dpi=100)
    ax = fig.add_subplot()
    for name, m in metrics.items():
        curve = np.asarray(m['precision'])[i50, :, 0, 0, -1]
        if np.all(curve >= 0):
            ax.plot(RECALL_THRESHOLDS, curve, '--' if name == POOLED else '-', linewidth=2,
                    label=f'{name} (AP@0.5 {m["AP50"]:.3f})')
    ax.set(xlabel='recall', ylabel='precision', xlim=(0.0, 1.0), ylim=(0.0, 1.02),
           title='Hand detection per data set: precision-recall at IoU 0.5')
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower left', fontsize='small')
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    return png


def contact_sheet(images: Sequence[Path], png: str | Path, columns: int = 3,
                  cell: tuple[int, int] = (400, 300)) -> Optional[Path]:
    """Tile `images` (fitted into `cell`, letterboxed) into one PNG; None for no image."""
    if not images:
        return None
    rows = -(-len(images) // columns)
    sheet = np.full((rows * cell[1], columns * cell[0], 3), 30, np.uint8)
    for k, path in enumerate(images):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        scale = min(cell[0] / img.shape[1], cell[1] / img.shape[0])
        img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
        y, x = (k // columns) * cell[1], (k % columns) * cell[0]
        sheet[y:y + img.shape[0], x:x + img.shape[1]] = img
    if not cv2.imwrite(str(png), sheet):
        raise OSError(f'cannot write {png}')
    return Path(png)


def write_failure_sheets(sets: dict[str, list[Sample]], predictions: dict[str, list],
                         out_dir: Path, threshold: float, n: int = 6) -> list[Path]:
    """
    Write per set ``failures_<set>.png``: a sheet of its `n` worst images at `threshold`.

    The annotated images are kept in ``failures/<set>/``.
    """
    sheets = []
    for name, samples in sets.items():
        cases = write_failure_cases(samples, predictions[name], out_dir / 'failures' / name,
                                    n=n, min_score=threshold)
        sheet = contact_sheet(cases, out_dir / f'failures_{name}.png')
        if sheet is not None:
            sheets.append(sheet)
    return sheets
