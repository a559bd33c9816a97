"""
Backends (hand_tracker_ros.backends) and label maps, on real exported models.

The models are the "bright cell" fixture detector (test/fixture_models.py) exported as a frozen
graph, a float TFLite and an int8 TFLite model: its detections are known exactly from the frame
painted, so boxes in the pixels of any frame size can be checked to the pixel.
"""
from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys
import threading

import cv2
from fixture_models import (bright_cell_frame, cell_means, expected_boxes, GRID,
                            make_bright_cell_model, MODEL_SIZE)
from hand_tracker_ros.backends import (Detector, FrozenGraphDetector, load_detector,
                                       ModelLoadError, TFLiteDetector)
from hand_tracker_ros.label_map import read_label_map, write_label_map
import numpy as np
import pytest


KINDS = ('frozen_graph', 'tflite', 'tflite_int8')
SIZES = ((640, 480), (1280, 720), (300, 300))


@pytest.fixture(scope='module')
def detectors(fixture_models) -> dict[str, Detector]:
    return {kind: load_detector(fixture_models[kind]) for kind in KINDS}


def box_tolerance(kind: str, width: int, height: int) -> np.ndarray:
    """
    Per-coordinate pixel tolerance: float models are exact (to float rounding).

    The int8 model's boxes come out of an int8 tensor over [0, 1], i.e. within half a step of
    1/255.
    """
    if kind != 'tflite_int8':
        return np.full(4, 0.01, np.float32)
    half_step = 0.5 / 255
    return np.array([width, height, width, height], np.float32) * half_step + 0.01


def sorted_rows(boxes: np.ndarray) -> np.ndarray:
    """Boxes in a canonical order (cells of equal score may come in any order)."""
    return boxes[np.lexsort(boxes.T[::-1])] if len(boxes) else boxes


def assert_boxes(kind, got, cells, width, height):
    want = expected_boxes(width, height, cells)
    assert got.shape == want.shape, f'{kind}: {len(got)} boxes, expected {len(want)}'
    err = np.abs(sorted_rows(got) - sorted_rows(want))
    assert (err <= box_tolerance(kind, width, height)).all(), \
        f'{kind} {width}x{height}: boxes {sorted_rows(got)} != {sorted_rows(want)}'


# ---------------------------------------------------------------------------------- detection
@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('width,height', SIZES)
@pytest.mark.parametrize('cells', [[(4, 4)], [(0, 0), (3, 7), (9, 9), (6, 2), (9, 0)]],
                         ids=['one_cell', 'five_cells'])
def test_boxes_in_frame_pixels(detectors, kind, width, height, cells):
    det = detectors[kind].detect(bright_cell_frame(width, height, cells))
    assert_boxes(kind, det.boxes, cells, width, height)
    np.testing.assert_allclose(det.scores, 1.0, atol=0.01)
    assert det.classes.tolist() == [1] * len(cells)
    assert det.boxes.dtype == np.float32 and det.classes.dtype == np.int32


@pytest.mark.parametrize('kind', KINDS)
def test_model_properties(detectors, fixture_models, kind):
    d = detectors[kind]
    assert d.name == ('frozen_graph' if kind == 'frozen_graph' else 'tflite')
    assert isinstance(d, FrozenGraphDetector if kind == 'frozen_graph' else TFLiteDetector)
    assert d.input_size == (None if kind == 'frozen_graph' else (MODEL_SIZE, MODEL_SIZE))
    assert d.model_path == fixture_models[kind]
    assert d.labels == {1: 'hand'}


@pytest.mark.parametrize('kind', KINDS)
def test_dark_frames_give_no_detections(detectors, kind):
    for frame in (bright_cell_frame(640, 480), bright_cell_frame(640, 480, [(2, 2)], value=100)):
        det = detectors[kind].detect(frame)
        assert len(det) == 0 and det.boxes.shape == (0, 4)


@pytest.mark.parametrize('kind', KINDS)
def test_scores_sorted_and_min_score(detectors, kind):
    cells = [(1, 1), (2, 5), (7, 3), (8, 8)]
    values = [160, 255, 200, 140]            # scores .627, 1, .784, .549
    frame = bright_cell_frame(640, 480, cells, values)
    det = detectors[kind].detect(frame)
    order = np.argsort(values)[::-1]
    np.testing.assert_allclose(det.scores, np.array(values)[order] / 255, atol=0.01)
    assert_boxes(kind, det.boxes, cells, 640, 480)
    np.testing.assert_allclose(det.boxes, expected_boxes(640, 480, [cells[i] for i in order]),
                               atol=box_tolerance(kind, 640, 480).max())
    high = detectors[kind].detect(frame, min_score=0.7)
    assert_boxes(kind, high.boxes, [(2, 5), (7, 3)], 640, 480)
    assert (high.scores >= 0.7).all()
    assert len(detectors[kind].detect(frame, min_score=1.01)) == 0


