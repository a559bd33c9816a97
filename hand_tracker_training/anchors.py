"""
SSD anchors (default boxes) as in the TF Object Detection API's ``ssd_anchor_generator``.

Anchors are numpy ``float32 (A, 4)`` arrays of normalised ``[cy, cx, h, w]`` (fractions of the
network input, which is the whole image stretched to ``S x S``). Levels are ordered from the
finest feature map (stride 16, or stride 8 with ``first_stride=8``) to the coarsest (1 x 1);
within a level, anchors are ordered by cell (row-major) then by box kind, which is the order of
the flattened prediction heads of :mod:`hand_tracker_training.model`.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class AnchorConfig:
    """
    Scales and aspect ratios of the anchors (OD API ``ssd_anchor_generator`` fields).

    ``num_levels`` feature maps get scales linearly spaced in ``[min_scale, max_scale]``, or
    the explicit ``scales`` (one per level, the OD API's ``scales`` field); each level has one
    box per aspect ratio at its scale plus one square box at the geometric mean of its scale
    and the next one. With ``reduce_boxes_in_lowest_layer`` the finest level only has
    ``(lowest_scale, 1)``, ``(min_scale, 2)`` and ``(min_scale, 0.5)``, as in the OD API.

    ``first_stride`` is the stride of the finest level: 16 (MobileNetV2's ``block_13``, the OD
    API's ``ssd_mobilenet_v2``) or 8 (``block_6`` with a top-down path from the stride-16 map,
    as in the FPNLite feature extractors), for hands a few percent of the image tall.
    """

    num_levels: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    reduce_boxes_in_lowest_layer: bool = True
    lowest_scale: float = 0.1
    interpolated_scale_aspect_ratio: float = 1.0
    first_stride: int = 16
    explicit_scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.first_stride not in (8, 16):
            raise ValueError(f'first_stride must be 8 or 16, got {self.first_stride}')
        if self.explicit_scales and len(self.explicit_scales) != self.num_levels:
            raise ValueError(f'{len(self.explicit_scales)} explicit_scales for '
                             f'{self.num_levels} levels')

    def scales(self) -> list[float]:
        """Return the scale of each level, plus 1.0 appended for the last interpolated box."""
        if self.explicit_scales:
            return [float(x) for x in self.explicit_scales] + [1.0]
        n = self.num_levels
        s = [self.min_scale + (self.max_scale - self.min_scale) * i / (n - 1) if n > 1
             else self.min_scale for i in range(n)]
        return s + [1.0]

    def level_boxes(self, level: int) -> list[tuple[float, float]]:
        """(scale, aspect_ratio) of the boxes of one cell of `level`."""
        scales = self.scales()
        if level == 0 and self.reduce_boxes_in_lowest_layer:
            return [(self.lowest_scale, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        boxes = [(scales[level], ar) for ar in self.aspect_ratios]
        if self.interpolated_scale_aspect_ratio > 0:
            boxes.append((math.sqrt(scales[level] * scales[level + 1]),
                          self.interpolated_scale_aspect_ratio))
        return boxes

    def boxes_per_cell(self) -> list[int]:
        """Return the number of anchors per feature-map cell of each level (head depth / 4)."""
        return [len(self.level_boxes(i)) for i in range(self.num_levels)]

    def to_dict(self) -> dict:
        """JSON-friendly form (saved beside checkpoints)."""
        return {'num_levels': self.num_levels, 'min_scale': self.min_scale,
                'max_scale': self.max_scale, 'aspect_ratios': list(self.aspect_ratios),
                'reduce_boxes_in_lowest_layer': self.reduce_boxes_in_lowest_layer,
                'lowest_scale': self.lowest_scale,
                'interpolated_scale_aspect_ratio': self.interpolated_scale_aspect_ratio,
                'first_stride': self.first_stride,
                'explicit_scales': list(self.explicit_scales)}

    @classmethod
    def from_dict(cls, d: dict) -> 'AnchorConfig':
        d = dict(d)
        d['aspect_ratios'] = tuple(d['aspect_ratios'])
        d['explicit_scales'] = tuple(d.get('explicit_scales', ()))
        return cls(**d)


def feature_map_sizes(input_size: int, num_levels: int = 6, first_stride: int = 16) -> list[int]:
    """
    Side of each SSD feature map for an ``input_size`` square input.

    The first levels are MobileNetV2's maps (stride 8 when `first_stride` is 8, then 16 and
    32), and every further level a stride-2 'same' convolution of the previous one (so
    ``ceil(n / 2)``, down to 1).
    """
    strides = (8, 16, 32) if first_stride == 8 else (16, 32)
    sizes = [math.ceil(input_size / s) for s in strides]
    while len(sizes) < num_levels:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes[:num_levels]


def generate_anchors(input_size: int, config: AnchorConfig = AnchorConfig()) -> np.ndarray:
    """All anchors of an ``input_size`` network: ``float32 (A, 4)`` normalised [cy, cx, h, w]."""
    out = []
    sizes = feature_map_sizes(input_size, config.num_levels, config.first_stride)
    for level, n in enumerate(sizes):
        kinds = np.array([(s / math.sqrt(ar), s * math.sqrt(ar))
                          for s, ar in config.level_boxes(level)], np.float32)  # (K, 2) h, w
        centres = (np.arange(n, dtype=np.float32) + 0.5) / n
        cy, cx = np.meshgrid(centres, centres, indexing='ij')
        grid = np.stack([cy.ravel(), cx.ravel()], axis=1)  # (n*n, 2)
        level_anchors = np.concatenate([
            np.repeat(grid, len(kinds), axis=0),
            np.tile(kinds, (len(grid), 1))], axis=1)
        out.append(level_anchors)
    return np.concatenate(out, axis=0).astype(np.float32)
