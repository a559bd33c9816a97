#!/usr/bin/env python3
"""
Draw ``docs/architecture.png``: the run-time data flow and the training pipeline.

Usage: ``python3 tools/architecture_diagram.py [OUT.png]`` (matplotlib only; 1600 px wide).
Boxes are modules (bold: the module, below: what it does); yellow boxes are ROS topics, grey
boxes files.
"""
from __future__ import annotations

from pathlib import Path
import sys

import matplotlib
matplotlib.use('Agg')
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / 'docs' / 'architecture.png'
W, H = 160, 116  # drawing units; 1 unit = 10 px at the saved size
LINE = 1.9  # height of a 10 pt text line at linespacing 1.35, in drawing units
STYLES = {
    'module': {'fc': '#e8f0fb', 'ec': '#2f5d9e', 'ls': '-'},
    'node': {'fc': '#dcefdc', 'ec': '#2e7d32', 'ls': '-'},
    'topic': {'fc': '#fff4c2', 'ec': '#b08900', 'ls': '-'},
    'file': {'fc': '#eeeeee', 'ec': '#616161', 'ls': '-'},
    'branch': {'fc': '#fdeee6', 'ec': '#c2571a', 'ls': '--'},
}


def box(ax, x0, y0, x1, y1, title, body='', style='module'):
    """Draw a rounded box from (x0, y0) to (x1, y1) with a bold title and body lines."""
    s = STYLES[style]
    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle='round,pad=0,rounding_size=1',
                                fc=s['fc'], ec=s['ec'], ls=s['ls'], lw=1.6, zorder=2))
    lines = 1 + (body.count('\n') + 1 if body else 0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax.text(cx, cy + (lines - 1) * LINE / 2, title, ha='center', va='center', fontsize=10,
            fontweight='bold', zorder=3)
    if body:
        ax.text(cx, cy - LINE / 2, body, ha='center', va='center', fontsize=10,
                linespacing=1.35, zorder=3)


def frame(ax, x0, y0, x1, y1, label, colour):
    """Draw a dashed container with its label at the top left."""
    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0,
                                boxstyle='round,pad=0,rounding_size=1.5', fc='none', ec=colour,
                                ls=(0, (5, 3)), lw=1.3, zorder=1))
    ax.text(x0 + 1, y1 - 0.6, label, ha='left', va='top', fontsize=10, color=colour,
            style='italic', zorder=3)


def arrow(ax, p, q, label='', rad=0.0, label_at=0.5, dy=0.9, colour='#333333'):
    """Draw an arrow from p to q, with an optional label near the given fraction of its length."""
    ax.add_patch(FancyArrowPatch(p, q, arrowstyle='-|>', mutation_scale=16, lw=1.5,
                                 color=colour, connectionstyle=f'arc3,rad={rad}', zorder=4))
    if label:
        x = p[0] + (q[0] - p[0]) * label_at
        y = p[1] + (q[1] - p[1]) * label_at + dy
        ax.text(x, y, label, ha='center', va='bottom', fontsize=9, color=colour, zorder=5,
                bbox={'fc': 'white', 'ec': 'none', 'pad': 0.5, 'alpha': 0.9})


def run_time(ax):
    """Panel A: from the image message to detections, tracks and gestures."""
    ax.text(1, 115, 'A.  Run time  (hand_tracker_ros; algorithm modules import no rclpy, '
            'nodes are thin wiring)', fontsize=13, fontweight='bold', va='top')
    frame(ax, 1, 60, 159, 111.5, 'hand-tracker run (cli.py): camera_node + hand_detector in '
          'one process (spin.BackgroundSpinner), progress line, --record;  '
          'or two processes via launch/', '#555555')
    box(ax, 3, 91, 25, 106, 'camera_node', 'frame_source.FrameSource:\nwebcam, video file\n'
        'or image folder', 'node')
    box(ax, 29, 92, 49, 105, 'topic  image', 'sensor_msgs/Image\n(or image/compressed:\n'
        'CompressedImage)', 'topic')
    arrow(ax, (25, 98.5), (29, 98.5))
    frame(ax, 52, 62, 157.5, 108, 'hand_detector node (detector_node.py): subscription, '
          'parameters, publishers', '#2e7d32')
    box(ax, 54, 90, 76, 103, 'pipeline', 'FramePipeline.submit():\nbounded queue, newest\n'
        'frame wins (drops\ncounted and logged)')
    arrow(ax, (49, 98.5), (54, 96.5))
    frame(ax, 79, 86.5, 156, 105.5, 'worker threads: process()', '#2f5d9e')
    box(ax, 81, 88, 101, 101.5, 'image_conversion', 'msg fields -> RGB\nuint8 (no cv_bridge)')
    box(ax, 105, 88, 134, 103.5, 'backends', 'load_detector -> Detector\n'
        'FrozenGraphDetector (.pb, TF)\nTFLiteDetector (.tflite, LiteRT)\n'
        'model file: models/ (panel B)')
    box(ax, 138, 88, 154.5, 101.5, 'detections', 'Detections\nboxes px, scores,\nclasses')
    arrow(ax, (76, 96.5), (81, 94.75))
    arrow(ax, (101, 94.75), (105, 94.75))
    arrow(ax, (134, 94.75), (138, 94.75))
    frame(ax, 79, 63.5, 156, 84.5, 'finish(): one at a time, in submission order', '#2f5d9e')
    box(ax, 131, 69, 154.5, 81, 'tracking', 'HandTracker: Kalman\nper hand -> Track')
    box(ax, 105, 69, 127, 81, 'gestures', 'GestureRecognizer\n-> RecognisedGesture')
    box(ax, 81, 72, 101, 81, 'messages', 'pure msg conversion\n(no rclpy, no DDS)')
    box(ax, 81, 64.5, 101, 70.5, 'annotate', 'draw_annotations', 'module')
    arrow(ax, (146, 88), (146, 81))
    arrow(ax, (131, 75), (127, 75))
    arrow(ax, (105, 76.5), (101, 76.5))
    box(ax, 54, 80, 76, 85, 'detections', 'Detection2DArray', 'topic')
    box(ax, 54, 74.3, 76, 79.3, 'hands', 'TrackedHandArray', 'topic')
    box(ax, 54, 68.6, 76, 73.6, 'gestures', 'GestureEvent', 'topic')
    box(ax, 54, 62.9, 76, 67.9, 'detections/image', 'Image, annotated', 'topic')
    for y in (82.5, 76.8, 71.1):
        arrow(ax, (81, 76.5), (76, y))
    arrow(ax, (81, 67.5), (76, 65.4))
    ax.text(39, 74, 'output topics: every\nmessage carries the\ninput image header;\n'
            'empty arrays when\nno hand is found', ha='center', va='center', fontsize=9.5,
            color='#8a6d00')


