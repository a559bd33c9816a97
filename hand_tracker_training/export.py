"""Export any detection `tf.function` as a TF OD API frozen graph or a TFLite model.

Both exports keep the TF Object Detection API contract that
:mod:`hand_tracker_ros.backends` loads:

* input: uint8 RGB images, ``[1, H, W, 3]`` (any size for the frozen graph, ``[1, S, S, 3]``
  for TFLite);
* outputs ``detection_boxes`` ``[1, N, 4]`` normalised ``[ymin, xmin, ymax, xmax]``,
  ``detection_scores`` ``[1, N]``, ``detection_classes`` ``[1, N]`` (1-based ids, float) and
  ``num_detections`` ``[1]`` (float), the valid detections being the first ``num_detections``.

The detection function is generic: anything returning that dict (the SSD of
:mod:`hand_tracker_training.model`, the fixture models of the tests) can be exported.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

INPUT_NAME = 'image_tensor'
OUTPUT_NAMES = ('detection_boxes', 'detection_scores', 'detection_classes', 'num_detections')


def _od_api_outputs(detect_fn: Callable, image: tf.Tensor) -> dict[str, tf.Tensor]:
    """Call `detect_fn` and check/cast its result to the OD API output dict (float32)."""
    out = detect_fn(image)
    if not isinstance(out, dict):
        raise TypeError(f'detect_fn must return a dict with keys {list(OUTPUT_NAMES)}, '
                        f'got {type(out).__name__}')
    missing = [k for k in OUTPUT_NAMES if k not in out]
    if missing:
        raise ValueError(f'detect_fn output lacks {missing} (has {sorted(out)})')
    return {k: tf.cast(out[k], tf.float32) for k in OUTPUT_NAMES}


def _frozen_function(detect_fn: Callable, shape: list[int | None]
                     ) -> tuple[tf.types.experimental.ConcreteFunction, list[str]]:
    """(frozen concrete function image_tensor (uint8 `shape`) -> flat OD API outputs, the
    output keys in the order of its outputs). Variables become constants."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    spec = tf.TensorSpec(shape, tf.uint8, name=INPUT_NAME)
    concrete = tf.function(lambda image_tensor: _od_api_outputs(detect_fn, image_tensor)) \
        .get_concrete_function(spec)
    # The frozen function keeps the outputs' order but not their dict structure.
    keys = tf.nest.pack_sequence_as(concrete.structured_outputs,
                                    list(range(len(concrete.outputs))))
    order = sorted(keys, key=keys.get)
    return convert_variables_to_constants_v2(concrete), order


_INPUT_REF = re.compile(r'^(\^?)([^:]+)(:\d+)?$')


def _rename_nodes(graph_def: tf.compat.v1.GraphDef, renames: dict[str, str]) -> None:
    """Rename nodes of `graph_def` in place, rewriting every input that refers to them."""
    for node in graph_def.node:
        if node.name in renames:
            node.name = renames[node.name]
        for i, ref in enumerate(node.input):
            control, name, port = _INPUT_REF.match(ref).groups()
            if name in renames:
                node.input[i] = f'{control}{renames[name]}{port or ""}'


def export_frozen_graph(detect_fn: Callable, path: str | Path) -> Path:
    """Write `detect_fn` as a TF OD API style frozen inference graph (a GraphDef ``.pb``).

    `detect_fn` (a ``tf.function`` or plain callable of TF ops) takes one uint8 tensor
    ``[1, None, None, 3]`` and returns the OD API output dict (see the module docstring).
    Its variables are frozen into constants; the input placeholder is named ``image_tensor``
    and the outputs ``detection_boxes``, ``detection_scores``, ``detection_classes``,
    ``num_detections`` (float32), so the file loads like a ``frozen_inference_graph.pb``
    of the TF1 OD API (``hand_tracker_ros.backends.FrozenGraphDetector``). Returns the path.
    """
    frozen, keys = _frozen_function(detect_fn, [1, None, None, 3])
    graph_def = frozen.graph.as_graph_def()

    # The function's own ops may already use the reserved names: move them aside, then name
    # the input placeholder and add one Identity per output with the exact OD API names.
    reserved = {INPUT_NAME, *OUTPUT_NAMES}
    taken = {n.name for n in graph_def.node}
    input_node = frozen.inputs[0].op.name
    renames = {}
    for name in sorted(taken & reserved):
        if name == input_node == INPUT_NAME:
            continue
        k = 0
        while f'{name}_orig{k}' in taken:
            k += 1
        renames[name] = f'{name}_orig{k}'
    if input_node != INPUT_NAME:
        renames[input_node] = INPUT_NAME
    _rename_nodes(graph_def, renames)

    by_key = dict(zip(keys, frozen.outputs))
    for key in OUTPUT_NAMES:
        tensor = by_key[key]
        op_name, port = tensor.name.rsplit(':', 1)
        node = graph_def.node.add(name=key, op='Identity', input=[
            f'{renames.get(op_name, op_name)}:{port}'])
        node.attr['T'].type = tf.float32.as_datatype_enum

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph_def.SerializeToString())
    return path


