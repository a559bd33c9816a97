"""The training recipe's data sources and their train / val / test parts (one place).

Every source is read with the readers of :mod:`hand_tracker_training.datasets`; this module
only decides which files belong to which part. The split (also in the model card):

=========  =================================  ==================================  =============
source     train                              val                                 test
=========  =================================  ==================================  =============
egohands   CARDS_LIVINGROOM_B_T,              none                                CARDS_OFFICE_S_B
           PUZZLE_LIVINGROOM_T_B
webcam     ``train/`` minus val sessions      ~15 % of the recording sessions     ``test/``
asl        ``train/``                         ``valid/``                          ``test/``
gestures   ``train/``                         ``valid/``                          ``test/``
closeup    ``valid/`` minus the val rule      ``valid/`` files whose name hash    ``test/``
                                              falls in the lowest 20 %
=========  =================================  ==================================  =============

A webcam recording session is the file name's prefix before ``pic`` (e.g.
``1528664299.56_pic00001.jpg`` -> ``1528664299.56_``); names without ``pic`` form one session
per prefix before the first ``_``. Sessions and close-up files are assigned by the MD5 of their
name, so the split does not depend on the file system order or a random seed.

:func:`load_recipe_part` is the single entry point; swap it for the dataset package's
``load_part(source, part)`` when that lands.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

#: Source name -> folder under the data root.
SOURCE_DIRS = {'egohands': 'egohands', 'webcam': 'hands_webcam_subhih',
               'asl': 'asl_letters_roboflow', 'gestures': 'hand_gestures_roboflow',
               'closeup': 'hands_closeup_roboflow'}
SOURCES = tuple(SOURCE_DIRS)
PARTS = ('train', 'val', 'test')
EGOHANDS_PARTS = {'train': ('CARDS_LIVINGROOM_B_T', 'PUZZLE_LIVINGROOM_T_B'), 'val': (),
                  'test': ('CARDS_OFFICE_S_B',)}
#: Roboflow-style sets: part -> YOLO split folder.
YOLO_PARTS = {'train': 'train', 'val': 'valid', 'test': 'test'}
WEBCAM_VAL_SESSIONS = 0.15
CLOSEUP_VAL_FRACTION = 0.2
#: Default data root: ``shared/data`` beside the project checkout.
DATA_ROOT = Path(__file__).resolve().parents[2] / 'shared' / 'data'


def name_hash(name: str) -> float:
    """A stable number in [0, 1) from `name` (MD5), for deterministic splits."""
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 16 ** 8


def webcam_session(file_name: str) -> str:
    """The recording session of a ``hands_webcam_subhih`` file name (see the module doc)."""
    if 'pic' in file_name:
        return file_name.rsplit('pic', 1)[0]
    return file_name.split('_', 1)[0]


def webcam_val_sessions(sessions: set[str], fraction: float = WEBCAM_VAL_SESSIONS) -> set[str]:
    """The ``ceil(fraction * n)`` sessions with the lowest name hash."""
    ordered = sorted(sessions, key=name_hash)
    return set(ordered[:math.ceil(fraction * len(ordered))])


def load_recipe_part(source: str, part: str, data_root: str | Path = DATA_ROOT) -> list:
    """The samples of one part (train / val / test) of one source; ``sample.source`` is set to
    the source name (:data:`SOURCES`)."""
    from hand_tracker_training.datasets import load_egohands, load_yolo

    if source not in SOURCE_DIRS or part not in PARTS:
        raise ValueError(f'unknown source/part {source}/{part}: sources {SOURCES}, parts {PARTS}')
    root = Path(data_root) / SOURCE_DIRS[source]
    if source == 'egohands':
        videos = EGOHANDS_PARTS[part]
        samples = load_egohands(root, videos=videos, progress=False) if videos else []
    elif source == 'webcam':
        samples = load_yolo(root, splits=('test' if part == 'test' else 'train',), progress=False)
        if part != 'test':
            val = webcam_val_sessions({webcam_session(Path(s.image_path).name) for s in samples})
            samples = [s for s in samples
                       if (webcam_session(Path(s.image_path).name) in val) == (part == 'val')]
    elif source == 'closeup':
        samples = load_yolo(root, splits=('test' if part == 'test' else 'valid',), progress=False)
        if part != 'test':
            samples = [s for s in samples if (name_hash(Path(s.image_path).name)
                                              < CLOSEUP_VAL_FRACTION) == (part == 'val')]
    else:
        samples = load_yolo(root, splits=(YOLO_PARTS[part],), progress=False)
    for s in samples:
        s.source = source
    return samples


def load_parts(part: str, sources=SOURCES, data_root: str | Path = DATA_ROOT) -> dict:
    """``{source: samples}`` of one part for several sources (sources with none left out)."""
    out = {s: load_recipe_part(s, part, data_root) for s in sources}
    return {k: v for k, v in out.items() if v}
