"""
EgoHands (Bambach et al., ICCV 2015) in its original layout.

``<root>/_LABELLED_SAMPLES/<VIDEO>/frame_NNNN.jpg`` + ``polygons.mat``. A hand's box is the
min/max of its segmentation polygon clipped to the image; hands cut by the image border are
kept (they are real hands entering the view). Polygons with fewer than 3 points or without area
inside the image are dropped with a :class:`DatasetWarning` that counts them.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from hand_tracker_ros.vocabulary import SIDES
from hand_tracker_training.datasets.sample import (clip_box, image_size, make_sample, Sample,
                                                   warn_dropped)
import numpy as np
import scipy.io
from tqdm import tqdm

#: The ``dataset`` of every EgoHands sample, whatever its folder is called.
EGOHANDS = 'egohands'

#: ``polygons.mat`` field names (camera wearer = "my", partner = "your") -> side.
_POLYGON_FIELDS = {'myleft': 'own_left', 'myright': 'own_right',
                   'yourleft': 'other_left', 'yourright': 'other_right'}


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
    """
    Return the other camera of the same interaction.

    ``CARDS_OFFICE_S_B`` -> ``CARDS_OFFICE_B_S``.
    """
    parts = video.split('_')
    if len(parts) != 4:
        raise ValueError(f'{video!r} is not an EgoHands video name '
                         f'ACTIVITY_LOCATION_VIEWER_PARTNER')
    return '_'.join(parts[:2] + [parts[3], parts[2]])


def egohands_samples_dir(root: str | Path) -> Path:
    """
    Return the ``_LABELLED_SAMPLES`` folder of an EgoHands root.

    That is ``root`` itself when it holds the video folders. Raises FileNotFoundError when there
    is no video with a ``polygons.mat``.
    """
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


def _load_video(video_dir: Path, dropped: list[str], dataset: str) -> list[Sample]:
    """
    Load the labelled frames of one EgoHands video.

    Degenerate hands are appended to `dropped`.
    """
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
                box = clip_box(*points.min(axis=0), *points.max(axis=0), *size)
            if box is None:
                dropped.append(f'{video_dir.name}/{frame.name}:{side}')
                continue
            boxes.append(box)
            sides.append(side)
        samples.append(make_sample(frame, boxes, sides, video_dir.name, size, dataset))
    return samples


def load_egohands(root: str | Path, videos: Optional[Iterable[str]] = None,
                  progress: bool = True) -> list[Sample]:
    """
    Load the labelled frames of EgoHands videos under `root` (original layout).

    Video by video, frames in file name order (the order of ``polygons.mat``).

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
        samples += _load_video(folder / video, dropped, EGOHANDS)
    warn_dropped('load_egohands: degenerate hand polygons (< 3 points or no area in the image)',
                 dropped)
    return samples
