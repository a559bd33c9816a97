"""
Model loading and inference: TF OD API frozen graphs (TensorFlow) and TFLite (LiteRT).

:func:`load_detector` picks the backend by file type and returns a :class:`Detector` whose
``detect(rgb)`` gives :class:`~hand_tracker_ros.detections.Detections` in the pixels of the
given image, whatever the model's own input size:

* ``.pb`` -- :class:`FrozenGraphDetector`: a ``frozen_inference_graph.pb`` as exported by the
  TF1 OD API (or :func:`hand_tracker_training.export.export_frozen_graph`): input
  ``image_tensor`` uint8 ``[1, H, W, 3]`` of any size, outputs ``detection_boxes``,
  ``detection_scores``, ``detection_classes``, ``num_detections``. Run in one TF1 session
  (thread-safe). TensorFlow is imported only when such a model is loaded.
* ``.tflite`` -- :class:`TFLiteDetector`: a fixed ``[1, H, W, 3]`` input (uint8 raw RGB,
  float32 in [-1, 1] or int8 quantized from [-1, 1], as MobileNet) run by LiteRT with XNNPACK;
  the image is resized with OpenCV. Outputs are found by (signature) name, else in the order of
  the OD API's ``TFLite_Detection_PostProcess``: boxes, classes, scores, count.

Every loading problem raises :class:`ModelLoadError` naming the file and what is wrong.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
import re
import threading

import cv2
import numpy as np

from .detections import Detections
from .label_map import read_label_map
from .vocabulary import HAND_LABEL_MAP


LABEL_MAP_NAME = 'label_map.pbtxt'
OD_API_OUTPUTS = ('detection_boxes', 'detection_scores', 'detection_classes', 'num_detections')
OD_API_INPUT = 'image_tensor'


class ModelLoadError(RuntimeError):
    """A model (or its label map) cannot be loaded; the message names the file and the cause."""


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f'detect: rgb must be a numpy array, got {type(rgb).__name__}')
    if rgb.dtype != np.uint8:
        raise ValueError(f'detect: rgb must be uint8, got {rgb.dtype}')
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'detect: rgb must have shape (H, W, 3), got {rgb.shape}')
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f'detect: empty image {rgb.shape}')
    return np.ascontiguousarray(rgb)


class Detector(ABC):
    """
    A loaded detection model.

    Attributes: ``name`` (backend: ``'frozen_graph'`` or ``'tflite'``), ``model_path``,
    ``labels`` (``{id: name}``), ``input_size`` ((width, height) the image is resized to, or
    None when the model takes any size).
    """

    name: str = ''

    def __init__(self, model_path: Path, labels: dict[int, str],
                 input_size: tuple[int, int] | None) -> None:
        self.model_path = model_path
        self.labels = labels
        self.input_size = input_size

    def detect(self, rgb: np.ndarray, min_score: float = 0.0) -> Detections:
        """
        Detect in `rgb` (uint8 (H, W, 3) RGB): boxes in its pixels, sorted by score.

        The model's valid detections (its ``num_detections``) with score >= `min_score`.
        Safe to call from several threads at once.
        """
        rgb = _check_rgb(rgb)
        boxes, scores, classes, num = self._run(rgb)
        return _to_detections(boxes, scores, classes, num, rgb.shape[1], rgb.shape[0], min_score)

    @abstractmethod
    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """
        Raw OD API outputs for a checked image: boxes_norm [N, 4] ([ymin, xmin, ymax, xmax]).

        Scores [N], classes [N], num_detections (any shape holding one number).
        """

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({str(self.model_path)!r}, labels={self.labels}, '
                f'input_size={self.input_size})')


def _to_detections(boxes_norm: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                   num: np.ndarray, width: int, height: int, min_score: float) -> Detections:
    """OD API outputs -> Detections in pixels of a width x height image."""
    boxes_norm = np.asarray(boxes_norm, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    classes = np.asarray(classes, np.float32).reshape(-1)
    n = int(round(float(np.asarray(num).reshape(-1)[0])))
    n = max(0, min(n, len(scores), len(boxes_norm), len(classes)))
    boxes_norm, scores, classes = boxes_norm[:n], scores[:n], classes[:n]
    order = np.argsort(-scores, kind='stable')
    boxes_norm, scores, classes = boxes_norm[order], scores[order], classes[order]
    keep = scores >= min_score
    ymin, xmin, ymax, xmax = boxes_norm[keep].T
    boxes = np.stack([np.clip(xmin * width, 0, width), np.clip(ymin * height, 0, height),
                      np.clip(xmax * width, 0, width), np.clip(ymax * height, 0, height)],
                     axis=1)
    return Detections(boxes, scores[keep], np.rint(classes[keep]))


def _read_model_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ModelLoadError(f'model file not found: {path}')
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f'cannot read model file {path}: {exc.strerror or exc}') from exc


class FrozenGraphDetector(Detector):
    """A TF OD API frozen inference graph (``.pb`` GraphDef) run in one TF1 session."""

    name = 'frozen_graph'

    def __init__(self, model_path: Path, labels: dict[int, str], num_threads: int = 2) -> None:
        super().__init__(model_path, labels, None)
        data = _read_model_bytes(model_path)
        try:
            import tensorflow as tf  # lazily: only this backend needs TensorFlow
        except ImportError as exc:
            raise ModelLoadError(f'{model_path}: frozen graphs need TensorFlow, which is not '
                                 f'installed (pip install tensorflow-cpu), or use a .tflite '
                                 f'model') from exc

        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(data)
        except Exception as exc:  # protobuf's DecodeError
            raise ModelLoadError(f'{model_path} is not a TensorFlow GraphDef (frozen graph): '
                                 f'{exc}') from exc
        names = {node.name: node for node in graph_def.node}
        missing = [n for n in (OD_API_INPUT, *OD_API_OUTPUTS) if n not in names]
        if missing:
            raise ModelLoadError(
                f'{model_path} is not a TF Object Detection API frozen graph: it lacks the '
                f'tensors {", ".join(m + ":0" for m in missing)} ({len(graph_def.node)} nodes)')
        image = names[OD_API_INPUT]
        dtype = image.attr['dtype'].type if 'dtype' in image.attr else None
        if image.op != 'Placeholder' or dtype != tf.uint8.as_datatype_enum:
            got = tf.dtypes.as_dtype(dtype).name if dtype else 'no dtype'
            raise ModelLoadError(f'{model_path}: {OD_API_INPUT}:0 must be a uint8 Placeholder, '
                                 f'got a {image.op} of {got}')
        graph = tf.Graph()
        try:
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name='')
        except Exception as exc:  # unknown ops, bad attributes: ValueError / InvalidArgumentError
            raise ModelLoadError(f'{model_path}: TensorFlow cannot import the graph: '
                                 f'{str(exc).splitlines()[0]}') from exc
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=num_threads,
                                          inter_op_parallelism_threads=num_threads,
                                          allow_soft_placement=True)
        self._session = tf.compat.v1.Session(graph=graph, config=config)
        self._input = graph.get_tensor_by_name(f'{OD_API_INPUT}:0')
        self._outputs = [graph.get_tensor_by_name(f'{n}:0') for n in OD_API_OUTPUTS]

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        boxes, scores, classes, num = self._session.run(self._outputs,
                                                        {self._input: rgb[None]})
        return boxes[0], scores[0], classes[0], num


def _quantization(detail: dict) -> tuple[float, int] | None:
    """(scale, zero_point) of a per-tensor quantized tensor, None for a float tensor."""
    params = detail.get('quantization_parameters', {})
    scales, zero_points = params.get('scales', []), params.get('zero_points', [])
    if len(scales) == 0 or scales[0] == 0:
        return None
    return float(scales[0]), int(zero_points[0])


def _natural_key(name: str) -> list:
    """Sort key ordering 'output_2' before 'output_10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


