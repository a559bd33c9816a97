#!/usr/bin/env python3
"""
Annotated detections on evenly spaced images of a YOLO set, tiled into one picture.

The node's chain at its defaults (``--ssd-only``: the SSD alone), at its operating threshold,
as ``hand-tracker-eval`` runs it; colours as its failure cases: green found, red missed,
yellow false (with score and skeleton)::

    .venv/bin/python tools/eval_contact_sheet.py data/far_hands docs/far_hands_chain.jpg
    .venv/bin/python tools/eval_contact_sheet.py data/far_hands sheet.jpg --ssd-only --images 9
"""
import argparse
from pathlib import Path
import sys
import tempfile

import cv2
from hand_tracker_training.datasets.yolo import load_yolo
from hand_tracker_training.eval_suite import contact_sheet, model_threshold
from hand_tracker_training.evaluate import draw_matches, match_detections
import numpy as np


def main(argv=None) -> int:
    """Write the sheet; 0 ok."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('root', type=Path, help='YOLO folder (e.g. data/far_hands)')
    parser.add_argument('out', type=Path, help='sheet to write (.jpg / .png)')
    parser.add_argument('--split', default='test', help='split folder (default: test)')
    parser.add_argument('--images', type=int, default=6, help='images on the sheet (default 6)')
    parser.add_argument('--columns', type=int, default=2, help='columns (default 2)')
    parser.add_argument('--cell', type=int, default=800, help='cell width in pixels (default 800)')
    parser.add_argument('--ssd-only', action='store_true', help='the SSD alone')
    parser.add_argument('--model', type=Path, help='SSD model (default: the shipped one)')
    args = parser.parse_args(argv)

    from hand_tracker_ros.backends import load_detector
    from hand_tracker_ros.chain import chain_from_defaults, ChainDetector
    from hand_tracker_ros.resources import default_model_path
    model = args.model or default_model_path()
    detector = load_detector(str(model))
    if args.ssd_only:
        threshold = model_threshold(model)[0]
    else:
        detector = ChainDetector(detector, chain_from_defaults())
        threshold = detector.operating_threshold
    samples = load_yolo(args.root, [args.split], progress=False)
    picks = np.linspace(0, len(samples) - 1, min(args.images, len(samples))).round().astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        cells = []
        for k in picks:
            sample = samples[k]
            rgb = cv2.cvtColor(cv2.imread(sample.image_path, cv2.IMREAD_COLOR),
                               cv2.COLOR_BGR2RGB)
            kept = detector.detect(rgb, 0.0).filter(threshold)
            det_tp, gt_found = match_detections(sample.boxes, kept, 0.5)
            img = draw_matches(sample, kept, det_tp, gt_found, threshold, 0.5)
            cells.append(Path(tmp) / f'{k:04d}.png')
            cv2.imwrite(str(cells[-1]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        contact_sheet(cells, args.out, columns=args.columns,
                      cell=(args.cell, args.cell * 3 // 4))
    print(f'wrote {args.out}: {len(cells)} images of {args.root}/{args.split}, '
          f'{"SSD alone" if args.ssd_only else "the chain"} at {threshold:g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
