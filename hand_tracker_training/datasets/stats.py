"""Statistics of a set of samples (counts, box sizes, sides), their plot and preview images."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import math
from pathlib import Path
import re

import cv2
from hand_tracker_ros.vocabulary import HAND
from hand_tracker_training.datasets.sample import Sample
from matplotlib.figure import Figure
import numpy as np

#: Edges (pixels) of the box size histogram, size = sqrt(box area); the last bin is open.
BOX_SIZE_EDGES = (0, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
#: COCO's size ranges: small area < 32^2, medium < 96^2, large the rest.
COCO_SMALL, COCO_MEDIUM = 32 ** 2, 96 ** 2


def _box_areas(samples: Sequence[Sample]) -> np.ndarray:
    boxes = np.concatenate([s.boxes for s in samples] or [np.zeros((0, 4), np.float32)])
    return ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float64)


def dataset_stats(samples: Sequence[Sample]) -> dict:
    """
    Count a set of samples (JSON-ready).

    Keys::

        images, boxes, images_without_boxes,
        boxes_per_image: [images with 0 boxes, with 1, ...],
        box_size: [{'from': px, 'to': px or None, 'count': n}, ...]  (sqrt(area), BOX_SIZE_EDGES)
        coco_sizes: {'small', 'medium', 'large'}  (area < 32^2, < 96^2, >= 96^2)
        sides: {side or 'unknown': boxes}, sources: {source: images},
        image_sizes: {'WxH': images}
    """
    per_image = [len(s.boxes) for s in samples]
    areas = _box_areas(samples)
    sizes = np.sqrt(areas)
    edges = list(BOX_SIZE_EDGES) + [math.inf]
    box_size = [{'from': lo, 'to': None if math.isinf(hi) else hi,
                 'count': int(((sizes >= lo) & (sizes < hi)).sum())}
                for lo, hi in zip(edges[:-1], edges[1:])]
    return {
        'images': len(samples),
        'boxes': int(sum(per_image)),
        'images_without_boxes': per_image.count(0),
        'boxes_per_image': np.bincount(per_image, minlength=1).tolist() if per_image else [],
        'box_size': box_size,
        'coco_sizes': {'small': int((areas < COCO_SMALL).sum()),
                       'medium': int(((areas >= COCO_SMALL) & (areas < COCO_MEDIUM)).sum()),
                       'large': int((areas >= COCO_MEDIUM).sum())},
        'sides': dict(Counter(side or 'unknown' for s in samples for side in s.sides)),
        'sources': dict(Counter(s.source for s in samples)),
        'image_sizes': dict(Counter(f'{s.width}x{s.height}' for s in samples)),
    }


def plot_stats(samples: Sequence[Sample], png: str | Path, title: str = '') -> Path:
    """
    Plot a PNG of three panels: boxes per image, box sizes and box centres.

    Box sizes have COCO small/medium/large marked; centres are in normalised image coordinates.
    Returns the path.
    """
    stats = dataset_stats(samples)
    fig = Figure(figsize=(15, 4.5), layout='constrained')
    ax_count, ax_size, ax_centre = fig.subplots(1, 3)
    counts = stats['boxes_per_image']
    ax_count.bar(range(len(counts)), counts, color='tab:blue')
    ax_count.set(xlabel='hands in the image', ylabel='images',
                 title=f'{stats["images"]} images, {stats["boxes"]} hands')
    ax_count.set_xticks(range(len(counts)))
    bins = stats['box_size']
    labels = [f'{b["from"]}-{b["to"]}' if b['to'] else f'{b["from"]}+' for b in bins]
    colours = ['tab:red' if b['from'] < 32 else 'tab:orange' if b['from'] < 96 else 'tab:green'
               for b in bins]
    ax_size.bar(range(len(bins)), [b['count'] for b in bins], color=colours)
    ax_size.set_xticks(range(len(bins)), labels, rotation=45, ha='right')
    coco = stats['coco_sizes']
    ax_size.set(xlabel='box size sqrt(area) [px]', ylabel='hands',
                title=f'COCO small {coco["small"]} (red), medium {coco["medium"]} (orange), '
                      f'large {coco["large"]} (green)')
    if samples and stats['boxes']:
        centres = np.concatenate([np.column_stack([(s.boxes[:, 0] + s.boxes[:, 2]) / 2 / s.width,
                                                   (s.boxes[:, 1] + s.boxes[:, 3]) / 2 / s.height])
                                  for s in samples])
        ax_centre.scatter(centres[:, 0], centres[:, 1], s=4, alpha=0.4)
    ax_centre.set(xlim=(0, 1), ylim=(1, 0), aspect='equal', xlabel='x / width',
                  ylabel='y / height', title='box centres')
    if title:
        fig.suptitle(title)
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    return png


#: RGB colour of each side in previews ('' = unknown side).
SIDE_COLOURS = {'own_left': (255, 64, 64), 'own_right': (255, 200, 0),
                'other_left': (64, 128, 255), 'other_right': (0, 220, 220), '': (40, 220, 40)}
PREVIEW_MAX_SIDE = 960


def write_previews(samples: Sequence[Sample], out_dir: str | Path, n: int = 6) -> list[Path]:
    """
    Write PNGs of `n` samples spread evenly over the list.

    They are downscaled to at most :data:`PREVIEW_MAX_SIDE` pixels, with their boxes
    (:data:`SIDE_COLOURS`, 2 px) and side labels (``hand`` when unknown). Returns the paths
    written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not samples or n <= 0:
        return []
    picks = sorted(set(np.linspace(0, len(samples) - 1, min(n, len(samples))).round().astype(int)))
    paths = []
    for k, index in enumerate(picks):
        sample = samples[index]
        bgr = cv2.imread(sample.image_path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f'cannot read image {sample.image_path}')
        scale = min(1.0, PREVIEW_MAX_SIDE / max(bgr.shape[:2]))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        for box, side in zip(sample.boxes * scale, sample.sides):
            colour = SIDE_COLOURS.get(side, SIDE_COLOURS[''])[::-1]  # RGB -> BGR
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            cv2.rectangle(bgr, (x0, y0), (x1, y1), colour, 2)
            cv2.putText(bgr, side or HAND, (x0 + 3, max(y0 - 5, 12)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, colour, 1, cv2.LINE_AA)
        banner = f'{sample.source}/{Path(sample.image_path).name}: {len(sample.boxes)} hands'
        cv2.putText(bgr, banner, (6, bgr.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
        stem = re.sub(r'[^A-Za-z0-9_.-]+', '_', f'{sample.source}_{Path(sample.image_path).stem}')
        path = out_dir / f'preview_{k:02d}_{stem}.png'
        if not cv2.imwrite(str(path), bgr):
            raise OSError(f'cannot write {path}')
        paths.append(path)
    return paths
