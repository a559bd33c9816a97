"""
Pretrained initialisation of the SSD MobileNet v2: transfer learning, not training from scratch.

Three sources, tried by :func:`initialise`:

* ``'imagenet'``: Keras' own ImageNet MobileNetV2 weights (needs a download; without network it
  fails with :class:`PretrainedUnavailable` and says what to pass instead);
* a MobileNetV2 ``.tflite`` (e.g. the int8 ImageNet classifier in ``shared/weights``), read with
  LiteRT: its CONV_2D / DEPTHWISE_CONV_2D operators, in graph order, are the Keras MobileNetV2
  convolutions in layer order; int8 per-channel weights and int32 biases are dequantized and
  the folded batch norm is undone (gamma = sqrt(var + eps), beta = folded bias, mean 0, var 1).
  A hand model exported by this package (``model.tflite``) also passes on its SSD layers
  (extra layers, heads), matched by the layer names its tensors carry where shapes agree;
* a previous hand model: a ``.keras`` / ``.weights.h5`` checkpoint of this package (fine-tuning).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import re

import keras
import numpy as np


class PretrainedUnavailable(RuntimeError):
    """The requested pretrained weights cannot be obtained (e.g. no network for 'imagenet')."""


#: Keras MobileNetV2 convolution layer names (any alpha): the backbone, in build order.
_BACKBONE_CONV = re.compile(r'^(Conv1|expanded_conv_(depthwise|project)|'
                            r'block_\d+_(expand|depthwise|project)|Conv_1)$')


@dataclass
class ConvWeights:
    """One dequantized TFLite convolution in Keras layout."""

    name: str
    depthwise: bool
    kernel: np.ndarray  # Conv2D (kh, kw, in, out); DepthwiseConv2D (kh, kw, in, 1)
    bias: np.ndarray


def _dequantize(q: np.ndarray, qp: dict, axis: int) -> np.ndarray:
    scales = np.asarray(qp['scales'], np.float32)
    zeros = np.asarray(qp['zero_points'], np.float32)
    if scales.size == 0:
        return q.astype(np.float32)
    shape = [1] * q.ndim
    if scales.size > 1:
        shape[axis] = -1
    return (q.astype(np.float32) - zeros.reshape(shape)) * scales.reshape(shape)


def read_tflite_convolutions(path: str | Path) -> list[ConvWeights]:
    """Every CONV_2D / DEPTHWISE_CONV_2D of a TFLite model, in operator order, dequantized."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    details = {t['index']: t for t in interp.get_tensor_details()}
    convs = []
    for op in interp._get_ops_details():
        if op['op_name'] not in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
            continue
        inp, w_idx, b_idx = (int(i) for i in op['inputs'][:3])
        w_det = details[w_idx]
        w_qp = w_det['quantization_parameters']
        w = _dequantize(interp.get_tensor(w_idx), w_qp, w_qp['quantized_dimension'])
        b_raw = interp.get_tensor(b_idx)
        if b_raw.dtype == np.int32:  # bias scale = input scale * weight scale (per channel)
            in_scale = float(details[inp]['quantization_parameters']['scales'][0])
            b = b_raw.astype(np.float32) * in_scale * np.asarray(w_qp['scales'], np.float32)
        else:
            b = b_raw.astype(np.float32)
        if op['op_name'] == 'CONV_2D':  # (out, kh, kw, in) -> (kh, kw, in, out)
            convs.append(ConvWeights(w_det['name'], False, w.transpose(1, 2, 3, 0), b))
        else:  # (1, kh, kw, in * mult) -> (kh, kw, in, mult)
            convs.append(ConvWeights(w_det['name'], True, w[0][..., None], b))
    return convs


