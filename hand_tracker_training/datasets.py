"""Hand detection data: EgoHands, YOLO and COCO readers, splits by video, statistics, previews,
the EgoHands download and the ``hand-tracker-dataset`` command (OD API TFRecords).

Every reader returns :class:`Sample` objects: one image, its size and its hands as
``float32 (N, 4)`` **[x_min, y_min, x_max, y_max] pixel** boxes of the single class ``hand``,
with the EgoHands side of each hand (``own_left``, ``own_right``, ``other_left``,
``other_right``; ``''`` when a data set does not say).

EgoHands (Bambach et al., ICCV 2015) is read in its original layout,
``<root>/_LABELLED_SAMPLES/<VIDEO>/frame_NNNN.jpg`` + ``polygons.mat``. A hand's box is the
min/max of its segmentation polygon clipped to the image; hands cut by the image border are
kept (they are real hands entering the view). Polygons with fewer than 3 points or without area
inside the image are dropped with a :class:`DatasetWarning` that counts them.

Splits are **by video, never by frame**: the 100 labelled frames of a video are about a second
apart and near-duplicates, so a random frame split inflates every metric. The two videos of
one interaction (``X_Y`` filmed by X and ``Y_X`` filmed by Y at the same time) show the same
scene, so :data:`DEFAULT_SPLIT` keeps them together.

Command line (``hand-tracker-dataset``)::

    hand-tracker-dataset download --dest ../egohands_full
    hand-tracker-dataset convert --egohands ../egohands_full --split default --out records/
    hand-tracker-dataset convert --egohands ../shared/data/egohands --split shipped \\
        --yolo ../shared/data/hand_gestures_roboflow --splits train --out records/
    hand-tracker-dataset convert --egohands ../shared/data/egohands \\
        --videos CARDS_OFFICE_S_B --out records/
    hand-tracker-dataset stats --yolo ../shared/data/hand_gestures_roboflow --splits train,valid

``convert`` writes ``<set>.record`` (or ``<set>.record-0000k-of-0000n`` with ``--shards n``)
per set (``train``, ``val``, ``test``; ``all`` with ``--split none`` or ``--videos``),
``label_map.pbtxt``, ``stats.json``, ``stats_<set>.png`` and ``previews/<set>/*.png``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import urllib.request
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import scipy.io
import yaml
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

#: The one class of every box.
HAND = 'hand'
#: EgoHands hand sides, in the field order of ``polygons.mat``.
SIDES = ('own_left', 'own_right', 'other_left', 'other_right')
#: ``polygons.mat`` field names (camera wearer = "my", partner = "your") -> side.
_POLYGON_FIELDS = {'myleft': 'own_left', 'myright': 'own_right',
                   'yourleft': 'other_left', 'yourright': 'other_right'}

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')

# ----------------------------------------------------------------------------- EgoHands videos
#: The activities and locations of EgoHands; its four people are B, H, S and T.
EGOHANDS_ACTIVITIES = ('CARDS', 'CHESS', 'JENGA', 'PUZZLE')
EGOHANDS_LOCATIONS = ('COURTYARD', 'OFFICE', 'LIVINGROOM')

#: The 48 videos of EgoHands, ``ACTIVITY_LOCATION_VIEWER_PARTNER`` (the dataset's README.txt
#: gives this scheme; the names are the folders of its ``_LABELLED_SAMPLES``). Each activity
#: was played at each location by two pairs of people, each filmed from both sides, so every
#: ``A_L_X_Y`` has a partner video ``A_L_Y_X`` of the same moments.
EGOHANDS_VIDEOS: tuple[str, ...] = (
    'CARDS_COURTYARD_B_T', 'CARDS_COURTYARD_H_S', 'CARDS_COURTYARD_S_H', 'CARDS_COURTYARD_T_B',
    'CARDS_LIVINGROOM_B_T', 'CARDS_LIVINGROOM_H_S', 'CARDS_LIVINGROOM_S_H',
    'CARDS_LIVINGROOM_T_B',
    'CARDS_OFFICE_B_S', 'CARDS_OFFICE_H_T', 'CARDS_OFFICE_S_B', 'CARDS_OFFICE_T_H',
    'CHESS_COURTYARD_B_T', 'CHESS_COURTYARD_H_S', 'CHESS_COURTYARD_S_H', 'CHESS_COURTYARD_T_B',
    'CHESS_LIVINGROOM_B_S', 'CHESS_LIVINGROOM_H_T', 'CHESS_LIVINGROOM_S_B',
    'CHESS_LIVINGROOM_T_H',
    'CHESS_OFFICE_B_S', 'CHESS_OFFICE_H_T', 'CHESS_OFFICE_S_B', 'CHESS_OFFICE_T_H',
    'JENGA_COURTYARD_B_H', 'JENGA_COURTYARD_H_B', 'JENGA_COURTYARD_S_T', 'JENGA_COURTYARD_T_S',
    'JENGA_LIVINGROOM_B_H', 'JENGA_LIVINGROOM_H_B', 'JENGA_LIVINGROOM_S_T',
    'JENGA_LIVINGROOM_T_S',
    'JENGA_OFFICE_B_S', 'JENGA_OFFICE_H_T', 'JENGA_OFFICE_S_B', 'JENGA_OFFICE_T_H',
    'PUZZLE_COURTYARD_B_S', 'PUZZLE_COURTYARD_H_T', 'PUZZLE_COURTYARD_S_B',
    'PUZZLE_COURTYARD_T_H',
    'PUZZLE_LIVINGROOM_B_T', 'PUZZLE_LIVINGROOM_H_S', 'PUZZLE_LIVINGROOM_S_H',
    'PUZZLE_LIVINGROOM_T_B',
    'PUZZLE_OFFICE_B_H', 'PUZZLE_OFFICE_H_B', 'PUZZLE_OFFICE_S_T', 'PUZZLE_OFFICE_T_S',
)


def partner_video(video: str) -> str:
    """The other camera of the same interaction: ``CARDS_OFFICE_S_B`` -> ``CARDS_OFFICE_B_S``."""
    parts = video.split('_')
    if len(parts) != 4:
        raise ValueError(f'{video!r} is not an EgoHands video name '
                         f'ACTIVITY_LOCATION_VIEWER_PARTNER')
    return '_'.join(parts[:2] + [parts[3], parts[2]])


@dataclass(frozen=True)
class VideoSplit:
    """EgoHands videos of the training, validation and test sets."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        """``{'train': ..., 'val': ..., 'test': ...}`` (keyword arguments of split_by_videos)."""
        return {'train': self.train, 'val': self.val, 'test': self.test}

    def videos(self) -> list[str]:
        """Every video of the split once, in train, val, test order."""
        return list(dict.fromkeys(self.train + self.val + self.test))


def _interaction(activity: str, location: str, pair: str) -> tuple[str, str]:
    video = f'{activity}_{location}_{pair}'
    return video, partner_video(video)


_DEFAULT_TEST = (_interaction('CARDS', 'OFFICE', 'B_S') + _interaction('CHESS', 'COURTYARD', 'H_S')
                 + _interaction('JENGA', 'LIVINGROOM', 'S_T')
                 + _interaction('PUZZLE', 'OFFICE', 'B_H'))
_DEFAULT_VAL = (_interaction('CHESS', 'LIVINGROOM', 'B_S')
                + _interaction('JENGA', 'COURTYARD', 'B_H'))

#: Fixed 36 / 4 / 8 video split of the full EgoHands, by interaction (both cameras of an
#: interaction in the same set). Test: one interaction per activity, CARDS and PUZZLE at the
#: OFFICE, CHESS in the COURTYARD, JENGA in the LIVINGROOM; validation: CHESS in the LIVINGROOM,
#: JENGA in the COURTYARD. So two interactions of every location are held out and training keeps
#: six per location (12 videos each) and four or five per activity. With four people in all,
#: people are shared between sets: this measures new scenes and moments, not new people.
#: It contains :data:`SHIPPED_SPLIT` (its training videos train here, its test video tests here).
DEFAULT_SPLIT = VideoSplit(
    train=tuple(v for v in EGOHANDS_VIDEOS if v not in _DEFAULT_TEST + _DEFAULT_VAL),
    val=_DEFAULT_VAL,
    test=_DEFAULT_TEST,
)

#: The split of the shipped model: the three EgoHands videos of ../shared/data. It trained on
#: two videos (plus the Roboflow hand-gesture ``train/`` images, ``--yolo DIR --splits train``)
#: and selected and was tested on the third, so its test number is slightly optimistic.
SHIPPED_SPLIT = VideoSplit(
    train=('CARDS_LIVINGROOM_B_T', 'PUZZLE_LIVINGROOM_T_B'),
    val=('CARDS_OFFICE_S_B',),
    test=('CARDS_OFFICE_S_B',),
)

# ----------------------------------------------------------------------------- download
EGOHANDS_URL = 'http://vision.soic.indiana.edu/egohands_files/egohands_data.zip'
#: The Internet Archive's copy of the same file, tried when the official server fails.
EGOHANDS_ARCHIVE_URL = 'http://web.archive.org/web/20200713164330id_/' + EGOHANDS_URL


class DatasetWarning(UserWarning):
    """Annotations that were skipped (degenerate boxes or polygons); the message counts them."""


class DownloadError(OSError):
    """The data set could not be downloaded or its archive is not the expected one."""


@dataclass(eq=False)
class Sample:
    """One image and its hands.

    ``boxes``: ``float32 (N, 4)`` [x_min, y_min, x_max, y_max] in pixels of the image;
    ``sides``: one per box, an entry of :data:`SIDES` or ``''`` (default: ``''`` for every box);
    ``source``: the EgoHands video, or ``<data set>/<split>`` for YOLO, the JSON name for COCO.
    Every box is of the class ``hand``. Compared by identity (``boxes`` is an array).
    """

    image_path: str
    width: int
    height: int
    boxes: np.ndarray
    sides: Optional[list[str]] = None
    source: str = ''

    def __post_init__(self) -> None:
        self.image_path = str(self.image_path)
        self.width, self.height = int(self.width), int(self.height)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        if self.sides is None:
            self.sides = [''] * len(self.boxes)
        self.sides = list(self.sides)
        if len(self.sides) != len(self.boxes):
            raise ValueError(f'{self.image_path}: {len(self.boxes)} boxes but '
                             f'{len(self.sides)} sides')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'{self.image_path}: bad image size {self.width}x{self.height}')


# ----------------------------------------------------------------------------- helpers
def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header (the pixels are not decoded).

    Raises FileNotFoundError for a missing file, ValueError for an unreadable one or one whose
    EXIF orientation asks viewers to rotate or flip it (OpenCV would, TensorFlow would not, so
    its labels cannot match both: save it upright without the EXIF orientation).
    """
    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
            size = im.size
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f'{path}: not a readable image ({exc})') from None
    if orientation not in (0, 1):
        raise ValueError(f'{path}: EXIF orientation {orientation} rotates or flips the image; '
                         f'save it upright without EXIF orientation')
    return size


