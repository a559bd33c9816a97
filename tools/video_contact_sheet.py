#!/usr/bin/env python3
"""
Tile evenly spaced frames of a video (e.g. ``hand-tracker run --record``) into one PNG.

    .venv/bin/python tools/video_contact_sheet.py hands.mp4 sheet.png --frames 12 --columns 4

A cell has the frames' aspect ratio (its longer side ``--cell-size`` pixels), so portrait
(phone) and landscape clips both fill the sheet.
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


def cell_for(frame: Path, longer_side: int) -> tuple[int, int]:
    """Return a (width, height) cell with the aspect ratio of the image `frame`."""
    height, width = cv2.imread(str(frame), cv2.IMREAD_COLOR).shape[:2]
    scale = longer_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    p.add_argument('video', type=Path)
    p.add_argument('png', type=Path)
    p.add_argument('--frames', type=int, default=12)
    p.add_argument('--columns', type=int, default=4)
    p.add_argument('--cell-size', type=int, default=480,
                   help="longer side of a cell in pixels; the other follows the frames' aspect")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        frames = sample_frames(args.video, args.frames, Path(tmp))
        if not frames:
            raise SystemExit(f'no frame of {args.video} could be decoded')
        sheet = contact_sheet(frames, args.png, columns=args.columns,
                              cell=cell_for(frames[0], args.cell_size))
    print(f'wrote {sheet} ({len(frames)} frames of {args.video})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
