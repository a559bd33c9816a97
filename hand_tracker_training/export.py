"""
Export a hand detector: OD API frozen graph and TFLite files, and ``hand-tracker-export``.

:func:`export_frozen_graph` and :func:`export_tflite` write any detection `tf.function`;
:func:`make_detect_fn` makes one of the trained SSD, :func:`export_model` writes and evaluates
all files of a training run, and :func:`main` is the ``hand-tracker-export`` command.

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

import argparse
from collections.abc import Callable, Iterable, Sequence
import json
from pathlib import Path
import re
import sys
import tempfile

from hand_tracker_ros.label_map import write_label_map
from hand_tracker_ros.vocabulary import HAND_LABEL_MAP
from hand_tracker_training.datasets.sources import add_source_options, training_samples
from hand_tracker_training.input_pipeline import read_rgb, to_network_input
from hand_tracker_training.model import build_ssd, decode_boxes, NMS_IOU, SSDConfig
import keras
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
    """
    Freeze `detect_fn` for image_tensor (uint8 `shape`): variables become constants.

    Returns (frozen concrete function -> flat OD API outputs, the output keys in the order of
    its outputs).
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

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
    """
    Write `detect_fn` as a TF OD API style frozen inference graph (a GraphDef ``.pb``).

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
    """
    Write `detect_fn_fixed` as a TFLite model with a uint8 ``[1, S, S, 3]`` input.

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


# ----------------------------------------------------------------------------- the SSD
def make_detect_fn(model: keras.Model, config: SSDConfig, fixed_size: bool = False,
                   max_detections: int = 100, iou_threshold: float = NMS_IOU,
                   min_score: float = 0.01):
    """
    Return a ``tf.function`` of the whole detector in the TF OD API form (TensorFlow backend).

    uint8 ``[1, H, W, 3]`` (``[1, S, S, 3]`` with `fixed_size`) -> resize to ``S x S``,
    the model (which normalises), box decoding, sigmoid, class-agnostic NMS
    (``NonMaxSuppressionV5``, a TFLite builtin), padded to `max_detections`.
    """
    s = config.input_size
    anchors = config.anchor_boxes()
    shape = [1, s, s, 3] if fixed_size else [1, None, None, 3]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.uint8)])
    @tf.autograph.experimental.do_not_convert  # straight-line TF ops: nothing to convert
    def detect(image):
        x = tf.image.resize(tf.cast(image, tf.float32), (s, s))
        out = model(x, training=False)
        boxes = tf.clip_by_value(decode_boxes(out['boxes'][0], anchors), 0.0, 1.0)
        probs = tf.sigmoid(out['classes'][0])
        scores = tf.reduce_max(probs, axis=1)
        classes = tf.cast(tf.argmax(probs, axis=1), tf.float32) + 1.0
        idx, sel_scores, valid = tf.raw_ops.NonMaxSuppressionV5(
            boxes=boxes, scores=scores, max_output_size=max_detections,
            iou_threshold=iou_threshold, score_threshold=min_score, soft_nms_sigma=0.0,
            pad_to_max_output_size=True)
        mask = tf.cast(tf.range(max_detections) < valid, tf.float32)
        return {'detection_boxes': (tf.gather(boxes, idx) * mask[:, None])[None],
                'detection_scores': (sel_scores * mask)[None],
                'detection_classes': (tf.gather(classes, idx) * mask)[None],
                'num_detections': tf.cast(valid, tf.float32)[None]}

    return detect