class LiteRTRunner:
    """
    One TFLite model run by LiteRT (XNNPACK): one interpreter per calling thread.

    Runs any model; what its inputs and outputs mean is its decoder's business (the SSD's in
    :class:`TFLiteDetector`, the palm detector's in :mod:`~hand_tracker_ros.palm`, the hand
    landmarks' in :mod:`~hand_tracker_ros.landmarks`). `hint` is added to a load error (for
    example the set-up command that fetches the file).
    """

    def __init__(self, model_path: str | Path, num_threads: int = 2, hint: str = '') -> None:
        self.model_path = Path(model_path)
        suffix = f' ({hint})' if hint else ''
        try:
            self._model = _read_model_bytes(self.model_path)
        except ModelLoadError as exc:
            raise ModelLoadError(f'{exc}{suffix}') from exc
        self._num_threads = num_threads
        self._local = threading.local()
        try:
            interpreter = self._new_interpreter()
        except ImportError as exc:
            raise ModelLoadError(f'{model_path}: TFLite models need LiteRT, which could not be '
                                 f'imported ({exc}; pip install ai-edge-litert)') from exc
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f'{model_path} is not a valid TFLite model: {exc}'
                                 f'{suffix}') from exc
        self._local.interpreter = interpreter
        self.input_details = interpreter.get_input_details()
        self.output_details = interpreter.get_output_details()

    def _new_interpreter(self):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        interpreter = Interpreter(model_content=self._model, num_threads=self._num_threads,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN)
        interpreter.allocate_tensors()
        return interpreter

    def interpreter(self):
        """Return the calling thread's interpreter, created on first use."""
        interpreter = getattr(self._local, 'interpreter', None)
        if interpreter is None:
            interpreter = self._local.interpreter = self._new_interpreter()
        return interpreter

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model's single input `tensor`; every output by tensor name (copies)."""
        interpreter = self.interpreter()
        interpreter.set_tensor(self.input_details[0]['index'], tensor)
        interpreter.invoke()
        return {d['name']: interpreter.get_tensor(d['index']).copy()
                for d in self.output_details}


