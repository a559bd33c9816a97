"""
A small, deterministic, real detector for plumbing tests: the "bright cell" model.

It is made of ordinary TF ops with the TF OD API signature and exported through
:mod:`hand_tracker_training.export` exactly like the trained SSD, so the backends, the nodes,
evaluation and the benchmarks can be tested end to end before a trained model exists.

The model resizes the uint8 input to 300x300 (bilinear), averages the channels, and average-
pools 30x30 blocks into a 10x10 grid; a cell's score is its mean brightness / 255. Every cell
scoring above ``threshold`` (a variable, 0.5; frozen into the exports) is a detection of
class 1 whose box is the cell, at most 10, sorted by score by TFLite-builtin non-max
suppression (NonMaxSuppressionV5; cells do not overlap, so it suppresses nothing).
The frozen graph and float TFLite exports give the cell boxes exactly; the int8 export's boxes
are int8-quantized, within half a step (1/510 of the image side).

:func:`bright_cell_frame` paints grid cells of an image of any size so that exactly those cells
are detected, and :func:`expected_boxes` gives their boxes in that image's pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


GRID = 10           # cells per side
MODEL_SIZE = 300    # the model's internal (and TFLite input) resolution
MAX_DETECTIONS = 10
THRESHOLD = 0.5

# Normalised [ymin, xmin, ymax, xmax] of cell (row, col) at index row * GRID + col.
CELL_BOXES_NORM = np.array([[r / GRID, c / GRID, (r + 1) / GRID, (c + 1) / GRID]
                            for r in range(GRID) for c in range(GRID)], np.float32)


def cell_means(image):
    """
    Return the mean of each grid cell of a float ``[1, H, W, 3]`` tensor as the model sees it.

    Bilinear resize to MODEL_SIZE^2, channel mean, cell average pooling: ``[GRID * GRID]``,
    index row * GRID + col.
    """
    import tensorflow as tf

    x = tf.image.resize(image, [MODEL_SIZE, MODEL_SIZE], method='bilinear')
    gray = tf.reduce_mean(x, axis=-1, keepdims=True)
    cell = MODEL_SIZE // GRID
    return tf.reshape(tf.nn.avg_pool2d(gray, cell, cell, 'VALID'), [GRID * GRID])


def make_bright_cell_model(threshold: float = THRESHOLD):
    """
    Return the bright-cell detector as a ``tf.Module`` whose ``detect`` is the OD API function.

    ``detect(image)`` takes uint8 ``[1, H, W, 3]`` and returns ``detection_boxes``,
    ``detection_scores``, ``detection_classes`` and ``num_detections``;
    ``detect_cells(scores)`` does the same from the ``[GRID * GRID]`` cell scores. The score
    threshold is the variable ``threshold`` (so exporting it exercises variable freezing).
    """
    import tensorflow as tf

    class BrightCellModel(tf.Module):

        def __init__(self) -> None:
            super().__init__(name='bright_cell')
            self.threshold = tf.Variable(threshold, dtype=tf.float32, name='threshold')

        @tf.function
        def detect(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.detect_cells(cell_means(tf.cast(image, tf.float32)) / 255.0)

        def detect_cells(self, scores: tf.Tensor) -> dict[str, tf.Tensor]:
            boxes = tf.constant(CELL_BOXES_NORM)
            idx, top_scores, count = tf.raw_ops.NonMaxSuppressionV5(
                boxes=boxes, scores=scores, max_output_size=MAX_DETECTIONS, iou_threshold=0.5,
                score_threshold=self.threshold, soft_nms_sigma=0.0, pad_to_max_output_size=True)
            return {'detection_boxes': tf.gather(boxes, idx)[None],
                    'detection_scores': top_scores[None],
                    'detection_classes': tf.ones([1, MAX_DETECTIONS], tf.float32),
                    # Cast last: an int8 export then keeps the count exact (a float op after
                    # the cast would be quantized to the count range seen in calibration).
                    'num_detections': tf.cast(tf.reshape(count, [1]), tf.float32)}

    return BrightCellModel()


def _cell_span(index: int, length: int) -> tuple[int, int]:
    """First and past-the-end pixel of grid cell `index` along an axis of `length` pixels."""
    return round(index * length / GRID), round((index + 1) * length / GRID)


def bright_cell_frame(width: int, height: int, cells: Sequence[tuple[int, int]] = (),
                      value: int | Sequence[int] = 255) -> np.ndarray:
    """
    Return an RGB uint8 (height, width, 3) frame, black but for the grid `cells` (`value`).

    A cell (row, col) is the width/10 x height/10 pixel block the model sees as one grid cell.
    `value` is one grey level for all cells, or one per cell (its score is value / 255).
    """
    values = [value] * len(cells) if np.isscalar(value) else list(value)
    if len(values) != len(cells):
        raise ValueError(f'{len(cells)} cells but {len(values)} values')
    frame = np.zeros((height, width, 3), np.uint8)
    for (row, col), v in zip(cells, values):
        if not (0 <= row < GRID and 0 <= col < GRID):
            raise ValueError(f'cell {(row, col)} outside the {GRID}x{GRID} grid')
        y0, y1 = _cell_span(row, height)
        x0, x1 = _cell_span(col, width)
        frame[y0:y1, x0:x1] = v
    return frame


def expected_boxes(width: int, height: int, cells: Sequence[tuple[int, int]]) -> np.ndarray:
    """
    Return float32 (N, 4) pixel boxes [x_min, y_min, x_max, y_max] of `cells`.

    The boxes are in a width x height image, in the order given.
    """
    return np.array([[c * width / GRID, r * height / GRID, (c + 1) * width / GRID,
                      (r + 1) * height / GRID] for r, c in cells], np.float32).reshape(-1, 4)


def representative_frames(count: int = 24, seed: int = 0) -> list[np.ndarray]:
    """Calibration frames for int8 export: MODEL_SIZE^2 frames with random cells and levels."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        n = int(rng.integers(0, 6))
        flat = rng.choice(GRID * GRID, size=n, replace=False)
        cells = [(int(i) // GRID, int(i) % GRID) for i in flat]
        frames.append(bright_cell_frame(MODEL_SIZE, MODEL_SIZE, cells,
                                        [int(v) for v in rng.integers(0, 256, size=n)]))
    frames.append(bright_cell_frame(MODEL_SIZE, MODEL_SIZE, [(r, c) for r in range(GRID)
                                                             for c in range(GRID)]))
    return frames


def build_bright_cell_models(out_dir: str | Path) -> dict[str, Path]:
    """
    Export the bright-cell model into `out_dir`; returns the paths by kind.

    Keys: ``frozen_graph`` (``bright_cell.pb``), ``tflite`` (float, ``bright_cell.tflite``),
    ``tflite_int8`` (``bright_cell_int8.tflite``), ``label_map`` (``label_map.pbtxt``,
    ``{1: 'hand'}``, found by the backends beside the models).
    """
    from hand_tracker_ros.label_map import write_label_map
    from hand_tracker_training.export import export_frozen_graph, export_tflite

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = make_bright_cell_model()
    return {
        'frozen_graph': export_frozen_graph(model.detect, out / 'bright_cell.pb'),
        'tflite': export_tflite(model.detect, out / 'bright_cell.tflite', MODEL_SIZE),
        'tflite_int8': export_tflite(model.detect, out / 'bright_cell_int8.tflite', MODEL_SIZE,
                                     representative_images=representative_frames()),
        'label_map': write_label_map(out / 'label_map.pbtxt', {1: 'hand'}),
    }
