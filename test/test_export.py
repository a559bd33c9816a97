"""
hand_tracker_training.export: frozen graph and TFLite exports of a detection tf.function.

The exported models are loaded back through hand_tracker_ros.backends (as the node does) and
inspected as GraphDef / TFLite files.
"""
from __future__ import annotations

from ai_edge_litert.interpreter import Interpreter
from fixture_models import bright_cell_frame, expected_boxes, make_bright_cell_model, MODEL_SIZE
from hand_tracker_ros.backends import load_detector
from hand_tracker_training.export import export_frozen_graph, export_tflite
import numpy as np
import pytest
import tensorflow as tf


OUTPUTS = ('detection_boxes', 'detection_scores', 'detection_classes', 'num_detections')


def read_graph_def(path) -> tf.compat.v1.GraphDef:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def op_names(interpreter: Interpreter) -> set[str]:
    # LiteRT has no public op listing; _get_ops_details is what its own tools use.
    return {op['op_name'] for op in interpreter._get_ops_details()}


def test_frozen_graph_is_od_api_form(fixture_models):
    nodes = {n.name: n for n in read_graph_def(fixture_models['frozen_graph']).node}
    image = nodes['image_tensor']
    assert image.op == 'Placeholder' and image.attr['dtype'].type == tf.uint8.as_datatype_enum
    assert [d.size for d in image.attr['shape'].shape.dim] == [1, -1, -1, 3]
    for name in OUTPUTS:
        assert nodes[name].op == 'Identity'
        assert nodes[name].attr['T'].type == tf.float32.as_datatype_enum
    ops = {n.op for n in nodes.values()}
    assert not ops & {'VarHandleOp', 'ReadVariableOp', 'VariableV2', 'AssignVariableOp'}
    assert [n for n in nodes.values() if n.op == 'Placeholder'] == [image]


def test_tflite_is_od_api_form(fixture_models):
    for kind in ('tflite', 'tflite_int8'):
        interpreter = Interpreter(model_path=str(fixture_models[kind]))
        (inp,) = interpreter.get_input_details()
        assert inp['dtype'] == np.uint8 and list(inp['shape']) == [1, MODEL_SIZE, MODEL_SIZE, 3]
        signature = interpreter.get_signature_list()['serving_default']
        assert signature == {'inputs': ['image_tensor'], 'outputs': sorted(OUTPUTS)}
        ops = op_names(interpreter)
        assert 'NON_MAX_SUPPRESSION_V5' in ops                   # NMS as a TFLite builtin
        assert not {op for op in ops if 'Flex' in op or op == 'CUSTOM'}, ops
        int8 = [t['name'] for t in interpreter.get_tensor_details() if t['dtype'] == np.int8]
        assert bool(int8) == (kind == 'tflite_int8'), int8
        assert all(d['dtype'] == np.float32 for d in interpreter.get_output_details())


def test_variables_are_frozen_at_export(tmp_path):
    """The threshold variable's value at export time is baked into both exports."""
    model = make_bright_cell_model(threshold=0.8)
    pb = export_frozen_graph(model.detect, tmp_path / 'nested' / 'model.pb')
    tflite = export_tflite(model.detect, tmp_path / 'model.tflite', MODEL_SIZE)
    model.threshold.assign(0.3)
    cells = [(1, 1), (5, 5), (8, 2)]
    frame = bright_cell_frame(640, 480, cells, [255, 180, 100])      # scores 1, .71, .39
    live = model.detect(tf.constant(frame[None]))
    assert int(live['num_detections'][0]) == 3                       # now 0.3: all three
    for path in (pb, tflite):
        det = load_detector(path).detect(frame)
        np.testing.assert_allclose(det.boxes, expected_boxes(640, 480, cells[:1]), atol=0.01)


def test_frozen_graph_with_clashing_op_names(tmp_path, fixture_models):
    """
    Export a function whose own ops are named like the OD API outputs.

    The outputs still come under those names, carrying the right values.
    """
    model = make_bright_cell_model()

    @tf.function
    def detect(image):
        out = model.detect(image)
        return {'detection_boxes': tf.identity(out['detection_boxes'], name='detection_boxes'),
                # A trap: the scores computed by an op called num_detections.
                'detection_scores': tf.identity(out['detection_scores'], name='num_detections'),
                'detection_classes': out['detection_classes'],
                'num_detections': tf.identity(out['num_detections'], name='detection_scores')}

    path = export_frozen_graph(detect, tmp_path / 'clash.pb')
    names = [n.name for n in read_graph_def(path).node]
    for name in ('image_tensor', *OUTPUTS):
        assert names.count(name) == 1, name
    frame = bright_cell_frame(1280, 720, [(2, 3), (7, 7)], [255, 200])
    got = load_detector(path).detect(frame)
    want = load_detector(fixture_models['frozen_graph']).detect(frame)
    assert len(want) == 2
    np.testing.assert_array_equal(got.boxes, want.boxes)
    np.testing.assert_array_equal(got.scores, want.scores)


