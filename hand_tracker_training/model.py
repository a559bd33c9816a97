"""
SSD MobileNet v2 on Keras 3, written with backend-neutral ops (TensorFlow, JAX or PyTorch).

The model takes float32 RGB images ``(B, S, S, 3)`` with values in ``[0, 255]`` (the whole
image stretched to ``S x S``), normalises them to ``[-1, 1]`` itself and returns a dict:
``'boxes'`` ``(B, A, 4)`` box codes (:mod:`hand_tracker_training.box_coding`) and
``'classes'`` ``(B, A, C)`` sigmoid logits, one row per anchor of
:func:`hand_tracker_training.anchors.generate_anchors`.

Layout (TF OD API ``ssd_mobilenet_v2`` / SSDLite): MobileNetV2 backbone, feature maps
``block_13_expand_relu`` (stride 16) and ``out_relu`` (1280 channels, stride 32), then extra
layers (1x1 conv, 3x3 depthwise stride 2, 1x1 conv, each with ReLU6) down to 1x1, and 3x3
prediction heads (depthwise 3x3 + 1x1 conv, or a plain 3x3 conv) on every level.

With ``anchors.first_stride == 8`` a finer level comes first: ``block_6_expand_relu`` (stride 8)
through a 1x1 lateral convolution, plus the stride-16 map through a 1x1 convolution and a
nearest-neighbour 2x upsampling (the top-down path of the FPNLite extractors, for one level),
then a depthwise 3x3 + 1x1 convolution. Its layers and heads are named ``*_s8``; the other
levels keep the names they have without it (``box_head_0`` is the stride-16 level either way),
so the weights of a stride-16 model load into the shared layers by name.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path

import cv2
from hand_tracker_ros.detections import Detections
from hand_tracker_training.anchors import AnchorConfig, feature_map_sizes, generate_anchors
from hand_tracker_training.box_coding import decode, SCALE_FACTORS
import keras
from keras import layers, ops
import numpy as np


#: Backbone layers used as SSD feature maps (Keras MobileNetV2 names), finest first.
BACKBONE_FEATURES = ('block_13_expand_relu', 'out_relu')
#: Overlap above which NMS drops the lower-scoring of two boxes, here and in the exported files
#: (the TF OD API ssd_mobilenet_v2 config's ``batch_non_max_suppression.iou_threshold``).
NMS_IOU = 0.6
#: The stride-8 backbone layer of the ``first_stride == 8`` level, and that level's width.
STRIDE8_FEATURE, STRIDE8_DEPTH = 'block_6_expand_relu', 128


@dataclass
class SSDConfig:
    """
    Everything that defines the network and its anchors (saved beside checkpoints).

    `weight_decay` is an L2 kernel regulariser on the layers added to the backbone; it is 0 by
    default: the training uses AdamW's decoupled decay instead. `batch_norm_momentum` replaces
    the 0.999 of Keras' MobileNetV2 batch norms, whose moving statistics would still be mostly
    their initial values after the few thousand steps of a CPU run (it only matters when the
    backbone's batch norms train, i.e. not with the frozen ones of a TFLite initialisation).
    """

    input_size: int = 300
    alpha: float = 1.0
    num_classes: int = 1
    extra_depths: tuple[int, ...] = (256, 128, 128, 64)
    separable_heads: bool = True
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    prior_probability: float = 0.01
    weight_decay: float = 0.0
    batch_norm_momentum: float = 0.99

    def __post_init__(self) -> None:
        needed = self.anchors.num_levels - len(BACKBONE_FEATURES) - self.stride8
        if needed < 0 or needed > len(self.extra_depths):
            raise ValueError(f'{self.anchors.num_levels} anchor levels need '
                             f'{max(needed, 0)} extra layers, extra_depths has '
                             f'{len(self.extra_depths)}')

    @property
    def stride8(self) -> int:
        """1 when the network has the stride-8 level, else 0."""
        return int(self.anchors.first_stride == 8)

    def to_json(self) -> str:
        d = asdict(self)
        d['anchors'] = self.anchors.to_dict()
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> 'SSDConfig':
        d = json.loads(text)
        d['anchors'] = AnchorConfig.from_dict(d['anchors'])
        d['extra_depths'] = tuple(d['extra_depths'])
        return cls(**d)

    def anchor_boxes(self) -> np.ndarray:
        """Return the anchors of this network (normalised [cy, cx, h, w])."""
        return generate_anchors(self.input_size, self.anchors)


def exported_config(model_path: str | Path) -> SSDConfig | None:
    """Return the network of an exported hand model (``metrics.json`` beside it), or None."""
    metrics = Path(model_path).parent / 'metrics.json'
    if not str(model_path).endswith('.tflite') or not metrics.is_file():
        return None
    config = json.loads(metrics.read_text(encoding='utf-8')).get('config')
    return SSDConfig.from_json(json.dumps(config)) if config else None


#: He initialisation of a depthwise 3x3 kernel (fan-in 9; Keras' default glorot counts the
#: channels too and starts depthwise layers ~20x too small).
_DEPTHWISE_INIT = keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / 9.0))


def _conv_relu(x, filters: int, kernel: int, stride: int, name: str, reg, depthwise=False):
    """
    Convolution + bias + ReLU6.

    No batch norm in the layers added to the backbone: with the small batches of CPU training
    a batch norm's moving statistics lag behind, and the model then scores differently in
    inference mode than it trained (measured: AP@0.5 0.74 in training mode, 0.03 in
    inference mode on the training frames).
    """
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding='same', depthwise_regularizer=reg,
                                   depthwise_initializer=_DEPTHWISE_INIT, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding='same', kernel_regularizer=reg,
                          kernel_initializer='he_normal', name=name)(x)
    return layers.ReLU(6.0, name=f'{name}_relu')(x)


def _head(x, filters: int, name: str, separable: bool, reg, bias_init='zeros'):
    if separable:
        x = _conv_relu(x, 0, 3, 1, f'{name}_dw', reg, depthwise=True)
        return layers.Conv2D(filters, 1, padding='same', kernel_regularizer=reg,
                             bias_initializer=bias_init, name=name)(x)
    return layers.Conv2D(filters, 3, padding='same', kernel_regularizer=reg,
                         bias_initializer=bias_init, name=name)(x)


def _stride8_level(fine, coarse, reg):
    """Return the stride-8 map: lateral 1x1 of `fine` + upsampled 1x1 of `coarse` (FPNLite)."""
    lateral = _conv_relu(fine, STRIDE8_DEPTH, 1, 1, 'lateral_s8', reg)
    top = _conv_relu(coarse, STRIDE8_DEPTH, 1, 1, 'topdown_s8', reg)
    top = layers.UpSampling2D(2, interpolation='nearest', name='topdown_s8_up')(top)
    if top.shape[1] != lateral.shape[1]:
        raise AssertionError(f'stride-8 map {lateral.shape} and upsampled stride-16 map '
                             f'{top.shape} differ (input size not a multiple of 16?)')
    x = layers.Add(name='merge_s8')([lateral, top])
    x = _conv_relu(x, 0, 3, 1, 'smooth_s8_dw', reg, depthwise=True)
    return _conv_relu(x, STRIDE8_DEPTH, 1, 1, 'smooth_s8', reg)


def build_ssd(config: SSDConfig = SSDConfig()) -> keras.Model:
    """Return the SSD MobileNet v2, randomly initialised (see :mod:`.pretrained`)."""
    s = config.input_size
    reg = keras.regularizers.L2(config.weight_decay) if config.weight_decay else None
    image = keras.Input((s, s, 3), name='image')
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name='normalise')(image)
    backbone = keras.applications.MobileNetV2(
        input_tensor=x, alpha=config.alpha, include_top=False, weights=None)
    for layer in backbone.layers:  # Keras' 0.999 needs far more steps than a CPU run has
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = config.batch_norm_momentum
    feats = [backbone.get_layer(n).output for n in BACKBONE_FEATURES]
    x = feats[-1]
    extra = config.anchors.num_levels - len(feats) - config.stride8
    for i, depth in enumerate(config.extra_depths[:extra]):
        x = _conv_relu(x, depth // 2, 1, 1, f'extra_{i}_1x1', reg)
        x = _conv_relu(x, 0, 3, 2, f'extra_{i}_3x3', reg, depthwise=True)
        x = _conv_relu(x, depth, 1, 1, f'extra_{i}_proj', reg)
        feats.append(x)
    names = [str(i) for i in range(len(feats))]
    if config.stride8:
        feats.insert(0, _stride8_level(backbone.get_layer(STRIDE8_FEATURE).output, feats[0],
                                       reg))
        names.insert(0, 's8')
    sizes = feature_map_sizes(s, config.anchors.num_levels, config.anchors.first_stride)
    for f, n in zip(feats, sizes):
        if f.shape[1] != n:
            raise AssertionError(f'feature map {f.shape} does not match anchors grid {n}')
    prior = keras.initializers.Constant(
        -math.log((1 - config.prior_probability) / config.prior_probability))
    box_out, cls_out = [], []
    for name, f, k in zip(names, feats, config.anchors.boxes_per_cell()):
        b = _head(f, 4 * k, f'box_head_{name}', config.separable_heads, reg)
        c = _head(f, config.num_classes * k, f'class_head_{name}', config.separable_heads,
                  reg, bias_init=prior)
        box_out.append(layers.Reshape((-1, 4), name=f'box_flat_{name}')(b))
        cls_out.append(layers.Reshape((-1, config.num_classes), name=f'class_flat_{name}')(c))
    boxes = layers.Concatenate(axis=1, name='boxes', dtype='float32')(box_out)
    classes = layers.Concatenate(axis=1, name='classes', dtype='float32')(cls_out)
    return keras.Model(image, {'boxes': boxes, 'classes': classes}, name='ssd_mobilenet_v2')


def decode_boxes(codes, anchors, scale_factors=SCALE_FACTORS):
    """Box codes ``(..., A, 4)`` -> normalised [ymin, xmin, ymax, xmax] (``keras.ops``)."""
    anchors = ops.convert_to_tensor(np.asarray(anchors, np.float32))
    sy, sx, sh, sw = scale_factors
    cy = codes[..., 0] / sy * anchors[:, 2] + anchors[:, 0]
    cx = codes[..., 1] / sx * anchors[:, 3] + anchors[:, 1]
    h = ops.exp(codes[..., 2] / sh) * anchors[:, 2]
    w = ops.exp(codes[..., 3] / sw) * anchors[:, 3]
    return ops.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def postprocess(codes: np.ndarray, logits: np.ndarray, anchors: np.ndarray, width: int,
                height: int, min_score: float = 0.01, iou_threshold: float = NMS_IOU,
                max_detections: int = 100) -> Detections:
    """
    One image's raw outputs -> :class:`Detections` in its pixels (class-agnostic NMS, cv2).

    Mirrors the exported graphs: sigmoid scores, best class per anchor, boxes clipped to the
    image, ``cv2.dnn.NMSBoxes`` at `iou_threshold`, at most `max_detections`.
    """
    boxes = np.clip(decode(codes, anchors), 0.0, 1.0)
    probs = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float32)))
    scores, classes = probs.max(axis=1), probs.argmax(axis=1) + 1
    px = boxes[:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
    keep = np.flatnonzero(scores >= min_score)
    if len(keep) == 0:
        return Detections()
    xywh = np.column_stack([px[keep, :2], px[keep, 2:] - px[keep, :2]])
    idx = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores[keep].tolist(), float(min_score),
                                      float(iou_threshold)),
                     np.int64).reshape(-1)
    sel = keep[idx[np.argsort(-scores[keep][idx], kind='stable')]][:max_detections]
    return Detections(px[sel], scores[sel], classes[sel])


def predict_detections(model: keras.Model, config: SSDConfig, images: Sequence[np.ndarray],
                       sizes: Sequence[tuple[int, int]], batch_size: int = 16,
                       **nms) -> list[Detections]:
    """
    Run the Keras model on network inputs ``(S, S, 3)`` float32 and post-process each.

    `sizes` are the ``(width, height)`` of the original images the detections refer to;
    `nms` goes to :func:`postprocess`.
    """
    anchors = config.anchor_boxes()
    out = []
    for i in range(0, len(images), batch_size):
        pred = model.predict_on_batch(np.stack(images[i:i + batch_size]))
        codes = np.asarray(keras.ops.convert_to_numpy(pred['boxes']))
        logits = np.asarray(keras.ops.convert_to_numpy(pred['classes']))
        for j in range(len(codes)):
            w, h = sizes[i + j]
            out.append(postprocess(codes[j], logits[j], anchors, w, h, **nms))
    return out
