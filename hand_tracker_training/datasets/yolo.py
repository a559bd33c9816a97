"""YOLO-format data sets (Roboflow and Ultralytics layouts), every class read as a hand."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from hand_tracker_ros.vocabulary import is_image_file
from hand_tracker_training.datasets.sample import (clip_box, image_size, make_sample, Sample,
                                                   warn_dropped)
import numpy as np
from tqdm import tqdm
import yaml

_SPLIT_ALIASES = {'val': ('val', 'valid'), 'valid': ('valid', 'val')}


def _yolo_split_dirs(root: Path, split: str) -> Optional[tuple[Path, Path]]:
    """
    Return (images dir, labels dir) of a split, None when absent.

    Layouts: ``root/<split>/images`` (Roboflow) or ``root/images/<split>`` (Ultralytics);
    ``val`` and ``valid`` are one split.
    """
    for name in _SPLIT_ALIASES.get(split, (split,)):
        for images, labels in ((root / name / 'images', root / name / 'labels'),
                               (root / 'images' / name, root / 'labels' / name)):
            if images.is_dir():
                return images, labels
    return None


def _yolo_class_names(root: Path) -> Optional[list[str]]:
    """Return the class names of ``data.yaml`` (list or {id: name}), None without one."""
    path = root / 'data.yaml'
    if not path.is_file():
        return None
    names = (yaml.safe_load(path.read_text(encoding='utf-8')) or {}).get('names')
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names] if names else None


def _yolo_boxes(label: Path, size: tuple[int, int], n_classes: Optional[int],
                dropped: list[str]) -> list[list[float]]:
    """
    Return the pixel boxes of a YOLO label file.

    Lines are ``class cx cy w h`` (normalised), or ``class x1 y1 x2 y2 ...`` polygons (boxed by
    their min/max).
    """
    if not label.is_file():
        return []  # YOLO: an image without a label file has no objects
    width, height = size
    boxes = []
    for lineno, line in enumerate(label.read_text(encoding='utf-8').splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f'{label}:{lineno}'
        try:
            cls, values = int(parts[0]), [float(v) for v in parts[1:]]
        except ValueError:
            raise ValueError(f'{where}: expected "class cx cy w h" numbers, '
                             f'got {line!r}') from None
        if n_classes is not None and not 0 <= cls < n_classes:
            raise ValueError(f'{where}: class {cls} not in data.yaml (0..{n_classes - 1})')
        if len(values) == 4:
            cx, cy, w, h = values
            corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        elif len(values) >= 6 and len(values) % 2 == 0:
            xy = np.asarray(values).reshape(-1, 2)
            corners = (*xy.min(axis=0), *xy.max(axis=0))
        else:
            raise ValueError(f'{where}: expected "class cx cy w h" or a polygon '
                             f'"class x1 y1 x2 y2 x3 y3 ...", got {len(parts)} values')
        box = clip_box(corners[0] * width, corners[1] * height, corners[2] * width,
                       corners[3] * height, width, height)
        if box is None:
            dropped.append(where)
        else:
            boxes.append(box)
    return boxes


def load_yolo(root: str | Path, splits: Optional[Sequence[str]] = ('train',),
              progress: bool = True) -> list[Sample]:
    """
    Load the images of YOLO-format splits under `root`, every class mapped to ``hand``.

    Layouts: ``root/<split>/{images,labels}/`` (Roboflow export) or
    ``root/{images,labels}/<split>/``; ``val`` and ``valid`` are the same split; `splits`
    None = every one of train, valid, test that exists. Labels are ``class cx cy w h``
    normalised to the image (polygon lines are boxed); image sizes are read from the images;
    class ids are checked against ``data.yaml``'s names when there is one. ``source`` is
    ``<root name>/<split>``. Boxes are clipped to the image; boxes without area are dropped
    with a :class:`DatasetWarning`. Raises FileNotFoundError for a missing root or split and
    ValueError for a malformed label line (naming file and line) or no splits.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'YOLO data set {root} not found')
    if splits is None:
        splits = [s for s in ('train', 'valid', 'test') if _yolo_split_dirs(root, s)]
    if not splits:
        raise ValueError(f'load_yolo: no splits to read under {root}')
    names = _yolo_class_names(root)
    samples, dropped = [], []
    for split in splits:
        dirs = _yolo_split_dirs(root, split)
        if dirs is None:
            raise FileNotFoundError(f'YOLO split {split!r} not found under {root}: expected '
                                    f'{root}/{split}/images/ or {root}/images/{split}/')
        images_dir, labels_dir = dirs
        images = sorted(p for p in images_dir.iterdir() if is_image_file(p.name))
        for image in tqdm(images, desc=f'YOLO {split}', unit='img', disable=not progress,
                          leave=False):
            size = image_size(image)
            boxes = _yolo_boxes(labels_dir / f'{image.stem}.txt', size,
                                len(names) if names else None, dropped)
            samples.append(make_sample(image, boxes, [''] * len(boxes), f'{root.name}/{split}',
                                       size, root.name))
    warn_dropped('load_yolo: boxes without area in the image', dropped)
    return samples