def export_model(model: keras.Model, config: SSDConfig, out: Path,
                 calibration_images: Sequence[np.ndarray], eval_samples: Sequence = (),
                 keras_metrics: dict | None = None,
                 recall_floor: float | None = None, nms_iou: float = NMS_IOU) -> dict:
    """
    Write the frozen graph, float and int8 TFLite, label map and ``metrics.json``.

    `nms_iou`: overlap above which the in-graph non-max suppression drops the lower-scoring of
    two boxes (the same in all three files).

    Each exported file is loaded back with ``hand_tracker_ros.backends.load_detector`` and
    evaluated on `eval_samples` (COCO metrics + latency); `calibration_images` (RGB uint8
    ``(S, S, 3)``, ~100 training images) calibrate the int8 model. Returns the metrics dict.
    """
    if keras.backend.backend() != 'tensorflow':
        raise RuntimeError(f'export needs the TensorFlow backend (KERAS_BACKEND=tensorflow), '
                           f'this is {keras.backend.backend()}: train here, export there')
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_training.evaluate import evaluate_detector

    out.mkdir(parents=True, exist_ok=True)
    s = config.input_size
    label_map = write_label_map(out / 'label_map.pbtxt', HAND_LABEL_MAP)
    files = {}
    print('exporting frozen graph ...', flush=True)
    files['frozen_graph'] = export_frozen_graph(
        make_detect_fn(model, config, iou_threshold=nms_iou), out / 'frozen_inference_graph.pb')
    fixed = make_detect_fn(model, config, fixed_size=True, iou_threshold=nms_iou)
    print('exporting float TFLite ...', flush=True)
    files['tflite'] = export_tflite(fixed, out / 'model.tflite', s)
    print(f'exporting int8 TFLite (calibrated on {len(calibration_images)} images) ...',
          flush=True)
    files['tflite_int8'] = export_tflite(fixed, out / 'model_int8.tflite', s,
                                         representative_images=calibration_images)
    metrics: dict = {'config': json.loads(config.to_json()), 'nms_iou': nms_iou,
                     'files': {k: {'path': p.name, 'bytes': p.stat().st_size}
                               for k, p in files.items()}}
    if keras_metrics is not None:
        metrics['keras'] = keras_metrics
    for key, path in files.items():
        if not eval_samples:
            break
        detector = load_detector(str(path), str(label_map))
        m, _ = evaluate_detector(detector, eval_samples, progress=False)
        metrics[key] = {k: v for k, v in m.items() if k != 'precision'}
        print(f'{path.name}: AP@0.5 {m["AP50"]:.4f}  AP {m["AP"]:.4f}  '
              f'median latency {m["latency_ms_median"]:.1f} ms', flush=True)
    if recall_floor is not None and eval_samples:
        metrics['operating_point'] = write_operating_point(
            files['tflite'], label_map, eval_samples, recall_floor, out)
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=1))
    return metrics


def write_operating_point(model_path: Path, label_map: Path, samples: Sequence,
                          recall_floor: float, out: Path) -> dict:
    """
    Choose the score threshold of `model_path` on `samples` and write ``model_info.yaml``.

    `samples` are grouped by ``source``; the file goes into `out`; returns what was written.
    """
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_training.calibrate import calibrate, write_model_info

    parts: dict = {}
    for s in samples:
        parts.setdefault(s.source, []).append(s)
    info = calibrate(load_detector(str(model_path), str(label_map)), parts, recall_floor)
    path = write_model_info(info, out)
    print(f'{path.name}: score_threshold {info["score_threshold"]} (floor met: '
          f'{info["floor_met"]}) ' + '  '.join(
              f'{k} P {v["precision"]:.3f} R {v["recall"]:.3f}'
              for k, v in info['validation'].items()), flush=True)
    return info


def calibration_set(samples: Sequence, n: int, seed: int, size: int) -> list[np.ndarray]:
    """
    Return `n` training images drawn with `seed` for int8 calibration.

    They are stretched to ``size`` squared (RGB uint8, the TFLite input).
    """
    pick = np.random.default_rng(seed).permutation(len(samples))[:n]
    return [to_network_input(read_rgb(samples[i].image_path), size).astype(np.uint8)
            for i in pick]


