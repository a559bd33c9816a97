"""Launch files and the YAML parameter file against the parameters the nodes really declare."""
import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros  # rclpy, messages or ROS tools: run on Jazzy too


REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / 'launch').glob('*.launch.py'))
YAML = REPO / 'config' / 'hand_tracker.yaml'
HAVE_LAUNCH_ROS = importlib.util.find_spec('launch_ros') is not None
BUILTIN = {'use_sim_time', 'start_type_description_service'}  # declared by rclpy itself


@pytest.fixture(scope='module')
def declared():
    """Parameter names declared by real node instances (no model needed to declare them)."""
    from hand_tracker_ros.camera_node import CameraNode
    from hand_tracker_ros.detector_node import HandDetectorNode
    from hand_tracker_ros.lifecycle_detector_node import LifecycleHandDetectorNode
    import rclpy
    from rclpy.parameter import Parameter
    frames = REPO.parent / 'shared' / 'data' / 'egohands' / '_LABELLED_SAMPLES' \
        / 'CARDS_OFFICE_S_B'
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        det = HandDetectorNode(context=ctx)
        cam = CameraNode(context=ctx, parameter_overrides=[Parameter('source', value=str(frames))])
        managed = LifecycleHandDetectorNode(context=ctx)
        names = {'hand_detector': set(det._parameters), 'camera': set(cam._parameters),
                 'hand_detector_lifecycle': set(managed._parameters)}
        descriptors = {n: det.describe_parameter(n) for n in det._parameters}
        det.destroy_node()
        managed.destroy_node()
        cam.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    return names, descriptors


def _launch_node_params(path: Path) -> dict:
    """Return {executable: parameter names set inline} from Node(...) calls in a launch file."""
    out = {}
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'Node':
            kw = {k.arg: k.value for k in call.keywords}
            name = ast.literal_eval(kw['executable'])
            names = set()
            if 'parameters' in kw:
                for el in kw['parameters'].elts:
                    if isinstance(el, ast.Dict):
                        names |= {ast.literal_eval(k) for k in el.keys}
            out[name] = names
    return out


def test_yaml_sets_only_declared_parameters(declared):
    names, _ = declared
    data = {k.removeprefix('/**/'): v for k, v in yaml.safe_load(YAML.read_text()).items()}
    assert set(data) == {'hand_detector', 'camera'}
    # the lifecycle variant reads the same section: it declares every parameter the plain one does
    # (but for the qos_overrides ones, declared once it subscribes: on activate)
    plain = {n for n in names['hand_detector'] if not n.startswith('qos_overrides.')}
    assert plain <= names['hand_detector_lifecycle']
    for node, section in data.items():
        params = set(section['ros__parameters'])

        def flatten(d, prefix=''):
            for k, v in d.items():
                if isinstance(v, dict):
                    yield from flatten(v, f'{prefix}{k}.')
                else:
                    yield f'{prefix}{k}'
        params = set(flatten(section['ros__parameters']))
        unknown = params - names[node]
        assert not unknown, f'{YAML.name} sets parameters {node} does not declare: {unknown}'


def test_yaml_documents_every_detector_parameter(declared):
    names, _ = declared
    text = YAML.read_text()
    missing = [n for n in names['hand_detector']
               if n not in BUILTIN and not n.startswith('qos_overrides')
               and n.split('.')[-1] + ':' not in text]
    assert not missing, f'parameters without an entry in {YAML.name}: {missing}'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_set_only_declared_parameters(path, declared):
    names, _ = declared
    for node, params in _launch_node_params(path).items():
        if node in names:
            assert params <= names[node], \
                f'{path.name}: {node} does not declare {params - names[node]}'


def test_descriptors_have_ranges_and_read_only_flags(declared):
    _, desc = declared
    assert desc['score_threshold'].floating_point_range[0].to_value == 1.0
    assert desc['num_workers'].read_only and desc['use_compressed'].read_only
    assert not desc['score_threshold'].read_only
    assert all(d.description for n, d in desc.items() if n not in BUILTIN)
    # camera QoS is overridable through the standard mechanism, and sensor-data by default
    assert 'qos_overrides./image.subscription.reliability' in desc
    assert 'qos_overrides./image.subscription.depth' in desc


@pytest.mark.skipif(not HAVE_LAUNCH_ROS, reason='launch_ros is not importable (not on PyPI: '
                    'pip-only machine); test_launch_files_set_only_declared_parameters checks '
                    'the files here')
@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_builds(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    assert ld.entities