def _clip_box(x0: float, y0: float, x1: float, y1: float, width: int,
              height: int) -> Optional[list[float]]:
    """The box clipped to the image, or None when nothing of it with area is left."""
    box = [min(max(x0, 0.0), width), min(max(y0, 0.0), height),
           min(max(x1, 0.0), width), min(max(y1, 0.0), height)]
    if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def _warn_dropped(what: str, dropped: list[str]) -> None:
    if dropped:
        shown = ', '.join(dropped[:8]) + (', ...' if len(dropped) > 8 else '')
        warnings.warn(f'{what}: dropped {len(dropped)} {shown}', DatasetWarning, stacklevel=3)


def _make_sample(path: Path, boxes: list[list[float]], sides: list[str], source: str,
                 size: tuple[int, int]) -> Sample:
    return Sample(str(path), size[0], size[1], np.asarray(boxes, np.float32).reshape(-1, 4),
                  sides, source)


# ----------------------------------------------------------------------------- EgoHands
def egohands_samples_dir(root: str | Path) -> Path:
    """The ``_LABELLED_SAMPLES`` folder of an EgoHands root (``root`` itself when it holds the
    video folders). Raises FileNotFoundError when there is no video with a ``polygons.mat``."""
    root = Path(root)
    for folder in (root / '_LABELLED_SAMPLES', root):
        if folder.is_dir() and any((v / 'polygons.mat').is_file() for v in folder.iterdir()):
            return folder
    raise FileNotFoundError(f'no EgoHands videos under {root}: expected '
                            f'{root}/_LABELLED_SAMPLES/<VIDEO>/polygons.mat and frame_*.jpg '
                            f'(hand-tracker-dataset download fetches the data set)')