# ----------------------------------------------------------------------------- command
def export_run(model: keras.Model, config: SSDConfig, run: Path, out: Path,
               calibration_samples: Sequence, eval_samples: Sequence, calibration_images: int,
               seed: int, recall_floor: float | None = None,
               nms_iou: float = NMS_IOU) -> dict:
    """
    Export the model of training run `run` into `out` with :func:`export_model`.

    With `recall_floor`, the score threshold is calibrated on `eval_samples` per source.

    `calibration_images` images drawn with `seed` from `calibration_samples` calibrate the int8
    model; the run's ``best.json`` (if any) goes into the metrics as the Keras model's.
    """
    best = run / 'best.json'
    keras_metrics = json.loads(best.read_text()) if best.exists() else None
    return export_model(model, config, out,
                        calibration_set(calibration_samples, calibration_images, seed,
                                        config.input_size),
                        eval_samples, keras_metrics, recall_floor, nms_iou)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='hand-tracker-export',
                                description='Export a trained hand detector (frozen graph, '
                                            'TFLite float and int8) and evaluate the files.')
    p.add_argument('--run', help='training run directory (config.json); not with --threshold-only')
    p.add_argument('--weights', help='weights file (default: RUN/best.weights.h5)')
    p.add_argument('--out', required=True, help='output directory')
    add_source_options(p)
    p.add_argument('--egohands-repeat', type=int, default=1,
                   help='as in training: the calibration images are drawn from the same list')
    p.add_argument('--calibration-images', type=int, default=100)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--recipe', help='a training recipe (config/train_recipe.yaml): its sources '
                   'give the calibration images, and the score threshold is chosen on their '
                   'validation parts (model_info.yaml)')
    p.add_argument('--nms-iou', type=float, default=NMS_IOU,
                   help='overlap (IoU) above which the in-graph non-max suppression drops the '
                        'lower-scoring box (default %(default)s, the OD API SSD MobileNet v2 '
                        'value; lower removes more duplicate boxes of one hand, see '
                        'models/MODEL_CARD.md)')
    p.add_argument('--threshold-only', action='store_true',
                   help='with --recipe: only choose the score threshold of the model already '
                        'in OUT (OUT/model.tflite) and rewrite OUT/model_info.yaml')
    return p


def _recipe_samples(args: argparse.Namespace) -> tuple[list, list, float]:
    """Return (training, validation) samples of --recipe's sources and its recall floor."""
    import yaml

    from hand_tracker_training.recipe import Recipe
    from hand_tracker_training.sources import recipe_samples

    doc = yaml.safe_load(Path(args.recipe).read_text()) or {}
    recipe = Recipe.from_dict(doc.get('recipe', {}))
    floor = float((doc.get('args') or {}).get('recall_floor', 0.85))
    return (*recipe_samples(recipe.weights, args.data_root, fold=args.fold,
                            val_far_hands=recipe.val_far_hands), floor)


def main(argv: Sequence[str] | None = None) -> int:
    """``hand-tracker-export``: export a run's best (or given) weights and evaluate the files."""
    args = _parser().parse_args(argv)
    if args.threshold_only:
        if not args.recipe:
            raise SystemExit('--threshold-only needs --recipe (its validation parts)')
        out = Path(args.out)
        _, evaluation, recall_floor = _recipe_samples(args)
        write_operating_point(out / 'model.tflite', out / 'label_map.pbtxt', evaluation,
                              recall_floor, out)
        return 0
    if not args.run:
        raise SystemExit('hand-tracker-export: --run is required')
    run = Path(args.run)
    config = SSDConfig.from_json((run / 'config.json').read_text())
    model = build_ssd(config)
    model.load_weights(args.weights or run / 'best.weights.h5')
    recall_floor = None
    if args.recipe:
        calibration, evaluation, recall_floor = _recipe_samples(args)
    else:
        calibration, evaluation = training_samples(args)
    if not calibration:
        raise SystemExit('no calibration images: give --recipe, --sources, --egohands or --yolo')
    export_run(model, config, run, Path(args.out), calibration, evaluation,
               args.calibration_images, args.seed, recall_floor, args.nms_iou)
    return 0


if __name__ == '__main__':
    sys.exit(main())