@pytest.mark.parametrize('kind', KINDS)
def test_at_most_max_detections(detectors, kind):
    """All 100 cells bright but at distinct levels: the model's 10 best, in order."""
    cells = [(r, c) for r in range(GRID) for c in range(GRID)]
    values = [130 + i for i in range(len(cells))]          # 130 .. 229, all > 0.5
    det = detectors[kind].detect(bright_cell_frame(1280, 720, cells, values))
    assert len(det) == 10
    assert_boxes(kind, det.boxes, cells[-10:], 1280, 720)
    assert (np.diff(det.scores) <= 0).all()


@pytest.fixture(scope='module')
def raw_output_models(tmp_path_factory) -> list:
    """
    Models whose raw outputs are unsorted, reach outside the image.

    Have a class 2 and a padding entry (the best score) past num_detections.
    """
    from hand_tracker_training.export import export_frozen_graph, export_tflite
    import tensorflow as tf

    def detect(image):
        zero = 0.0 * tf.reduce_mean(tf.cast(image, tf.float32))
        return {'detection_boxes': tf.constant([[[-0.1, 0.2, 0.5, 1.3], [0.25, 0.5, 0.75, 1.0],
                                                 [0.0, 0.0, 0.1, 0.1]]]) + zero,
                'detection_scores': tf.constant([[0.3, 0.9, 0.99]]),
                'detection_classes': tf.constant([[2.0, 1.0, 1.0]]),
                'num_detections': tf.constant([2.0])}

    out = tmp_path_factory.mktemp('raw_outputs')
    return [export_frozen_graph(detect, out / 'raw.pb'),
            export_tflite(detect, out / 'raw.tflite', 32)]


def test_raw_outputs_cut_sorted_clipped(raw_output_models):
    width, height = 200, 100
    for path in raw_output_models:
        det = load_detector(path).detect(np.zeros((height, width, 3), np.uint8))
        np.testing.assert_allclose(det.scores, [0.9, 0.3])
        assert det.classes.tolist() == [1, 2]
        np.testing.assert_allclose(det.boxes, [
            [0.5 * width, 0.25 * height, 1.0 * width, 0.75 * height],
            [0.2 * width, 0.0, width, 0.5 * height]], atol=1e-4)          # clipped to the image
        assert load_detector(path).detect(np.zeros((height, width, 3), np.uint8),
                                          min_score=0.5).scores.tolist() == pytest.approx([0.9])