class TFLiteDetector(Detector):
    """A TFLite detection model run by LiteRT (XNNPACK), one interpreter per calling thread."""

    name = 'tflite'
    _FALLBACK_ORDER = ('detection_boxes', 'detection_classes', 'detection_scores',
                       'num_detections')  # TFLite_Detection_PostProcess outputs

    def __init__(self, model_path: Path, labels: dict[int, str], num_threads: int = 2) -> None:
        self._runner = LiteRTRunner(model_path, num_threads)
        interpreter = self._runner.interpreter()
        inputs = interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelLoadError(f'{model_path}: expected one input image tensor, the model has '
                                 f'{len(inputs)} inputs')
        detail = inputs[0]
        shape = [int(d) for d in detail.get('shape_signature', detail['shape'])]
        if len(shape) != 4 or shape[0] not in (1, -1) or shape[3] != 3 or min(shape[1:3]) < 1:
            raise ModelLoadError(f'{model_path}: the input must be a fixed [1, H, W, 3] image, '
                                 f'got shape {shape}')
        self._input_dtype = np.dtype(detail['dtype'])
        if self._input_dtype not in (np.uint8, np.float32, np.int8):
            raise ModelLoadError(f'{model_path}: unsupported input dtype {self._input_dtype} '
                                 f'(expected uint8, float32 or int8)')
        self._input_index = detail['index']
        self._input_quant = _quantization(detail) if self._input_dtype == np.int8 else None
        if self._input_dtype == np.int8 and self._input_quant is None:
            raise ModelLoadError(f'{model_path}: int8 input without quantization parameters')
        self._outputs = self._find_outputs(interpreter, model_path)
        super().__init__(model_path, labels, (shape[2], shape[1]))

    @classmethod
    def _find_outputs(cls, interpreter, model_path: Path) -> list[tuple[int, tuple | None]]:
        """
        (tensor index, quantization) of boxes, scores, classes, num_detections.

        By name first: signature output names, then tensor names, containing
        ``detection_boxes`` etc. Otherwise 4 outputs are taken as boxes, classes, scores, count
        (TFLite_Detection_PostProcess): in the order of the signature's outputs when there is a
        signature (``output_0`` .. ``output_3``, the order the exported function returned
        them; the interpreter's own output list may be in another order), else in the order
        of the model's outputs.
        """
        details = interpreter.get_output_details()
        signatures = interpreter.get_signature_list()
        signature = {}
        if signatures:
            key = 'serving_default' if 'serving_default' in signatures else next(iter(signatures))
            signature = interpreter.get_signature_runner(key).get_output_details()
        named = {**{d['name']: d for d in details}, **signature}
        found = {}
        for key in OD_API_OUTPUTS:
            candidates = [n for n in named if key in n]
            if candidates:  # the shortest: 'detection_scores' before 'raw_detection_scores'
                found[key] = named[min(candidates, key=len)]
        if len(found) < len(OD_API_OUTPUTS):
            if signature:
                ordered = [signature[n] for n in sorted(signature, key=_natural_key)]
            else:
                ordered = details
            if len(ordered) != len(cls._FALLBACK_ORDER):
                raise ModelLoadError(
                    f'{model_path}: cannot find the detection outputs: no output is named '
                    f'{[k for k in OD_API_OUTPUTS if k not in found]} and the model has '
                    f'{len(ordered)} outputs ({sorted(named)}), not the 4 of '
                    f'TFLite_Detection_PostProcess (boxes, classes, scores, count)')
            found = dict(zip(cls._FALLBACK_ORDER, ordered))
        shapes = {k: [int(n) for n in found[k]['shape']] for k in OD_API_OUTPUTS}
        boxes = shapes['detection_boxes']
        if (len(boxes) != 3 or boxes[2] != 4 or np.prod(shapes['num_detections']) != 1
                or shapes['detection_scores'] != boxes[:2]
                or shapes['detection_classes'] != boxes[:2]):
            raise ModelLoadError(f'{model_path}: detection outputs of shapes {shapes}, expected '
                                 f'boxes [1, N, 4], scores and classes [1, N], num [1]')
        return [(found[k]['index'],
                 _quantization(found[k]) if np.issubdtype(found[k]['dtype'], np.integer)
                 else None) for k in OD_API_OUTPUTS]

    def _preprocess(self, rgb: np.ndarray) -> np.ndarray:
        width, height = self.input_size
        if rgb.shape[:2] != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        if self._input_dtype == np.uint8:
            return rgb[None]
        normalised = rgb[None].astype(np.float32) / 127.5 - 1.0
        if self._input_dtype == np.float32:
            return normalised
        scale, zero_point = self._input_quant
        return np.clip(np.rint(normalised / scale + zero_point), -128, 127).astype(np.int8)

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        interpreter = self._runner.interpreter()
        interpreter.set_tensor(self._input_index, self._preprocess(rgb))
        interpreter.invoke()
        values = []
        for index, quant in self._outputs:
            value = interpreter.get_tensor(index)
            if quant is not None:
                value = (value.astype(np.float32) - quant[1]) * quant[0]
            values.append(value)
        boxes, scores, classes, num = values
        return boxes.reshape(-1, 4), scores, classes, num