def training(ax):
    """Panel B: from the data sets to an exported model the backends load."""
    ax.text(1, 57, 'B.  Training  (hand_tracker_training)', fontsize=13, fontweight='bold',
            va='top')
    box(ax, 1, 27, 36, 52, 'datasets/  package', 'sample.py: Sample (image, px boxes, sides)\n'
        'egohands.py  yolo.py  coco.py: readers\nsplits.py: EgoHands split by video\n'
        'parts.py: config/data_splits.yaml parts\nsources.py: source options of every CLI\n'
        'stats.py  download.py  cli.py')
    box(ax, 40, 41, 66, 52, 'recipe.py  +  sources.py', 'many-domain mix, mosaic,\n'
        'copy-paste, hard negatives')
    box(ax, 40, 27, 66, 37.5, 'tfrecord', 'OD API TFRecords\n(hand-tracker-dataset\nconvert)')
    box(ax, 70, 38, 95, 52, 'input_pipeline', 'SSDDataset (Keras\nPyDataset, numpy+cv2)\n'
        '+ augment.py')
    box(ax, 99, 38, 125, 52, 'model', 'build_ssd: MobileNet v2\nanchors  box_coding\n'
        'losses  pretrained')
    box(ax, 129, 38, 157, 52, 'train', 'hand-tracker-train\nrun dir: checkpoints,\n'
        'curves, best.json')
    arrow(ax, (36, 46.5), (40, 46.5))
    arrow(ax, (30, 52), (76, 52), 'Samples (no --recipe)', rad=-0.12, label_at=0.5, dy=2.2)
    arrow(ax, (36, 32), (40, 32))
    arrow(ax, (66, 46.5), (70, 46.5))
    arrow(ax, (95, 45), (99, 45))
    arrow(ax, (125, 45), (129, 45))
    box(ax, 115, 3, 157, 31, 'export', 'hand-tracker-export (export.py)\n'
        'frozen_inference_graph.pb (OD API)\nmodel.tflite (float), model_int8.tflite\n'
        '(int8 calibrated on ~100 images)\nlabel_map.pbtxt, metrics.json')
    arrow(ax, (143, 38), (143, 31))
    box(ax, 84, 19, 111, 31, 'calibrate.py', 'score_threshold on val\nparts -> model_info.yaml',
        )
    arrow(ax, (115, 25), (111, 25))
    box(ax, 43, 3, 80, 19.5, 'eval_suite  /  evaluate', 'hand-tracker-eval (eval_cli.py)\n'
        'COCO metrics per source\n(config/eval_suite.yaml), PR curves,\nfailure sheets')
    box(ax, 1, 3, 36, 23, 'models/', 'frozen_inference_graph.pb\nmodel.tflite  model_int8.tflite\n'
        'label_map.pbtxt  model_info.yaml\nmetrics.json  MODEL_CARD.md\n'
        '-> loaded by backends (panel A)', 'file')
    arrow(ax, (115, 10), (80, 10), 'exported files', label_at=0.5, dy=0.5)
    arrow(ax, (43, 10), (36, 10))
    ax.text(97.5, 12.5, 'through backends.load_detector,\nas the node runs them', ha='center',
            va='bottom', fontsize=9, color='#616161', style='italic')


def legend(ax):
    """Draw the key to the box styles."""
    x = 40
    for style, text in (('module', 'module'), ('node', 'rclpy node'), ('topic', 'ROS topic'),
                        ('file', 'files')):
        s = STYLES[style]
        ax.add_patch(FancyBboxPatch((x, 57), 3, 2, boxstyle='round,pad=0,rounding_size=0.4',
                                    fc=s['fc'], ec=s['ec'], ls=s['ls'], lw=1.3))
        ax.text(x + 4, 58, text, va='center', fontsize=9.5)
        x += 10 + 1.1 * len(text)


def main(argv: list[str]) -> int:
    """Draw the diagram into argv[1] (default docs/architecture.png)."""
    out = Path(argv[1]) if len(argv) > 1 else OUT
    fig = plt.figure(figsize=(W / 10, H / 10), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(0, H)
    ax.axis('off')
    run_time(ax)
    training(ax)
    legend(ax)
    fig.savefig(out, dpi=100, facecolor='white')
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