def backbone_convolutions(model: keras.Model) -> list[tuple[keras.layers.Layer,
                                                            keras.layers.Layer]]:
    """(convolution, its BatchNormalization) pairs of the MobileNetV2 layers of `model`."""
    layers = {layer.name: layer for layer in model.layers}
    pairs = []
    for layer in model.layers:
        if not _BACKBONE_CONV.match(layer.name):
            continue
        bn = next((layers[n] for n in (f'{layer.name}_BN', f'bn_{layer.name}',
                                       f'{layer.name}_bn') if n in layers), None)
        if bn is None:
            raise ValueError(f'no BatchNormalization found for {layer.name}')
        pairs.append((layer, bn))
    return pairs


def _set_folded(conv, bn, kernel: np.ndarray, bias: np.ndarray) -> None:
    if tuple(conv.kernel.shape) != kernel.shape:
        raise ValueError(f'{conv.name}: Keras kernel {tuple(conv.kernel.shape)} != TFLite '
                         f'{kernel.shape} (a MobileNetV2 of another width?)')
    conv.kernel.assign(kernel)
    bn.gamma.assign(np.full_like(bias, np.sqrt(1.0 + bn.epsilon)))
    bn.beta.assign(bias)
    bn.moving_mean.assign(np.zeros_like(bias))
    bn.moving_variance.assign(np.ones_like(bias))


def load_tflite_backbone(model: keras.Model, path: str | Path,
                         classifier: keras.layers.Dense | None = None,
                         freeze_batch_norm: bool = True) -> int:
    """
    Copy the MobileNetV2 weights of a TFLite model into the backbone layers of `model`.

    The TFLite model must have the backbone's convolutions first, in the Keras order (as a
    MobileNetV2 classifier has). With `classifier`, the TFLite model's next convolution (the
    1x1 logits conv of the classifier) is loaded into that Dense layer. Returns the number of
    convolutions loaded.

    The unfolded batch norms (mean 0, variance 1) reproduce the folded convolution only in
    inference mode: in training mode a BatchNormalization standardises with the batch's own
    statistics and would wipe out the learnt per-channel scales. With `freeze_batch_norm`
    (the default) the backbone's batch norms are made non-trainable, which in Keras 3 also
    runs them in inference mode; the convolutions themselves stay trainable.
    """
    convs = read_tflite_convolutions(path)
    pairs = backbone_convolutions(model)
    if len(convs) < len(pairs):
        raise ValueError(f'{path}: {len(convs)} convolutions, the backbone has {len(pairs)}')
    for (conv, bn), w in zip(pairs, convs):
        if isinstance(conv, keras.layers.DepthwiseConv2D) != w.depthwise:
            raise ValueError(f'{conv.name} and TFLite {w.name} differ in kind')
        _set_folded(conv, bn, w.kernel, w.bias)
        bn.trainable = not freeze_batch_norm
    if classifier is not None:
        head = convs[len(pairs)]
        classifier.kernel.assign(head.kernel.reshape(head.kernel.shape[-2:]))
        classifier.bias.assign(head.bias)
    return len(pairs)


#: The scope of a TFLite convolution's tensor name ('.../extra_0_proj_1/convolution'): the Keras
#: layer name, with or without the '_<n>' that the SavedModel's tracing appended.
_TFLITE_LAYER = re.compile(r'([A-Za-z0-9_]+)/(?:convolution|depthwise)(?:;|$)')


def load_tflite_named(model: keras.Model, convs: Sequence[ConvWeights]) -> int:
    """
    Copy TFLite convolutions into the non-backbone layers of `model` of the same name and shape.

    For a hand model exported by this package: its tensors are named after the Keras layers
    (``extra_0_proj``, ``box_head_2``, ...). Layers without a match keep their initialisation
    (e.g. the heads of a level whose anchors changed). Returns the number of layers loaded.
    """
    layers = {layer.name: layer for layer in model.layers}
    n = 0
    for w in convs:
        m = _TFLITE_LAYER.search(w.name)
        scope = m.group(1) if m else ''
        layer = layers.get(scope) or layers.get(re.sub(r'_\d+$', '', scope))
        if layer is None or _is_backbone_layer(layer.name):
            continue
        kernel = getattr(layer, 'kernel', None)
        if kernel is None or w.depthwise != isinstance(layer, keras.layers.DepthwiseConv2D):
            continue
        if tuple(kernel.shape) == w.kernel.shape and tuple(layer.bias.shape) == w.bias.shape:
            kernel.assign(w.kernel)
            layer.bias.assign(w.bias)
            n += 1
    return n