_BACKENDS = {'.pb': FrozenGraphDetector, '.tflite': TFLiteDetector}


def _labels_for(model_path: Path, label_map_path: str | Path | None) -> dict[int, str]:
    path = Path(label_map_path) if label_map_path else model_path.parent / LABEL_MAP_NAME
    if not label_map_path and not path.is_file():
        return dict(HAND_LABEL_MAP)
    try:
        return read_label_map(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f'cannot load the label map for {model_path}: {exc}') from exc


def load_detector(model_path: str | Path, label_map_path: str | Path | None = None,
                  num_threads: int = 2) -> Detector:
    """
    Load the model at `model_path`, by extension.

    ``.pb`` (TF OD API frozen graph) or ``.tflite`` (LiteRT), using `num_threads` CPU threads
    per inference.

    Labels come from `label_map_path`, else a ``label_map.pbtxt`` beside the model, else
    ``{1: 'hand'}``. Raises :class:`ModelLoadError` naming the file and the problem.
    """
    path = Path(model_path)
    backend = _BACKENDS.get(path.suffix.lower())
    if backend is None:
        raise ModelLoadError(f'unsupported model file type {path.suffix or "(none)"!r} for '
                             f'{path}: expected a .pb frozen graph or a .tflite model')
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f'num_threads must be an int >= 1, got {num_threads!r}')
    return backend(path, _labels_for(path, label_map_path), num_threads)
