#!/usr/bin/env python3
"""
Tile evenly spaced frames of a video (e.g. ``hand-tracker run --record``) into one PNG.

    .venv/bin/python tools/video_contact_sheet.py hands.mp4 sheet.png --frames 12 --columns 4
"""
import argparse
from pathlib import Path
import sys
import tempfile

import cv2
from hand_tracker_training.eval_suite import contact_sheet
import numpy as np


def sample_frames(video: Path, n: int, out_dir: Path) -> list[Path]:
    """Write `n` evenly spaced frames of `video` as PNG files into `out_dir`; return them."""
    cap = cv2.VideoCapture(str(video))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not cap.isOpened() or count <= 0:
        raise SystemExit(f'cannot read video {video}')
    paths = []
    for k, index in enumerate(np.linspace(0, count - 1, min(n, count)).round().astype(int)):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if ok:
            paths.append(out_dir / f'{k:03d}.png')
            cv2.imwrite(str(paths[-1]), frame)
    cap.release()
    return paths


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    p.add_argument('video', type=Path)
    p.add_argument('png', type=Path)
    p.add_argument('--frames', type=int, default=12)
    p.add_argument('--columns', type=int, default=4)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        frames = sample_frames(args.video, args.frames, Path(tmp))
        sheet = contact_sheet(frames, args.png, columns=args.columns, cell=(480, 360))
    print(f'wrote {sheet} ({len(frames)} frames of {args.video})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
