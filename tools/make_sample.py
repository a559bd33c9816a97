#!/usr/bin/env python3
"""
Write the sample video under ``samples/`` from the held-out session the split file names.

``config/data_splits.yaml`` names it (``sample:`` of a source: a group of its ``test`` part,
the output file and its frame rate); the frames are that group's images in file-name order, as
they are in ``../shared/data``. Refuses a group that is not in the test part.

    .venv/bin/python tools/make_sample.py                 # hands_webcam_subhih's sample
"""
import argparse
from pathlib import Path
import sys

import cv2
from hand_tracker_training.datasets.parts import (DATA_SPLITS, GROUP_RULES, load_parts,
                                                  read_data_splits)

REPO = Path(__file__).resolve().parents[1]


def sample_frames(source: str, config: dict) -> list[Path]:
    """Image files of `source`'s sample group in file-name order; SystemExit if not in test."""
    spec = config['sources'][source]
    group, rule = spec['sample']['group'], GROUP_RULES[spec['group']]
    parts = load_parts(source, config)
    homes = [part for part, samples in parts.items() if any(rule(s) == group for s in samples)]
    if homes != ['test']:
        raise SystemExit(f'{source}: the sample group {group} must be in the test part alone, '
                         f'found in {homes or "no part"}')
    return sorted((Path(s.image_path) for s in parts['test'] if rule(s) == group),
                  key=lambda p: p.name)


def write_video(frames: list[Path], out: Path, fps: float) -> tuple[int, int]:
    """Encode `frames` (all of one size) as an MPEG-4 .mp4 at `fps`; return (width, height)."""
    first = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
    height, width = first.shape[:2]
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit(f'cannot write video {out}')
    for path in frames:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None or frame.shape[:2] != (height, width):
            raise SystemExit(f'{path}: unreadable or not {width}x{height}')
        writer.write(frame)
    writer.release()
    return width, height


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    p.add_argument('--source', default='hands_webcam_subhih',
                   help='a source of the split file that names a sample')
    p.add_argument('--data-splits', type=Path, default=DATA_SPLITS)
    p.add_argument('--data-root', type=Path, help="data folder (default: the file's root)")
    p.add_argument('--out', type=Path, help="output video (default: the sample's `file`, in the "
                   'repository)')
    args = p.parse_args(argv)
    config = read_data_splits(args.data_splits, args.data_root)
    sample = config['sources'][args.source].get('sample')
    if not sample:
        raise SystemExit(f'{args.data_splits}: source {args.source} names no sample')
    frames = sample_frames(args.source, config)
    out = args.out or REPO / sample['file']
    width, height = write_video(frames, out, float(sample['fps']))
    print(f'wrote {out}: {len(frames)} frames {width}x{height} at '
          f'{sample["fps"]} fps, {out.stat().st_size / 1e6:.2f} MB, group {sample["group"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
