r"""
``hand-tracker-dataset``: convert data sets to OD API TFRecords, statistics, parts, download.

Examples::

    hand-tracker-dataset download --dest ../egohands_full
    hand-tracker-dataset convert --egohands ../egohands_full --split default --out records/
    hand-tracker-dataset convert --sources all --out records/
    hand-tracker-dataset convert --egohands ../shared/data/egohands --split shipped \
        --yolo ../shared/data/hand_gestures_roboflow --splits train --out records/
    hand-tracker-dataset stats --yolo ../shared/data/hand_gestures_roboflow --splits train,valid
    hand-tracker-dataset parts --markdown docs/DATA_SPLITS.md
    hand-tracker-dataset far-hands --out data/far_hands

``convert`` writes ``<set>.record`` (or ``<set>.record-0000k-of-0000n`` with ``--shards n``)
per set (``train``, ``val``, ``test``; ``all`` with ``--split none`` or ``--videos``),
``label_map.pbtxt``, ``stats.json``, ``stats_<set>.png`` and ``previews/<set>/*.png``.
The data source options are those of every command (:mod:`.sources`). ``far-hands`` writes
the generated far-hands test set, a YOLO folder (:mod:`.far_hands`).
"""
from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
import json
from pathlib import Path
import sys
from typing import Optional

from hand_tracker_ros.label_map import write_label_map
from hand_tracker_ros.vocabulary import HAND_LABEL_MAP
from hand_tracker_training.datasets import far_hands
from hand_tracker_training.datasets.download import (download_egohands, EGOHANDS_ARCHIVE_URL,
                                                     EGOHANDS_URL)
from hand_tracker_training.datasets.parts import DATA_SPLITS, parts_table, read_data_splits
from hand_tracker_training.datasets.sample import Sample
from hand_tracker_training.datasets.sources import (add_source_options, has_sources,
                                                    load_source_sets)
from hand_tracker_training.datasets.stats import dataset_stats, plot_stats, write_previews


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='hand-tracker-dataset',
        description='Hand detection data: convert to OD API TFRecords, statistics, download.')
    sub = parser.add_subparsers(dest='command', required=True)
    convert = sub.add_parser('convert', help='TFRecords per set + label map, stats, previews')
    add_source_options(convert)
    convert.add_argument('--out', type=Path, required=True, help='output folder')
    convert.add_argument('--shards', type=int, default=1, help='TFRecord files per set')
    convert.add_argument('--previews', type=int, default=6, help='preview PNGs per set (0: none)')
    stats = sub.add_parser('stats', help='print the statistics of the sets as JSON')
    add_source_options(stats)
    stats.add_argument('--png', type=Path, help='also plot them: <png stem>_<set>.png')
    stats.add_argument('--previews', type=Path, help='also write 6 previews per set here')
    parts = sub.add_parser('parts', help='the train/val/test parts of every data set of the '
                                         'split file, as a Markdown table')
    parts.add_argument('--data-splits', type=Path, default=DATA_SPLITS,
                       help='split file (default: config/data_splits.yaml)')
    parts.add_argument('--data-root', type=Path, help="data folder (default: the file's root)")
    parts.add_argument('--markdown', type=Path, help='also write the table page here')
    far_hands.add_arguments(sub.add_parser(
        'far-hands', help='generate the far-hands test set (small hands pasted into hand-free '
                          'scenes, test parts only) as a YOLO folder'))
    download = sub.add_parser('download', help='download and unzip EgoHands (1.3 GB)')
    download.add_argument('--dest', type=Path, required=True, help='folder to unzip into')
    download.add_argument('--url', action='append',
                          help='archive URL (repeatable; default: the official one, then the '
                               'Internet Archive copy)')
    download.add_argument('--sha256', help='expected sha256 of egohands_data.zip')
    args = parser.parse_args(argv)
    if args.command in ('convert', 'stats') and not has_sources(args):
        parser.error('give at least one of --sources, --egohands, --yolo, --coco')
    return args


def _convert(args: argparse.Namespace, sets: Mapping[str, list[Sample]]) -> None:
    # TensorFlow only here: the other commands (far-hands, stats, parts, download) start
    # without it
    from hand_tracker_training.tfrecord import write_tfrecord
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


def _parts(args: argparse.Namespace) -> None:
    config = read_data_splits(args.data_splits, args.data_root)
    table = parts_table(config)
    print(table)
    samples = ''.join(
        f'\n`{spec["sample"]["file"]}`, the video the README\'s first command runs on, is '
        f'{spec["group"]} `{spec["sample"]["group"]}` of the {name} test part.\n'
        for name, spec in config['sources'].items() if spec.get('sample'))
    far = (f'\nThe generated far-hands test set (`hand-tracker-dataset far-hands`, the '
           f'`far_hands` row of `config/eval_suite.yaml`; '
           f'`hand_tracker_training/datasets/far_hands.py` says exactly how) reads test parts '
           f'only: the people pasted are whole images of the '
           f'{" and ".join(f"{name} test part" for name in far_hands.PEOPLE)}, shrunk so that '
           f'their hands are {far_hands.MIN_HEIGHT:.0%}-{far_hands.MAX_HEIGHT:.0%} of the '
           f'image height; the scenes are rectangles of the {far_hands.SCENES} test frames '
           f'that keep away from every labelled hand (every hand there is labelled). Nothing '
           f'is trained, selected or calibrated on it.\n')
    folds = ''.join(
        f'\nLeave-one-{spec["group"]}-out folds of {name} (`--fold NAME` of hand-tracker-train, '
        f'-export and -eval): each of {", ".join(f"`{g}`" for g in spec["folds"])} is the '
        f'test part in turn, the others train, no val part (`--fold all`: every one '
        f'trains); the other sources keep their parts.\n'
        for name, spec in config['sources'].items() if spec.get('folds'))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(
            f'# Data splits\n\nGenerated by `hand-tracker-dataset parts --markdown '
            f'{args.markdown}` from `config/data_splits.yaml`, the one place the split is '
            f'defined (its comments give the rules and the reasons). Images are assigned by '
            f'group (EgoHands video, webcam recording session, Roboflow source photo); no '
            f'group is in two parts. Model selection and threshold calibration use train and '
            f'val only.\n\n{table}\n{samples}{far}{folds}', encoding='utf-8')


def _stats(args: argparse.Namespace, sets: Mapping[str, list[Sample]]) -> None:
    print(json.dumps({name: dataset_stats(s) for name, s in sets.items()}, indent=2))
    for name, samples in sets.items():
        if args.png:
            plot_stats(samples, args.png.with_name(f'{args.png.stem}_{name}.png'), name)
        if args.previews:
            write_previews(samples, args.previews / name)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """
    Run ``hand-tracker-dataset``.

    Returns the exit status (0 ok, 2 bad input or failed download).
    """
    args = _parse_args(argv)
    try:
        if args.command == 'download':
            root = download_egohands(args.dest, urls=args.url or (EGOHANDS_URL,
                                                                  EGOHANDS_ARCHIVE_URL),
                                     sha256=args.sha256)
            print(f'EgoHands ready: --egohands {root}')
            return 0
        if args.command == 'parts':
            _parts(args)
            return 0
        if args.command == 'far-hands':
            far_hands.run(args)
            return 0
        sets = load_source_sets(args)
        if not sets:
            raise ValueError('the sources hold no images')
        if args.command == 'convert':
            if args.shards < 1:
                raise ValueError('--shards must be >= 1')
            _convert(args, sets)
        else:
            _stats(args, sets)
    except (OSError, ValueError) as exc:
        print(f'hand-tracker-dataset: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