def load_keras_imagenet(model: keras.Model, alpha: float) -> int:
    """Copy Keras' ImageNet MobileNetV2 weights (downloaded) into `model`'s backbone layers."""
    try:
        ref = keras.applications.MobileNetV2(weights='imagenet', include_top=False,
                                             alpha=alpha, input_shape=(224, 224, 3))
    except Exception as e:  # no network, proxy, unsupported alpha: all mean "not available"
        raise PretrainedUnavailable(
            f'Keras ImageNet MobileNetV2 weights could not be downloaded ({type(e).__name__}: '
            f'{e}). Pass a local MobileNetV2 .tflite instead, e.g. '
            f'--init ../shared/weights/mobilenet_v2_1.0_224_imagenet_int8.tflite') from e
    ref_layers = {layer.name: layer for layer in ref.layers}
    n = 0
    for layer in model.layers:
        src = ref_layers.get(layer.name)
        if src is not None and src.get_weights() and _is_backbone_layer(layer.name):
            layer.set_weights(src.get_weights())
            n += 1
    return n


def _is_backbone_layer(name: str) -> bool:
    base = re.sub(r'_(BN|bn)$', '', name.removeprefix('bn_'))
    return bool(_BACKBONE_CONV.match(base))


def load_checkpoint(model: keras.Model, path: str | Path) -> int:
    """
    Load a hand model of this package (``.keras`` or ``.weights.h5``) into `model`.

    Layers are matched by name and only where shapes agree, so a model of another input size
    (or another anchor set) still passes on its backbone and extra layers. Returns the number
    of layers loaded.
    """
    path = Path(path)
    if path.suffix == '.keras':
        src = keras.saving.load_model(path, compile=False)
    elif path.name.endswith('.weights.h5'):
        from hand_tracker_training.model import build_ssd, SSDConfig
        cfg_path = path.parent / 'config.json'
        if not cfg_path.exists():
            raise FileNotFoundError(f'{path}: .weights.h5 needs its config.json beside it')
        src = build_ssd(SSDConfig.from_json(cfg_path.read_text()))
        src.load_weights(path)
    else:
        raise ValueError(f'{path}: expected a .keras, .weights.h5 or .tflite file')
    src_layers = {layer.name: layer for layer in src.layers}
    n = 0
    for layer in model.layers:
        s = src_layers.get(layer.name)
        if s is None or not layer.weights:
            continue
        w = s.get_weights()
        if [a.shape for a in w] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(w)
            n += 1
    return n


def freeze_before(model: keras.Model, layer_name: str) -> int:
    """
    Make every layer of `model` before `layer_name` non-trainable.

    The early, generic ImageNet features are kept as they are, and no backward pass runs
    through the costly high-resolution layers. Returns the number of layers frozen.
    """
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f'no layer {layer_name!r} in {model.name}')
    frozen = model.layers[:names.index(layer_name)]
    for layer in frozen:
        layer.trainable = False
    return len(frozen)


def initialise(model: keras.Model, init: str, alpha: float = 1.0) -> str:
    """
    Initialise `model` from `init` ('imagenet', '*.tflite', a checkpoint or 'scratch').

    Returns a one-line description of what was loaded.
    """
    if init == 'scratch':
        return 'random initialisation (from scratch)'
    if init == 'imagenet':
        return f'Keras ImageNet MobileNetV2: {load_keras_imagenet(model, alpha)} layers'
    if not Path(init).exists():
        raise FileNotFoundError(f'--init {init}: no such file')
    if init.endswith('.tflite'):
        n = load_tflite_backbone(model, init)
        named = load_tflite_named(model, read_tflite_convolutions(init)[n:])
        return f'{init}: {n} backbone convolutions' + (f', {named} SSD layers' if named else '')
    return f'{init}: {load_checkpoint(model, init)} layers'
