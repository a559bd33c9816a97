"""
The data source options of every command line, in one place.

:func:`add_source_options` adds them to a parser (``hand-tracker-dataset``, ``-train``,
``-eval``, ``-export``), :func:`load_source_sets` reads them into sets ``train``, ``val``,
``test`` and ``all`` (sources given without a split), :func:`load_sources` returns the samples
of the parts a command needs. The same defaults everywhere:

- ``--sources NAMES``: data sets of ``config/data_splits.yaml`` (``all`` = every one), each
  into its own train / val / test parts;
- ``--egohands ROOT``: split by ``--split`` (default: DEFAULT_SPLIT, all 48 videos) or
  ``--train-videos/--val-videos/--test-videos``; ``--videos`` = these videos, set ``all``;
- ``--yolo ROOT``: every split folder (or ``--yolo-splits``) into the set of its name
  (``valid`` -> ``val``);
- ``--coco JSON``: into ``--coco-set`` (default ``test``).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from hand_tracker_training.cli_args import split_list
from hand_tracker_training.datasets.coco import load_coco
from hand_tracker_training.datasets.egohands import egohands_samples_dir, load_egohands
from hand_tracker_training.datasets.parts import DATA_SPLITS, load_parts, PARTS, read_data_splits
from hand_tracker_training.datasets.sample import Sample
from hand_tracker_training.datasets.splits import (DEFAULT_SPLIT, SHIPPED_SPLIT, split_by_videos,
                                                   VideoSplit)
from hand_tracker_training.datasets.yolo import load_yolo

#: Set of each YOLO split directory.
YOLO_SETS = {'train': 'train', 'valid': 'val', 'val': 'val', 'test': 'test'}


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """Add the source options (module docstring) to `parser` as one argument group."""
    g = parser.add_argument_group('data sources (any combination)')
    g.add_argument('--sources', help='comma-separated data sets of --data-splits, each into its '
                                     'train/val/test parts ("all": every one)')
    g.add_argument('--data-splits', type=Path, default=DATA_SPLITS,
                   help='the split file of --sources (default: config/data_splits.yaml)')
    g.add_argument('--data-root', type=Path,
                   help="folder of --sources' data sets (default: the split file's root)")
    g.add_argument('--fold', help='leave-one-video-out fold of --data-splits (a video of its '
                                  "'folds', held out as test; 'all': every one in train)")
    g.add_argument('--egohands', type=Path, help='EgoHands root (holding _LABELLED_SAMPLES/)')
    g.add_argument('--split', choices=('shipped', 'default', 'none'),
                   help='EgoHands video split: shipped (SHIPPED_SPLIT), default (DEFAULT_SPLIT, '
                        'all 48 videos; the default) or none (one set "all")')
    g.add_argument('--videos', help='comma-separated EgoHands videos, one set "all"')
    g.add_argument('--train-videos', help='custom split: comma-separated training videos')
    g.add_argument('--val-videos', help='custom split: validation videos')
    g.add_argument('--test-videos', help='custom split: test videos')
    g.add_argument('--yolo', type=Path, help='YOLO-format data set root')
    g.add_argument('--yolo-splits', '--splits',
                   help='comma-separated YOLO splits (default: every one there); train, '
                        'valid/val and test go to the sets of those names')
    g.add_argument('--coco', type=Path, help='COCO detection JSON')
    g.add_argument('--coco-images', type=Path, help='folder of its file_names (default: the '
                                                    "JSON's folder)")
    g.add_argument('--coco-categories', help='comma-separated categories that are hands '
                                             '(default: all)')
    g.add_argument('--coco-set', default='test', choices=PARTS,
                   help='the set of the COCO images (default: test)')


def has_sources(args: argparse.Namespace) -> bool:
    """Whether the command line names at least one data source."""
    return bool(args.sources or args.egohands or args.yolo or args.coco)


def _video_split(args: argparse.Namespace) -> Optional[VideoSplit]:
    """Return the EgoHands split of the command line; None = every chosen video in one set."""
    custom = (args.train_videos, args.val_videos, args.test_videos)
    if any(custom):
        if args.videos or args.split:
            raise ValueError('--train-videos/--val-videos/--test-videos replace --split and '
                             '--videos')
        return VideoSplit(*(tuple(split_list(v) or ()) for v in custom))
    if args.videos:
        if args.split not in (None, 'none'):
            raise ValueError('--videos selects videos for one set: use it with --split none or '
                             '--train-videos/--val-videos/--test-videos')
        return None
    return {'shipped': SHIPPED_SPLIT, 'default': DEFAULT_SPLIT, 'none': None,
            None: DEFAULT_SPLIT}[args.split]


def _egohands_sets(args: argparse.Namespace) -> dict[str, list[Sample]]:
    split = _video_split(args)
    if split is None:
        return {'all': load_egohands(args.egohands, split_list(args.videos))}
    folder = egohands_samples_dir(args.egohands)
    missing = [v for v in split.videos() if not (folder / v / 'polygons.mat').is_file()]
    if missing:
        raise ValueError(f'the split needs EgoHands video(s) missing from {folder}: '
                         f'{", ".join(missing)} (use --split shipped for the three videos of '
                         f'../shared/data, --videos, or --train-videos/--val-videos/'
                         f'--test-videos)')
    return split_by_videos(load_egohands(args.egohands, split.videos()), **split.as_dict())


def _yolo_sets(args: argparse.Namespace, one_set: bool) -> dict[str, list[Sample]]:
    sets: dict[str, list[Sample]] = {}
    for sample in load_yolo(args.yolo, split_list(args.yolo_splits)):
        split = sample.source.rsplit('/', 1)[-1]
        sets.setdefault('all' if one_set else YOLO_SETS.get(split, split), []).append(sample)
    return sets


def _named_sets(args: argparse.Namespace) -> list[dict[str, list[Sample]]]:
    """Return the parts of each data set of ``--sources``."""
    config = read_data_splits(args.data_splits, args.data_root, getattr(args, 'fold', None))
    names = split_list(args.sources) or []
    if names == ['all']:
        names = list(config['sources'])
    return [load_parts(name, config) for name in names]


def load_source_sets(args: argparse.Namespace) -> dict[str, list[Sample]]:
    """
    Load the samples of the command line's sources by set.

    Sets are ``train``/``val``/``test``, or ``all`` with ``--split none`` / ``--videos``; empty
    sets are left out. Raises ValueError for contradicting options, OSError / ValueError for
    unreadable data.
    """
    one_set = args.split == 'none' or bool(args.videos and not args.split)
    found: list[dict[str, list[Sample]]] = _named_sets(args) if args.sources else []
    if args.egohands:
        found.append(_egohands_sets(args))
    elif args.videos or args.train_videos or args.val_videos or args.test_videos:
        raise ValueError('video options need --egohands')
    if args.yolo:
        found.append(_yolo_sets(args, one_set))
    if args.coco:
        found.append({'all' if one_set else args.coco_set: load_coco(
            args.coco, args.coco_images, split_list(args.coco_categories))})
    sets: dict[str, list[Sample]] = {}
    for parts in found:
        for name, samples in parts.items():
            sets.setdefault(name, []).extend(samples)
    return {name: samples for name, samples in sets.items() if samples}


def load_sources(args: argparse.Namespace, parts: str | Sequence[str]) -> list[Sample]:
    """
    Load the samples of the sets `parts` of the command line's sources, in that order.

    `parts` is a name or several, e.g. ``('test', 'all')``.
    """
    sets = load_source_sets(args)
    return [s for part in ([parts] if isinstance(parts, str) else parts)
            for s in sets.get(part, [])]


def training_samples(args: argparse.Namespace) -> tuple[list[Sample], list[Sample]]:
    """
    (training samples, validation samples) of the command line's sources.

    The ``train`` and ``all`` sets train, the ``val`` set selects; a test set is never read.
    EgoHands frames are repeated ``--egohands-repeat`` times (when the parser has it). Used by
    ``hand-tracker-train`` (what it trains on) and ``hand-tracker-export`` (the int8
    calibration images come from the same list; the exported files are scored on val).
    """
    sets = load_source_sets(args)
    repeat = {'egohands': max(1, getattr(args, 'egohands_repeat', 1))}
    train = [s for part in ('train', 'all') for s in sets.get(part, [])
             for _ in range(repeat.get(s.dataset, 1))]
    return train, sets.get('val', [])
