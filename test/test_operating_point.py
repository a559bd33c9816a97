"""
Test the calibrated operating point.

It is chosen on real validation images with a real model, written to model_info.yaml, used by
the node over DDS unless the user sets score_threshold, and read back through the parameter
services (what ``ros2 param get`` calls).
"""
import shutil
import time

from hand_tracker_ros.backends import load_detector
from hand_tracker_ros.resources import MODEL_INFO_NAME, model_score_threshold
from hand_tracker_training.calibrate import (calibrate, choose_threshold, pr_curve,
                                             scored_matches, THRESHOLDS, write_model_info)
from hand_tracker_training.evaluate import match_detections
from hand_tracker_training.input_pipeline import read_rgb
from hand_tracker_training.sources import load_recipe_part
import numpy as np
import pytest
from test_detector_node import Client, image_msg, NodeProcess
import yaml

REPO_MODELS = __import__('pathlib').Path(__file__).resolve().parents[1] / 'models'


@pytest.fixture(scope='module')
def val_parts(shared_data):
    return {s: load_recipe_part(s, 'val')[:12] for s in ('webcam', 'asl', 'closeup')}


@pytest.fixture(scope='module')
def calibrated(val_parts, tmp_path_factory):
    """
    Copy the shipped TFLite model twice with a model_info.yaml each.

    `a` as calibrated on the validation images, `b` with another threshold.
    """
    dirs = {k: tmp_path_factory.mktemp(k) for k in 'ab'}
    for d in dirs.values():
        for name in ('model.tflite', 'label_map.pbtxt'):
            shutil.copy(REPO_MODELS / name, d / name)
    info = calibrate(load_detector(str(dirs['a'] / 'model.tflite')), val_parts, 0.5)
    write_model_info(info, dirs['a'])
    other = dict(info, score_threshold=round(info['score_threshold'] + (
        0.2 if info['score_threshold'] < 0.7 else -0.2), 2))
    write_model_info(other, dirs['b'])
    return dirs, info, other['score_threshold']


def test_threshold_figures_match_a_direct_count(val_parts, calibrated):
    """P/R written for each source equal a direct count of the detections above the threshold."""
    dirs, info, _ = calibrated
    t = info['score_threshold']
    assert model_score_threshold(dirs['a'] / 'model.tflite') == t
    assert info['rule'] and set(info['validation']) == set(val_parts)
    detector = load_detector(str(dirs['a'] / 'model.tflite'))
    for source, samples in val_parts.items():
        tp = fp = hands = 0
        for s in samples:
            det = detector.detect(read_rgb(s.image_path), t)
            hit, _ = match_detections(s.boxes, det, 0.5)
            tp, fp, hands = tp + int(np.sum(hit)), fp + int(np.sum(~np.asarray(hit))), \
                hands + len(s.boxes)
        row = info['validation'][source]
        assert row['recall'] == pytest.approx(tp / hands, abs=1e-3)
        assert row['precision'] == pytest.approx(tp / (tp + fp) if tp + fp else 1.0, abs=1e-3)
        assert row['hands'] == hands


def test_rule_respects_the_recall_floor(val_parts, calibrated):
    dirs, _, _ = calibrated
    detector = load_detector(str(dirs['a'] / 'model.tflite'))
    curves = {}
    for source, samples in val_parts.items():
        preds = [detector.detect(read_rgb(s.image_path), 0.05) for s in samples]
        curves[source] = pr_curve(*scored_matches(samples, preds))
    weakest = np.min([c['recall'] for c in curves.values()], axis=0)
    least_precise = np.min([c['precision'] for c in curves.values()], axis=0)
    mean_f1 = np.mean([c['f1'] for c in curves.values()], axis=0)
    for floor in (0.3, 0.6, 0.9, 1.01):
        for p_floor in (0.0, 0.5, 0.9):
            got = choose_threshold(curves, floor, precision_floor=p_floor)
            k = int(np.flatnonzero(THRESHOLDS == got['score_threshold'])[0])
            ok = (weakest >= floor) & (least_precise >= p_floor)
            assert got['floor_met'] == bool(ok.any())
            if got['floor_met']:
                assert weakest[k] >= floor and least_precise[k] >= p_floor
                # no threshold meeting both floors has a higher source-mean F1
                assert mean_f1[k] >= mean_f1[ok].max() - 1e-12
            else:
                assert mean_f1[k] == mean_f1.max()
    with pytest.raises(ValueError):
        choose_threshold({})


def test_bad_model_info_is_a_clear_error(tmp_path):
    (tmp_path / MODEL_INFO_NAME).write_text('score_threshold: 1.7\n')
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        model_score_threshold(tmp_path / 'model.tflite')
    assert model_score_threshold(tmp_path / 'sub' / 'model.tflite') is None


def _get(client, node_name: str) -> float:
    from rclpy.parameter_client import AsyncParameterClient

    pc = AsyncParameterClient(client.node, node_name)
    assert pc.wait_for_services(timeout_sec=20)
    future = pc.get_parameters(['score_threshold'])
    client.ex.spin_until_future_complete(future, timeout_sec=20)
    return future.result().values[0].double_value


def _set(client, node_name: str, **values) -> bool:
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    pc = AsyncParameterClient(client.node, node_name)
    future = pc.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    client.ex.spin_until_future_complete(future, timeout_sec=60)
    return all(r.successful for r in future.result().results)


@pytest.mark.slow
@pytest.mark.ros
def test_node_uses_the_model_threshold_unless_the_user_sets_one(calibrated, val_parts):
    dirs, info, other = calibrated
    ns, name = '/op_point', '/op_point/hand_detector'
    proc = NodeProcess('-p', f'model_path:={dirs["a"] / "model.tflite"}',
                       '-p', 'input_timeout:=600.0', '-r', f'__ns:={ns}')
    c = Client(namespace=ns)
    try:
        c.wait_connected(proc)
        t = info['score_threshold']
        assert _get(c, name) == pytest.approx(t)
        detector = load_detector(str(dirs['a'] / 'model.tflite'))
        for s in val_parts['webcam'][:3]:
            rgb = read_rgb(s.image_path)
            msg = c.wait_for(c.send(image_msg(rgb)))
            assert msg is not None, proc.text()
            want = detector.detect(rgb, t)
            got = sorted(d.results[0].hypothesis.score for d in msg.detections)
            assert got == pytest.approx(sorted(want.scores[:10]), abs=1e-4)
            assert all(score >= t for score in got)
        assert _set(c, name, score_threshold=0.9) and _get(c, name) == pytest.approx(0.9)
        assert _set(c, name, model_path=str(dirs['b'] / 'model.tflite'))
        assert _get(c, name) == pytest.approx(0.9), "the user's threshold stays"
        assert _set(c, name, score_threshold=-1.0) and _get(c, name) == pytest.approx(other)
        assert _set(c, name, model_path=str(dirs['a'] / 'model.tflite'))
        assert _get(c, name) == pytest.approx(t), 'following the model: its threshold'
        assert not _set(c, name, score_threshold=1.5) and _get(c, name) == pytest.approx(t)
        time.sleep(0.2)
        assert proc.alive(), proc.text()
    finally:
        c.close()
        proc.stop()


def test_model_info_is_yaml_with_the_threshold_first(calibrated):
    dirs, info, _ = calibrated
    text = (dirs['a'] / MODEL_INFO_NAME).read_text()
    first_key = next(line for line in text.splitlines() if not line.startswith('#'))
    assert first_key.startswith('score_threshold:')
    assert yaml.safe_load(text)['validation'] == info['validation']