def _polygon_sides(entry: np.void, mat: Path) -> list[tuple[str, np.ndarray]]:
    """(side, polygon array) of the four hands of one ``polygons.mat`` entry."""
    names = entry.dtype.names or ()
    if set(names) == set(_POLYGON_FIELDS):
        return [(_POLYGON_FIELDS[n], entry[n]) for n in _POLYGON_FIELDS]
    if len(names) == 4:  # other field names: the documented order
        return [(side, entry[n]) for side, n in zip(SIDES, names)]
    raise ValueError(f'{mat}: expected 4 hand fields (own left, own right, other left, other '
                     f'right) per frame, got {names}')


def _load_video(video_dir: Path, dropped: list[str]) -> list[Sample]:
    """The labelled frames of one EgoHands video; degenerate hands are appended to `dropped`."""
    mat = video_dir / 'polygons.mat'
    frames = sorted(p for p in video_dir.iterdir() if p.suffix.lower() in ('.jpg', '.jpeg'))
    try:
        polygons = scipy.io.loadmat(str(mat))['polygons'].ravel()
    except (KeyError, ValueError, TypeError, IndexError, scipy.io.matlab.MatReadError) as exc:
        raise ValueError(f'{mat}: not an EgoHands polygons.mat ({exc!r})') from None
    if len(polygons) != len(frames):
        raise ValueError(f'{mat}: {len(polygons)} polygon entries but {len(frames)} frames in '
                         f'{video_dir}')
    samples = []
    for frame, entry in zip(frames, polygons):
        size = image_size(frame)
        boxes, sides = [], []
        for side, polygon in _polygon_sides(entry, mat):
            points = np.asarray(polygon, dtype=np.float64)
            if points.size == 0:
                continue  # that hand is not in view
            if points.ndim != 2 or points.shape[1] != 2:
                raise ValueError(f'{mat}: {frame.name} {side}: polygon of shape {points.shape}, '
                                 f'expected N x 2 (x, y) points')
            points = points[np.isfinite(points).all(axis=1)]
            box = None
            if len(points) >= 3:
                box = _clip_box(*points.min(axis=0), *points.max(axis=0), *size)
            if box is None:
                dropped.append(f'{video_dir.name}/{frame.name}:{side}')
                continue
            boxes.append(box)
            sides.append(side)
        samples.append(_make_sample(frame, boxes, sides, video_dir.name, size))
    return samples


