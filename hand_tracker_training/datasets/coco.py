"""COCO detection JSON: read any categories as hands, write samples as one category ``hand``."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
import json
from pathlib import Path
from typing import Optional

from hand_tracker_ros.vocabulary import HAND, SIDES
from hand_tracker_training.datasets.sample import (clip_box, image_size, make_sample, Sample,
                                                   warn_dropped)


def load_coco(json_path: str | Path, image_dir: Optional[str | Path] = None,
              category_names: Optional[Iterable[str]] = None) -> list[Sample]:
    """
    Load the images of a COCO detection JSON (``bbox`` = [x, y, width, height] pixels) as hands.

    `image_dir`: where ``file_name`` is relative to (default: the JSON's folder).
    `category_names`: the categories that are hands (default: all). Crowd annotations
    (``iscrowd`` 1) are skipped; an annotation ``attributes.side`` (as :func:`write_coco`
    writes) gives the side. Sizes come from the JSON, else from the image. ``source`` is the
    JSON's file name without suffix. Boxes are clipped to the image; boxes without area are
    dropped with a :class:`DatasetWarning`. Raises FileNotFoundError / ValueError for a
    missing or malformed file or an unknown category name.
    """
    json_path = Path(json_path)
    image_dir = Path(image_dir) if image_dir is not None else json_path.parent
    try:
        data = json.loads(json_path.read_text(encoding='utf-8'))
        categories = {c['id']: c['name'] for c in data.get('categories', [])}
        images, annotations = data['images'], data.get('annotations', [])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f'{json_path}: not a COCO detection JSON ({exc!r})') from None
    if category_names is None:
        wanted = set(categories)
    else:
        category_names = list(category_names)
        unknown = [n for n in category_names if n not in categories.values()]
        if unknown:
            raise ValueError(f'{json_path}: no category {", ".join(unknown)} '
                             f'(have: {", ".join(sorted(categories.values()))})')
        wanted = {cid for cid, name in categories.items() if name in category_names}
    by_image: dict = {}
    for ann in annotations:
        if ann.get('category_id') in wanted and not ann.get('iscrowd', 0):
            by_image.setdefault(ann['image_id'], []).append(ann)
    samples, dropped = [], []
    for image in images:
        path = image_dir / image['file_name']
        size = ((int(image['width']), int(image['height'])) if image.get('width')
                and image.get('height') else image_size(path))
        boxes, sides = [], []
        for ann in by_image.get(image['id'], []):
            try:
                x, y, w, h = (float(v) for v in ann['bbox'])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f'{json_path}: annotation {ann.get("id")}: bbox must be '
                                 f'[x, y, width, height], got {ann.get("bbox")!r}') from None
            box = clip_box(x, y, x + w, y + h, *size)
            if box is None:
                dropped.append(f'annotation {ann.get("id")}')
                continue
            boxes.append(box)
            side = (ann.get('attributes') or {}).get('side', '')
            sides.append(side if side in SIDES else '')
        samples.append(make_sample(path, boxes, sides, json_path.stem, size, json_path.stem))
    warn_dropped(f'load_coco {json_path.name}: boxes without area in the image', dropped)
    return samples


def write_coco(samples: Sequence[Sample], json_path: str | Path,
               image_dir: Optional[str | Path] = None) -> Path:
    """
    Write `samples` as a COCO detection JSON with one category, ``hand`` (id 1).

    Sides are annotation ``attributes.side``. ``file_name`` is relative to `image_dir` when the
    image is inside it, else absolute. Returns the path.
    """
    json_path = Path(json_path)
    base = Path(image_dir).resolve() if image_dir is not None else None
    images, annotations = [], []
    for image_id, sample in enumerate(samples, start=1):
        path = Path(sample.image_path).resolve()
        name = str(path.relative_to(base)) if base and path.is_relative_to(base) else str(path)
        images.append({'id': image_id, 'file_name': name, 'width': sample.width,
                       'height': sample.height})
        for box, side in zip(sample.boxes.tolist(), sample.sides):
            w, h = box[2] - box[0], box[3] - box[1]
            ann = {'id': len(annotations) + 1, 'image_id': image_id, 'category_id': 1,
                   'bbox': [box[0], box[1], w, h], 'area': w * h, 'iscrowd': 0}
            if side:
                ann['attributes'] = {'side': side}
            annotations.append(ann)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        'images': images, 'annotations': annotations,
        'categories': [{'id': 1, 'name': HAND, 'supercategory': HAND}]}), encoding='utf-8')
    return json_path