def test_detect_fn_contract_errors(tmp_path):
    model = make_bright_cell_model()

    def as_tuple(image):
        return tuple(model.detect(image).values())

    def missing(image):
        out = model.detect(image)
        return {k: v for k, v in out.items() if k != 'num_detections'}

    for export in (lambda fn, p: export_frozen_graph(fn, p),
                   lambda fn, p: export_tflite(fn, p, MODEL_SIZE)):
        with pytest.raises(TypeError, match='must return a dict'):
            export(as_tuple, tmp_path / 'a')
        with pytest.raises(ValueError, match=r"lacks \['num_detections'\]"):
            export(missing, tmp_path / 'b')
    assert list(tmp_path.iterdir()) == []


def test_tflite_rejects_ops_without_builtin(tmp_path):
    model = make_bright_cell_model()

    def with_svd(image):
        out = dict(model.detect(image))
        singular = tf.linalg.svd(tf.reshape(out['detection_scores'], [2, 5]), compute_uv=False)
        out['detection_scores'] += 1e-9 * tf.reduce_sum(singular)  # used, not folded
        return out

    with pytest.raises(RuntimeError, match=r'only TFLite builtin ops are allowed.*Svd'):
        export_tflite(with_svd, tmp_path / 'svd.tflite', MODEL_SIZE)
    assert not (tmp_path / 'svd.tflite').exists()


@pytest.mark.parametrize('images,message', [
    ([], 'representative_images is empty'),
    ([np.zeros((64, 64, 3), np.uint8)], r'uint8 \(300, 300, 3\), got uint8 \(64, 64, 3\)'),
    ([np.zeros((300, 300, 3), np.float32)], r'got float32 \(300, 300, 3\)'),
])
def test_tflite_representative_image_errors(tmp_path, images, message):
    model = make_bright_cell_model()
    with pytest.raises(ValueError, match=message):
        export_tflite(model.detect, tmp_path / 'q.tflite', MODEL_SIZE,
                      representative_images=images)


def test_tflite_bad_input_size(tmp_path):
    with pytest.raises(ValueError, match='input_size must be positive'):
        export_tflite(make_bright_cell_model().detect, tmp_path / 'x.tflite', 0)


def test_export_model_applies_its_nms_overlap_in_every_file(tmp_path):
    """`nms_iou` reaches the frozen graph and both TFLite files, and metrics.json records it."""
    import json

    from hand_tracker_ros.geometry import pairwise_iou
    from hand_tracker_training.export import export_model
    from hand_tracker_training.model import build_ssd, SSDConfig
    import keras

    keras.utils.set_random_seed(0)
    config = SSDConfig(input_size=128, alpha=0.35)
    model = build_ssd(config)
    for layer in model.layers:     # every anchor a confident hand: NMS alone decides what stays
        if layer.name.startswith('class_head_') and getattr(layer, 'bias', None) is not None:
            layer.bias.assign(np.full(layer.bias.shape, 4.0, np.float32))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 255, (128, 128, 3), np.uint8) for _ in range(4)]
    image = rng.integers(0, 255, (96, 128, 3), np.uint8)
    worst = {}
    for nms_iou in (0.3, 0.9):
        out = tmp_path / str(nms_iou)
        metrics = export_model(model, config, out, calibration, nms_iou=nms_iou)
        assert metrics['nms_iou'] == nms_iou
        assert json.loads((out / 'metrics.json').read_text())['nms_iou'] == nms_iou
        for kind in ('frozen_graph', 'tflite', 'tflite_int8'):
            path = out / metrics['files'][kind]['path']
            detector = load_detector(str(path), str(out / 'label_map.pbtxt'))
            dets = detector.detect(image, min_score=0.5)
            assert len(dets) >= 5, (kind, len(dets))
            iou = pairwise_iou(dets.boxes, dets.boxes)
            np.fill_diagonal(iou, 0.0)
            worst[nms_iou, kind] = float(iou.max())
    for kind in ('frozen_graph', 'tflite', 'tflite_int8'):
        assert worst[0.3, kind] <= 0.3 + 0.02, worst   # int8 boxes: within an int8 step
        assert worst[0.9, kind] > 0.3, worst