def load_egohands(root: str | Path, videos: Optional[Iterable[str]] = None,
                  progress: bool = True) -> list[Sample]:
    """The labelled frames of EgoHands videos under `root` (original layout), video by video,
    frames in file name order (the order of ``polygons.mat``).

    `videos`: names of the video folders (default: every folder with a ``polygons.mat``, sorted).
    Frames without hands give samples without boxes. Polygons with fewer than 3 points or
    without area inside the image are dropped with one :class:`DatasetWarning` counting them.
    Raises FileNotFoundError for a missing root or video (naming the ones found) and
    ValueError for a malformed ``polygons.mat`` or one whose entries do not match the frames.
    """
    folder = egohands_samples_dir(root)
    available = sorted(v.name for v in folder.iterdir() if (v / 'polygons.mat').is_file())
    chosen = available if videos is None else list(dict.fromkeys(videos))
    missing = [v for v in chosen if v not in available]
    if missing:
        raise FileNotFoundError(f'EgoHands video(s) {", ".join(missing)} not in {folder} '
                                f'(found: {", ".join(available)})')
    dropped: list[str] = []
    samples: list[Sample] = []
    for video in tqdm(chosen, desc='EgoHands videos', unit='video', disable=not progress,
                      leave=False):
        samples += _load_video(folder / video, dropped)
    _warn_dropped('load_egohands: degenerate hand polygons (< 3 points or no area in the image)',
                  dropped)
    return samples