def test_backends_agree(detectors):
    rng = np.random.default_rng(7)
    for width, height in SIZES:
        cells = [(int(i) // GRID, int(i) % GRID) for i in rng.choice(100, 8, replace=False)]
        frame = bright_cell_frame(width, height, cells, rng.integers(90, 256, 8).tolist())
        results = {k: detectors[k].detect(frame) for k in KINDS}
        ref = results['frozen_graph']
        assert len(ref) > 0
        for kind in ('tflite', 'tflite_int8'):
            got = results[kind]
            assert len(got) == len(ref), kind
            np.testing.assert_allclose(sorted_rows(got.boxes), sorted_rows(ref.boxes),
                                       atol=box_tolerance(kind, width, height).max())
            np.testing.assert_allclose(got.scores, ref.scores, atol=0.01)


def test_real_egohands_frame_backends_agree(detectors, egohands_dir):
    """
    A real 1280x720 EgoHands frame.

    The frozen graph (TF resizes inside the graph) and the TFLite model (OpenCV resizes to
    300x300 first) find the same cells, in frame pixels, and they are the brightest cells
    computed independently with numpy.
    """
    path = egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B' / 'frame_0008.jpg'
    bgr = cv2.imread(str(path))
    assert bgr is not None, f'cannot read {path}'
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    assert (width, height) == (1280, 720)

    small = cv2.resize(rgb, (MODEL_SIZE, MODEL_SIZE), interpolation=cv2.INTER_LINEAR)
    cell = MODEL_SIZE // GRID
    grid = small.astype(np.float64).mean(axis=2).reshape(GRID, cell, GRID, cell).mean(
        axis=(1, 3)) / 255
    ranked = np.argsort(grid.ravel())[::-1]
    scores = grid.ravel()[ranked]
    top = [(int(i) // GRID, int(i) % GRID) for i, s in zip(ranked[:10], scores[:10]) if s > 0.5]
    assert top, 'the frame should have bright cells'
    # The test needs a frame whose 10th and 11th brightest cells are told apart by both resizes.
    assert scores[9] - scores[10] > 0.003, 'pick a frame with a clear 10th cell'

    fg = detectors['frozen_graph'].detect(rgb)
    tl = detectors['tflite'].detect(rgb)
    for kind, det in (('frozen_graph', fg), ('tflite', tl)):
        assert_boxes(kind, det.boxes, top, width, height)
        np.testing.assert_allclose(det.scores, scores[:len(top)], atol=0.003)
    np.testing.assert_allclose(sorted_rows(fg.boxes), sorted_rows(tl.boxes), atol=0.01)


@pytest.mark.parametrize('kind', KINDS)
def test_concurrent_detect(detectors, kind):
    """4 threads detecting different frames at once get exactly the single-thread results."""
    detector = detectors[kind]
    frames = [bright_cell_frame(640, 480, [(t, t), (9 - t, 2 * t)], [255, 150 + 20 * t])
              for t in range(4)]
    want = [detector.detect(f) for f in frames]
    results: dict[int, list] = {t: [] for t in range(4)}
    errors = []
    start = threading.Barrier(4)

    def work(t: int) -> None:
        try:
            start.wait()
            for _ in range(15):
                results[t].append(detector.detect(frames[t]))
        except Exception as exc:  # reported below with the thread's id
            errors.append((t, exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for t in range(4):
        assert len(results[t]) == 15
        for got in results[t]:
            np.testing.assert_array_equal(got.boxes, want[t].boxes)
            np.testing.assert_array_equal(got.scores, want[t].scores)


# ------------------------------------------------------------------------------ other inputs
@pytest.fixture(scope='module')
def input_variant_models(tmp_path_factory) -> dict[str, object]:
    """
    Return TFLite models with the other input types the backend supports.

    Converted here with tf.lite directly (export_tflite always makes uint8-input models):

    * ``float32``: MobileNet-style float input in [-1, 1], outputs returned as a tuple
      (boxes, classes, scores, num) so they have no detection_* names: the
      TFLite_Detection_PostProcess output order must be used;
    * ``int8``: full-integer int8 input (quantized from [-1, 1]), named outputs.
    """
    import tensorflow as tf

    out = tmp_path_factory.mktemp('input_variants')
    model = make_bright_cell_model()
    spec = tf.TensorSpec([1, MODEL_SIZE, MODEL_SIZE, 3], tf.float32)

    def detect_normalised(x):  # the cell means are linear in the pixels
        return model.detect_cells((cell_means(x) + 1.0) / 2.0)

    @tf.function(input_signature=[spec])
    def tuple_outputs(x):
        d = detect_normalised(x)
        return (d['detection_boxes'], d['detection_classes'], d['detection_scores'],
                d['num_detections'])

    @tf.function(input_signature=[spec])
    def dict_outputs(x):
        return detect_normalised(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tuple_outputs.get_concrete_function()], model)
    (out / 'float_input.tflite').write_bytes(converter.convert())

    rng = np.random.default_rng(1)
    calibration = [bright_cell_frame(MODEL_SIZE, MODEL_SIZE, [(r, c)], int(v))
                   for r, c, v in zip(rng.integers(0, 10, 16), rng.integers(0, 10, 16),
                                      rng.integers(0, 256, 16))]
    calibration.append(np.zeros((MODEL_SIZE, MODEL_SIZE, 3), np.uint8))
    calibration.append(np.full((MODEL_SIZE, MODEL_SIZE, 3), 255, np.uint8))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [dict_outputs.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [(img[None].astype(np.float32) / 127.5 - 1.0)] for img in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = tf.int8
    (out / 'int8_input.tflite').write_bytes(converter.convert())
    return {'float32': out / 'float_input.tflite', 'int8': out / 'int8_input.tflite'}


@pytest.mark.parametrize('input_type', ['float32', 'int8'])
def test_float_and_int8_input_models(input_variant_models, input_type):
    from ai_edge_litert.interpreter import Interpreter

    path = input_variant_models[input_type]
    assert Interpreter(model_path=str(path)).get_input_details()[0]['dtype'] == np.dtype(
        input_type)
    detector = load_detector(path)
    cells = [(0, 9), (5, 5), (8, 1)]
    for width, height in ((640, 480), (1280, 720)):
        det = detector.detect(bright_cell_frame(width, height, cells, [255, 230, 200]))
        kind = 'tflite' if input_type == 'float32' else 'tflite_int8'
        np.testing.assert_allclose(det.boxes, expected_boxes(width, height, cells),
                                   atol=box_tolerance(kind, width, height).max())
        np.testing.assert_allclose(det.scores, np.array([255, 230, 200]) / 255, atol=0.02)
        assert det.classes.tolist() == [1, 1, 1]


# ----------------------------------------------------------------------------------- labels
def test_label_map_round_trip(tmp_path):
    labels = {1: 'hand', 2: 'left hand', 7: "it's \"quoted\""}
    path = write_label_map(tmp_path / 'label_map.pbtxt', labels)
    assert read_label_map(path) == labels


def test_label_map_od_api_syntax(tmp_path):
    path = tmp_path / 'label_map.pbtxt'
    path.write_text("# hands\nitem { id: 1 name: 'hand' }\n"
                    "item {\n  name: \"face\"\n  id: 3\n  display_name: 'Face'\n"
                    "  frequency: FREQUENT\n}\nitem { id: 2 display_name: 'only display' }\n")
    assert read_label_map(path) == {1: 'hand', 3: 'face', 2: 'only display'}


@pytest.mark.parametrize('text,message', [
    ("item { id: 1 name: 'hand' }\nitem { id: 2 name: 'x'\n", 'line 2, column 20: '
     'not a valid label map: Expected'),
    ("item { id: 1 name: 'hand' }\nitem { id: two name: 'x' }\n", 'line 2, column 12'),
    ("item { id: 1 name: 'hand' }\nitem { name: 'x' }\n", 'item 2 (x) needs an id >= 1'),
    ("item { id: 0 name: 'background' }\n", 'item 1 (background) needs an id >= 1'),
    ("item { id: 1 name: 'hand' }\nitem { id: 2 }\n", 'item 2 (id 2) has no name'),
    ("item { id: 1 name: 'hand' }\nitem { id: 1 name: 'palm' }\n", 'duplicate id 1'),
    ('# nothing\n', 'no items'),
], ids=['unclosed', 'bad_int', 'no_id', 'id_0', 'no_name', 'duplicate', 'empty'])
def test_label_map_errors(tmp_path, text, message):
    path = tmp_path / 'bad.pbtxt'
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_label_map(path)
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize('labels', [{}, {0: 'bg'}, {1: ''}, {'1': 'hand'}, {True: 'hand'}])
def test_write_label_map_rejects(tmp_path, labels):
    with pytest.raises(ValueError):
        write_label_map(tmp_path / 'x.pbtxt', labels)
    assert not (tmp_path / 'x.pbtxt').exists()


def test_labels_explicit_beside_default(fixture_models, tmp_path):
    model = tmp_path / 'model.tflite'
    shutil.copy(fixture_models['tflite'], model)
    assert load_detector(model).labels == {1: 'hand'}                       # default
    write_label_map(tmp_path / 'label_map.pbtxt', {1: 'palm'})
    assert load_detector(model).labels == {1: 'palm'}                       # beside the model
    explicit = write_label_map(tmp_path / 'other.pbtxt', {1: 'left', 2: 'right'})
    assert load_detector(model, explicit).labels == {1: 'left', 2: 'right'}
    with pytest.raises(ModelLoadError, match='label map.*missing.pbtxt'):
        load_detector(model, tmp_path / 'missing.pbtxt')
    (tmp_path / 'label_map.pbtxt').write_text('item { id: 1 name: ')
    with pytest.raises(ModelLoadError, match=r'label map.*label_map.pbtxt: line 1'):
        load_detector(model)


# ----------------------------------------------------------------------------------- errors
def _graph_without_od_tensors(path):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4], name='input')
        tf.identity(x * 2.0, name='detection_scores')
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def _graph_with_float_input(path):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name='image_tensor')
        for name in ('detection_boxes', 'detection_scores', 'detection_classes',
                     'num_detections'):
            tf.identity(x, name=name)
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


LOAD_ERRORS = [
    ('missing.pb', r'model file not found: .*missing\.pb'),
    ('missing.tflite', r'model file not found: .*missing\.tflite'),
    ('random.pb', r'random\.pb is not a TensorFlow GraphDef'),
    ('random.tflite', r'random\.tflite is not a valid TFLite model'),
    ('text.tflite', r'text\.tflite is not a valid TFLite model'),
    ('no_tensors.pb', r'no_tensors\.pb is not a TF Object Detection API frozen graph: it lacks '
                      r'the tensors image_tensor:0, detection_boxes:0, detection_classes:0, '
                      r'num_detections:0 \(4 nodes\)'),
    ('float_input.pb', r'float_input\.pb: image_tensor:0 must be a uint8 Placeholder, got a '
                       r'Placeholder of float32'),
    ('folder.tflite', r'cannot read model file .*folder\.tflite'),
    ('model.onnx', r"unsupported model file type '\.onnx' for .*model\.onnx: expected a \.pb"),
    ('model', r"unsupported model file type '\(none\)'"),
]


@pytest.mark.parametrize('case,message', LOAD_ERRORS, ids=[case for case, _ in LOAD_ERRORS])
def test_model_load_errors(tmp_path, case, message):
    path = tmp_path / case
    rng = np.random.default_rng(3)
    if case.startswith('random'):
        # Bytes that are no protobuf (an invalid wire type in the first tag) nor flatbuffer.
        path.write_bytes(b'\x0f' + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif case == 'text.tflite':
        path.write_text('This is not a model, just a text file.\n' * 20)
    elif case == 'no_tensors.pb':
        _graph_without_od_tensors(path)
    elif case == 'float_input.pb':
        _graph_with_float_input(path)
    elif case == 'folder.tflite':
        path.mkdir()
    elif case in ('model.onnx', 'model'):
        path.write_bytes(b'\x00' * 16)
    with pytest.raises(ModelLoadError, match=message):
        load_detector(path)


@pytest.mark.parametrize('kind,module,message', [
    ('frozen_graph', 'tensorflow', 'frozen graphs need TensorFlow, which is not installed'),
    ('tflite', 'ai_edge_litert.interpreter', 'TFLite models need LiteRT, which could not be'),
])
def test_missing_runtime_package(fixture_models, monkeypatch, kind, module, message):
    """A machine without TensorFlow / LiteRT gets a ModelLoadError, not an ImportError."""
    monkeypatch.setitem(sys.modules, module, None)  # how Python marks a module as absent
    with pytest.raises(ModelLoadError, match=message):
        load_detector(fixture_models[kind])


def test_tflite_backend_does_not_import_tensorflow(fixture_models):
    code = ('import sys, numpy as np\n'
            'from hand_tracker_ros.backends import load_detector\n'
            f'det = load_detector({str(fixture_models["tflite"])!r})\n'
            'print(len(det.detect(np.full((48, 64, 3), 255, np.uint8))))\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split('\n')[:2] == ['10', '[]'], out.stdout


def test_bad_num_threads(fixture_models):
    with pytest.raises(ValueError, match='num_threads'):
        load_detector(fixture_models['tflite'], num_threads=0)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('rgb,message', [
    (np.zeros((48, 64, 3), np.float32), 'must be uint8, got float32'),
    (np.zeros((48, 64), np.uint8), r'shape \(H, W, 3\), got \(48, 64\)'),
    (np.zeros((48, 64, 4), np.uint8), r'shape \(H, W, 3\), got \(48, 64, 4\)'),
    (np.zeros((0, 64, 3), np.uint8), 'empty image'),
    ([[[0, 0, 0]]], 'must be a numpy array, got list'),
], ids=['float', 'gray', 'rgba', 'empty', 'list'])
def test_bad_rgb(detectors, kind, rgb, message):
    with pytest.raises(ValueError, match=message):
        detectors[kind].detect(rgb)


@pytest.mark.parametrize('kind', KINDS)
def test_non_contiguous_rgb(detectors, kind):
    """A view (e.g. BGR -> RGB by slicing) is accepted and gives the same result."""
    frame = bright_cell_frame(640, 480, [(3, 3), (6, 8)])
    view = np.ascontiguousarray(frame[:, :, ::-1])[:, :, ::-1]
    assert not view.flags.c_contiguous
    got = detectors[kind].detect(view)
    want = detectors[kind].detect(frame)
    np.testing.assert_array_equal(got.boxes, want.boxes)