def export_tflite(detect_fn_fixed: Callable, path: str | Path, input_size: int,
                  representative_images: Iterable[np.ndarray] | None = None) -> Path:
    """Write `detect_fn_fixed` as a TFLite model with a uint8 ``[1, S, S, 3]`` input.

    `detect_fn_fixed` takes a uint8 tensor ``[1, input_size, input_size, 3]`` and returns the
    OD API output dict. The model's signature outputs are named ``detection_boxes`` etc., which
    is how ``hand_tracker_ros.backends.TFLiteDetector`` finds them.

    Without `representative_images` the model is float (uint8 input, float32 maths). With them
    (an iterable of uint8 ``(S, S, 3)`` RGB images, e.g. a few hundred training images) the
    model is int8 post-training quantized (``Optimize.DEFAULT`` calibrated on those images);
    ops without an int8 kernel, such as non-max suppression, stay float. The input stays raw
    uint8 and the outputs float32. Note that the ops after NMS are quantized too where they
    can be (gathering boxes, reshaping scores): output boxes are then within half an int8 step
    (1/510 of the image side) and values are clipped to the ranges seen in calibration, so
    calibrate with images that give the full range of detections, and make ``num_detections``
    ``tf.cast(count, tf.float32)`` as the last op (a cast output stays exact).

    Only TFLite builtin ops are allowed (no Flex / Select TF ops), so NMS must be written with
    ops TFLite has builtins for (e.g. ``tf.image.non_max_suppression_with_scores`` or
    ``tf.raw_ops.NonMaxSuppressionV5``). The written model is loaded with the LiteRT interpreter
    and run once on a black image; a failure there raises RuntimeError. Returns the path.
    """
    size = int(input_size)
    if size <= 0:
        raise ValueError(f'input_size must be positive, got {input_size!r}')
    images = None if representative_images is None else [
        _representative_image(img, size) for img in representative_images]
    if images is not None and not images:
        raise ValueError('representative_images is empty')
    frozen, keys = _frozen_function(detect_fn_fixed, [1, size, size, 3])
    serving = tf.function(lambda image_tensor: dict(zip(keys, frozen(image_tensor))),
                          input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8,
                                                         name=INPUT_NAME)])
    with tempfile.TemporaryDirectory(prefix='tflite_export_') as saved_model:
        # Through a SavedModel, so the TFLite model has a signature with the output names.
        tf.saved_model.save(tf.Module(), saved_model, signatures={'serving_default': serving})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        model = _convert(converter, images, path)
    _check_runs(model, size, path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model)
    return path


def _convert(converter: tf.lite.TFLiteConverter, images: list[np.ndarray] | None,
             path: str | Path) -> bytes:
    """Convert with TFLite builtins only; int8 post-training quantization when `images`."""
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if images is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([img[None]] for img in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and friends
        # Its message is a long MLIR dump; the lines naming the unsupported ops say it all.
        text = str(exc)
        ops = [line.strip() for line in text.splitlines()
               if re.match(r'\s*(Custom|Flex|TF Select) ops:', line)]
        raise RuntimeError(f'TFLite conversion for {path} failed (only TFLite builtin ops are '
                           f'allowed): {"; ".join(ops) or text[:1000]}') from exc


def _representative_image(img: np.ndarray, size: int) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.shape != (size, size, 3):
        raise ValueError(f'representative images must be uint8 ({size}, {size}, 3), '
                         f'got {img.dtype} {img.shape}')
    return img


def _check_runs(model: bytes, size: int, path: str | Path) -> None:
    """Run the converted model once with the LiteRT interpreter the backends use."""
    from ai_edge_litert.interpreter import Interpreter
    try:
        interpreter = Interpreter(model_content=model, num_threads=1)
        runner = interpreter.get_signature_runner()
        out = runner(**{INPUT_NAME: np.zeros((1, size, size, 3), np.uint8)})
    except Exception as exc:  # LiteRT reports unresolved ops etc. as ValueError/RuntimeError
        raise RuntimeError(f'the TFLite model for {path} does not run in LiteRT: {exc}') from exc
    missing = [k for k in OUTPUT_NAMES if k not in out]
    if missing:
        raise RuntimeError(f'the TFLite model for {path} lacks signature outputs {missing}')