def split_by_videos(samples: Sequence[Sample], train: Iterable[str] = (),
                    val: Iterable[str] = (), test: Iterable[str] = ()) -> dict[str, list[Sample]]:
    """``{'train': [...], 'val': [...], 'test': [...]}``: `samples` by their video (``source``).

    Samples of videos in no list are left out. A video may be in both ``val`` and ``test``
    (:data:`SHIPPED_SPLIT`) but never in ``train`` and another set; a training video whose
    partner video (:func:`partner_video`, the same scene) is held out gives a
    :class:`DatasetWarning`. Raises ValueError for such an overlap or for a listed video without
    samples.
    """
    sets = {'train': list(dict.fromkeys(train)), 'val': list(dict.fromkeys(val)),
            'test': list(dict.fromkeys(test))}
    held_out = set(sets['val']) | set(sets['test'])
    leaked = [v for v in sets['train'] if v in held_out]
    if leaked:
        raise ValueError(f'video(s) {", ".join(leaked)} both in train and in val/test: frames of '
                         f'one video are near-duplicates, split by video')
    partners = [f'{v} (partner of {partner_video(v)})' for v in sets['train']
                if v.count('_') == 3 and partner_video(v) in held_out]
    if partners:
        warnings.warn(f'split_by_videos: training video(s) {", ".join(partners)} film the same '
                      f'moments as a held-out video', DatasetWarning, stacklevel=2)
    present = {s.source for s in samples}
    missing = [v for names in sets.values() for v in names if v not in present]
    if missing:
        raise ValueError(f'split_by_videos: no samples of video(s) {", ".join(missing)} '
                         f'(have: {", ".join(sorted(present))})')
    return {name: [s for s in samples if s.source in videos] for name, videos in sets.items()}


# ----------------------------------------------------------------------------- YOLO
_SPLIT_ALIASES = {'val': ('val', 'valid'), 'valid': ('valid', 'val')}


def _yolo_split_dirs(root: Path, split: str) -> Optional[tuple[Path, Path]]:
    """(images dir, labels dir) of a split, None when absent: ``root/<split>/images``
    (Roboflow) or ``root/images/<split>`` (Ultralytics); ``val`` and ``valid`` are one split."""
    for name in _SPLIT_ALIASES.get(split, (split,)):
        for images, labels in ((root / name / 'images', root / name / 'labels'),
                               (root / 'images' / name, root / 'labels' / name)):
            if images.is_dir():
                return images, labels
    return None


def _yolo_class_names(root: Path) -> Optional[list[str]]:
    """The class names of ``data.yaml`` (list or {id: name}), None without one."""
    path = root / 'data.yaml'
    if not path.is_file():
        return None
    names = (yaml.safe_load(path.read_text(encoding='utf-8')) or {}).get('names')
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names] if names else None


def _yolo_boxes(label: Path, size: tuple[int, int], n_classes: Optional[int],
                dropped: list[str]) -> list[list[float]]:
    """Pixel boxes of a YOLO label file: ``class cx cy w h`` lines (normalised), or
    ``class x1 y1 x2 y2 ...`` polygon lines (boxed by their min/max)."""
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
            raise ValueError(f'{where}: expected "class cx cy w h" numbers, got {line!r}') from None
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
        box = _clip_box(corners[0] * width, corners[1] * height, corners[2] * width,
                        corners[3] * height, width, height)
        if box is None:
            dropped.append(where)
        else:
            boxes.append(box)
    return boxes


def load_yolo(root: str | Path, splits: Optional[Sequence[str]] = ('train',),
              progress: bool = True) -> list[Sample]:
    """The images of YOLO-format splits under `root`, every class mapped to ``hand``.

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
        images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for image in tqdm(images, desc=f'YOLO {split}', unit='img', disable=not progress,
                          leave=False):
            size = image_size(image)
            boxes = _yolo_boxes(labels_dir / f'{image.stem}.txt', size,
                                len(names) if names else None, dropped)
            samples.append(_make_sample(image, boxes, [''] * len(boxes), f'{root.name}/{split}',
                                        size))
    _warn_dropped('load_yolo: boxes without area in the image', dropped)
    return samples


# ----------------------------------------------------------------------------- COCO
def load_coco(json_path: str | Path, image_dir: Optional[str | Path] = None,
              category_names: Optional[Iterable[str]] = None) -> list[Sample]:
    """The images of a COCO detection JSON (``bbox`` = [x, y, width, height] pixels) as hands.

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
            box = _clip_box(x, y, x + w, y + h, *size)
            if box is None:
                dropped.append(f'annotation {ann.get("id")}')
                continue
            boxes.append(box)
            side = (ann.get('attributes') or {}).get('side', '')
            sides.append(side if side in SIDES else '')
        samples.append(_make_sample(path, boxes, sides, json_path.stem, size))
    _warn_dropped(f'load_coco {json_path.name}: boxes without area in the image', dropped)
    return samples


def write_coco(samples: Sequence[Sample], json_path: str | Path,
               image_dir: Optional[str | Path] = None) -> Path:
    """Write `samples` as a COCO detection JSON with one category, ``hand`` (id 1); sides as
    annotation ``attributes.side``. ``file_name`` is relative to `image_dir` when the image is
    inside it, else absolute. Returns the path."""
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


# ----------------------------------------------------------------------------- statistics
#: Edges (pixels) of the box size histogram, size = sqrt(box area); the last bin is open.
BOX_SIZE_EDGES = (0, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
#: COCO's size ranges: small area < 32^2, medium < 96^2, large the rest.
COCO_SMALL, COCO_MEDIUM = 32 ** 2, 96 ** 2


def _box_areas(samples: Sequence[Sample]) -> np.ndarray:
    boxes = np.concatenate([s.boxes for s in samples] or [np.zeros((0, 4), np.float32)])
    return ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float64)


def dataset_stats(samples: Sequence[Sample]) -> dict:
    """Counts of a set of samples (JSON-ready)::

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
    """A PNG of three panels: boxes per image, box sizes (COCO small/medium/large marked) and
    box centres in normalised image coordinates. Returns the path."""
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
    """PNGs of `n` samples spread evenly over the list, downscaled to at most
    :data:`PREVIEW_MAX_SIDE` pixels, with their boxes (:data:`SIDE_COLOURS`, 2 px) and side
    labels (``hand`` when unknown). Returns the paths written."""
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


# ----------------------------------------------------------------------------- download
def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Download `url` into `part`, resuming a partial file with an HTTP range request."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={'Range': f'bytes={have}-'} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.headers.get_content_type() == 'text/html':
            raise DownloadError(f'the server answered with a web page, not the archive '
                                f'(moved? final address {response.geturl()})')
        resumed = have > 0 and getattr(response, 'status', None) == 206
        length = response.headers.get('Content-Length')
        total = (int(length) + (have if resumed else 0)) if length else None
        with open(part, 'ab' if resumed else 'wb') as out, tqdm(
                total=total, initial=have if resumed else 0, unit='B', unit_scale=True,
                unit_divisor=1024, desc=Path(url).name, disable=not progress) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f'incomplete download: {size} of {total} bytes (run again to resume)')


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _egohands_root_in(dest: Path) -> Optional[Path]:
    """The folder holding ``_LABELLED_SAMPLES``: `dest` or one of its sub-folders, or None."""
    if not dest.is_dir():
        return None
    return next((f.parent for f in (dest / '_LABELLED_SAMPLES', *dest.glob('*/_LABELLED_SAMPLES'))
                 if f.is_dir()), None)


def download_egohands(dest: str | Path, urls: Sequence[str] = (EGOHANDS_URL, EGOHANDS_ARCHIVE_URL),
                      sha256: Optional[str] = None, timeout: float = 30.0,
                      progress: bool = True) -> Path:
    """Download ``egohands_data.zip`` (1.3 GB) into `dest`, check it and unzip it there.

    The URLs are tried in order; a partial ``egohands_data.zip.part`` is resumed. The archive
    must have the length the server announced and be a zip whose every member passes its CRC
    on extraction; its size and sha256 are printed so a run can be pinned with `sha256` (no
    official checksum is published). Does nothing when `dest` already holds the 48 videos.
    Returns the data set root (the folder of ``_LABELLED_SAMPLES``, for :func:`load_egohands`).
    Raises :class:`DownloadError` naming every URL and its failure.
    """
    dest = Path(dest)
    root = _egohands_root_in(dest)
    if root is not None and all((root / '_LABELLED_SAMPLES' / v / 'polygons.mat').is_file()
                                for v in EGOHANDS_VIDEOS):
        return root
    dest.mkdir(parents=True, exist_ok=True)
    archive, part = dest / 'egohands_data.zip', dest / 'egohands_data.zip.part'
    if not archive.is_file():
        errors = []
        for url in urls:
            try:
                _fetch(url, part, timeout, progress)
                break
            except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, DownloadError
                errors.append(f'{url}: {exc}')
        else:
            raise DownloadError('could not download EgoHands:\n  ' + '\n  '.join(errors)
                                + f'\nDownload egohands_data.zip by hand into {dest} and run '
                                  f'again, or give another --url.')
        if not zipfile.is_zipfile(part):
            part.unlink()
            raise DownloadError(f'the downloaded file is not a zip archive (removed); '
                                f'tried {urls}')
        part.rename(archive)
    digest = _sha256(archive)
    print(f'{archive}: {archive.stat().st_size} bytes, sha256 {digest}')
    if sha256 and digest != sha256.lower():
        raise DownloadError(f'{archive}: sha256 {digest}, expected {sha256}; delete it and '
                            f'download again')
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc='unzipping', unit='file',
                               disable=not progress):
                zf.extract(member, dest)  # checks each member's CRC; no paths outside dest
    except zipfile.BadZipFile as exc:
        raise DownloadError(f'{archive} is corrupt ({exc}); delete it and download again') \
            from None
    root = _egohands_root_in(dest)
    if root is None:
        raise DownloadError(f'{archive} holds no _LABELLED_SAMPLES folder: not EgoHands')
    return root


# ----------------------------------------------------------------------------- command line
def _names(text: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in text.split(',') if v.strip()] if text else None


#: Output set of each YOLO split directory.
_YOLO_SETS = {'train': 'train', 'valid': 'val', 'val': 'val', 'test': 'test'}


def _video_split(args: argparse.Namespace) -> Optional[VideoSplit]:
    """The EgoHands split of the command line; None = every chosen video in one set."""
    custom = (args.train_videos, args.val_videos, args.test_videos)
    if any(custom):
        if args.videos or args.split:
            raise ValueError('--train-videos/--val-videos/--test-videos replace --split and '
                             '--videos')
        return VideoSplit(*(tuple(_names(v) or ()) for v in custom))
    if args.videos:
        if args.split not in (None, 'none'):
            raise ValueError('--videos selects videos for one set: use it with --split none or '
                             '--train-videos/--val-videos/--test-videos')
        return None
    return {'shipped': SHIPPED_SPLIT, 'default': DEFAULT_SPLIT, 'none': None,
            None: DEFAULT_SPLIT}[args.split]


def _load_sets(args: argparse.Namespace) -> dict[str, list[Sample]]:
    """The samples of the command line's sources by output set (``train``/``val``/``test``,
    or ``all`` with ``--split none`` / ``--videos``); empty sets are left out."""
    sets: dict[str, list[Sample]] = {}
    one_set = args.split == 'none' or bool(args.videos and not args.split)
    if args.egohands:
        split = _video_split(args)
        if split is None:
            sets.setdefault('all', []).extend(load_egohands(args.egohands, _names(args.videos)))
        else:
            folder = egohands_samples_dir(args.egohands)
            missing = [v for v in split.videos() if not (folder / v / 'polygons.mat').is_file()]
            if missing:
                raise ValueError(f'the split needs EgoHands video(s) missing from {folder}: '
                                 f'{", ".join(missing)} (use --split shipped for the three '
                                 f'videos of ../shared/data, --videos, or --train-videos/'
                                 f'--val-videos/--test-videos)')
            parts = split_by_videos(load_egohands(args.egohands, split.videos()),
                                    **split.as_dict())
            for name, samples in parts.items():
                sets.setdefault(name, []).extend(samples)
    elif args.videos or args.train_videos or args.val_videos or args.test_videos:
        raise ValueError('video options need --egohands')
    if args.yolo:
        for split in _names(args.yolo_splits) or ['train']:
            target = 'all' if one_set else _YOLO_SETS.get(split, split)
            sets.setdefault(target, []).extend(load_yolo(args.yolo, [split]))
    if args.coco:
        target = 'all' if one_set else args.coco_set
        sets.setdefault(target, []).extend(
            load_coco(args.coco, args.coco_images, _names(args.coco_categories)))
    return {name: samples for name, samples in sets.items() if samples}


def _add_source_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('sources (any combination)')
    g.add_argument('--egohands', type=Path, help='EgoHands root (holding _LABELLED_SAMPLES/)')
    g.add_argument('--split', choices=('shipped', 'default', 'none'),
                   help='EgoHands video split: shipped (SHIPPED_SPLIT), default (DEFAULT_SPLIT, '
                        'all 48 videos; the default) or none (one set "all")')
    g.add_argument('--videos', help='comma-separated EgoHands videos, one set "all"')
    g.add_argument('--train-videos', help='custom split: comma-separated training videos')
    g.add_argument('--val-videos', help='custom split: validation videos')
    g.add_argument('--test-videos', help='custom split: test videos')
    g.add_argument('--yolo', type=Path, help='YOLO-format data set root')
    g.add_argument('--yolo-splits', '--splits', default='train',
                   help='comma-separated YOLO splits (default: train); train, valid/val and '
                        'test go to the sets of those names')
    g.add_argument('--coco', type=Path, help='COCO detection JSON')
    g.add_argument('--coco-images', type=Path, help='folder of its file_names (default: the '
                                                    "JSON's folder)")
    g.add_argument('--coco-categories', help='comma-separated categories that are hands '
                                             '(default: all)')
    g.add_argument('--coco-set', default='test', choices=('train', 'val', 'test'),
                   help='the set of the COCO images (default: test)')


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='hand-tracker-dataset',
        description='Hand detection data: convert to OD API TFRecords, statistics, download.')
    sub = parser.add_subparsers(dest='command', required=True)
    convert = sub.add_parser('convert', help='TFRecords per set + label map, stats, previews')
    _add_source_options(convert)
    convert.add_argument('--out', type=Path, required=True, help='output folder')
    convert.add_argument('--shards', type=int, default=1, help='TFRecord files per set')
    convert.add_argument('--previews', type=int, default=6, help='preview PNGs per set (0: none)')
    stats = sub.add_parser('stats', help='print the statistics of the sets as JSON')
    _add_source_options(stats)
    stats.add_argument('--png', type=Path, help='also plot them: <png stem>_<set>.png')
    stats.add_argument('--previews', type=Path, help='also write 6 previews per set here')
    download = sub.add_parser('download', help='download and unzip EgoHands (1.3 GB)')
    download.add_argument('--dest', type=Path, required=True, help='folder to unzip into')
    download.add_argument('--url', action='append',
                          help='archive URL (repeatable; default: the official one, then the '
                               'Internet Archive copy)')
    download.add_argument('--sha256', help='expected sha256 of egohands_data.zip')
    args = parser.parse_args(argv)
    if args.command != 'download' and not (args.egohands or args.yolo or args.coco):
        parser.error('give at least one of --egohands, --yolo, --coco')
    return args


def _convert(args: argparse.Namespace, sets: Mapping[str, list[Sample]]) -> None:
    from hand_tracker_ros.label_map import write_label_map
    from hand_tracker_training.tfrecord import HAND_LABEL_MAP, write_tfrecord

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_label_map(out / 'label_map.pbtxt', HAND_LABEL_MAP)
    stats = {}
    for name, samples in sets.items():
        files = write_tfrecord(samples, out / f'{name}.record', HAND_LABEL_MAP,
                               num_shards=args.shards)
        stats[name] = dataset_stats(samples)
        stats[name]['files'] = [f.name for f in files]
        plot_stats(samples, out / f'stats_{name}.png', title=name)
        write_previews(samples, out / 'previews' / name, n=args.previews)
        print(f'{name}: {len(samples)} images, {stats[name]["boxes"]} hands -> '
              f'{", ".join(f.name for f in files)}')
    (out / 'stats.json').write_text(json.dumps(stats, indent=2), encoding='utf-8')
    print(f'wrote {out}/label_map.pbtxt, stats.json, stats_*.png, previews/')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``hand-tracker-dataset``; returns the exit status (0 ok, 2 bad input or failed
    download)."""
    args = _parse_args(argv)
    try:
        if args.command == 'download':
            root = download_egohands(args.dest, urls=args.url or (EGOHANDS_URL,
                                                                  EGOHANDS_ARCHIVE_URL),
                                     sha256=args.sha256)
            print(f'EgoHands ready: --egohands {root}')
            return 0
        sets = _load_sets(args)
        if not sets:
            raise ValueError('the sources hold no images')
        if args.command == 'convert':
            if args.shards < 1:
                raise ValueError('--shards must be >= 1')
            _convert(args, sets)
        else:
            print(json.dumps({name: dataset_stats(s) for name, s in sets.items()}, indent=2))
            for name, samples in sets.items():
                if args.png:
                    plot_stats(samples, args.png.with_name(f'{args.png.stem}_{name}.png'), name)
                if args.previews:
                    write_previews(samples, args.previews / name)
    except (OSError, ValueError) as exc:
        print(f'hand-tracker-dataset: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
