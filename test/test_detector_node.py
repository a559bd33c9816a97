"""
The hand_detector node for real: a node process, images over DDS from this process.

The detector is the fixture "bright cell" model (test/fixture_models.py: a real TF frozen graph
and TFLite model with the OD API signature), whose boxes are known exactly, so the node's
conversion, box mapping, header propagation, ordering and error handling are checked exactly.
Its bright cells are no hands, so these nodes run the SSD alone (landmarks.enable false, a
supported mode); the landmark chain in the node is tested on real images at the end.
"""
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Optional

import cv2
from fixture_models import bright_cell_frame, expected_boxes
import numpy as np
import procs
import pytest

pytestmark = pytest.mark.ros  # rclpy, messages or ROS tools: run on Jazzy too


REPO = Path(__file__).resolve().parents[1]
CELLS = [(2, 3), (7, 6)]


def sorted_boxes(w: int, h: int) -> np.ndarray:
    """Return the fixture model's boxes for a w x h frame of CELLS, sorted like boxes_of()."""
    return np.array(sorted(expected_boxes(w, h, CELLS).tolist()))


class NodeProcess:
    """`hand-tracker detect` in a subprocess, its log in a file."""

    def __init__(self, *ros_args: str, ssd_only: bool = True):
        if ssd_only:
            ros_args = ('-p', 'landmarks.enable:=false', *ros_args)
        self.log_path = Path(tempfile.mkstemp(prefix='hand_detector_', suffix='.log')[1])
        self.log = open(self.log_path, 'w')
        self.proc = procs.start(
            [sys.executable, '-m', 'hand_tracker_ros.cli', 'detect', '--ros-args',
             '-p', 'stats_period:=0.5', *ros_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ))

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> Optional[int]:
        """SIGTERM; return the exit code (None: it had to be killed after 10 s)."""
        rc = procs.end(self.proc)[0]
        self.log.close()
        return rc


class Client:
    """This process's side: publishes images, collects detections / hands by stamp."""

    def __init__(self, compressed: bool = False, namespace: str = ''):
        from hand_tracker.msg import GestureEvent, TrackedHandArray
        import rclpy
        from rclpy.qos import qos_profile_sensor_data, QoSProfile
        from sensor_msgs.msg import CompressedImage, Image
        from vision_msgs.msg import Detection2DArray
        self.rclpy = rclpy
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node('detector_test_client', context=self.ctx,
                                      namespace=namespace)
        self.msg_type = CompressedImage if compressed else Image
        self.pub = self.node.create_publisher(
            self.msg_type, 'image/compressed' if compressed else 'image', qos_profile_sensor_data)
        self.dets, self.hands = [], []
        self.node.create_subscription(Detection2DArray, 'detections', self.dets.append,
                                      QoSProfile(depth=200))
        self.node.create_subscription(TrackedHandArray, 'hands', self.hands.append,
                                      QoSProfile(depth=200))
        # from the start, so that wait_connected's handshake covers it (reliable, volatile:
        # an event published before the node matched a late reader would be lost)
        self.gestures = []
        self.node.create_subscription(GestureEvent, 'gestures', self.gestures.append,
                                      QoSProfile(depth=50))
        self.ex = rclpy.executors.SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.t = 1000

    def wait_connected(self, proc: NodeProcess, timeout: float = 60.0, probe: bool = True) -> None:
        """
        Wait until the node is matched both ways and, with `probe`, answers a black frame.

        Our publisher seeing the node's subscription does not mean the node already sees our
        publisher: a best-effort frame sent in between is lost (seen in CI runs), so a black
        probe frame is sent until its (empty) detections come back.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ex.spin_once(timeout_sec=0.05)
            if self.pub.get_subscription_count() > 0 and \
                    self.node.count_publishers('detections') > 0 and 'loaded' in proc.text():
                break
            assert proc.alive(), proc.text()
        else:
            raise AssertionError('node did not come up:\n' + proc.text())
        time.sleep(0.3)
        while probe:
            if self.wait_for(self.send(self.probe_msg()), timeout=2.0) is not None:
                return
            assert proc.alive(), proc.text()
            assert time.monotonic() < deadline, 'no answer to a probe frame:\n' + proc.text()

    def probe_msg(self):
        """Return a black 640x480 frame in this client's message type."""
        black = np.zeros((480, 640, 3), np.uint8)
        if self.msg_type.__name__ == 'CompressedImage':
            return self.msg_type(format='jpeg', data=cv2.imencode('.jpg', black)[1].tobytes())
        return image_msg(black)

    def stamp(self, dt: float = 1.0):
        from builtin_interfaces.msg import Time
        self.t += dt
        sec = int(self.t)
        return Time(sec=sec, nanosec=int(round((self.t - sec) * 1e9)) or 123456789)

    def send(self, msg, frame_id='cam_optical', dt: float = 1.0):
        msg.header.stamp = self.stamp(dt)
        msg.header.frame_id = frame_id
        self.pub.publish(msg)
        return msg.header.stamp

    def wait_for_log(self, proc, stamp, timeout=20.0) -> bool:
        """Wait for the node's error line about the image with this stamp."""
        needle = f'dropped image (stamp {stamp.sec}.{stamp.nanosec:09d}'
        deadline = time.monotonic() + timeout
        while needle not in proc.text() and time.monotonic() < deadline:
            time.sleep(0.05)
        return needle in proc.text()

    def wait_for(self, stamp, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ex.spin_once(timeout_sec=0.02)
            for d in self.dets:
                if d.header.stamp == stamp:
                    return d
        return None

    def close(self):
        self.node.destroy_node()
        self.rclpy.shutdown(context=self.ctx)


def image_msg(rgb: np.ndarray, encoding='rgb8', pad=0):
    """Return a sensor_msgs/Image of `rgb` in `encoding`, rows padded by `pad` garbage bytes."""
    from sensor_msgs.msg import Image
    h, w = rgb.shape[:2]
    conv = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGB2RGBA,
            'bgra8': cv2.COLOR_RGB2BGRA, 'mono8': cv2.COLOR_RGB2GRAY}
    big = False
    if encoding in conv:
        px = rgb if conv[encoding] is None else cv2.cvtColor(rgb, conv[encoding])
        rows = px.reshape(h, -1)
    elif encoding == 'mono16':
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype('>u2') * 257
        rows = px.view(np.uint8).reshape(h, -1)
        big = True
    elif encoding in ('yuv422', 'yuv422_yuy2'):
        yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
        y, u, v = yuv[..., 0], yuv[:, 0::2, 1], yuv[:, 0::2, 2]
        packed = np.empty((h, w * 2), np.uint8)
        if encoding == 'yuv422':  # UYVY
            channels = (u, y[:, 0::2], v, y[:, 1::2])
        else:  # YUYV
            channels = (y[:, 0::2], u, y[:, 1::2], v)
        for k, channel in enumerate(channels):
            packed[:, k::4] = channel
        rows = packed
    else:
        raise ValueError(encoding)
    if pad:
        rows = np.hstack([rows, np.full((h, pad), 77, np.uint8)])
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big), step=rows.shape[1])
    msg.data = np.ascontiguousarray(rows).tobytes()
    return msg


def boxes_of(det_array) -> np.ndarray:
    out = []
    for d in det_array.detections:
        cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
        out.append([cx - d.bbox.size_x / 2, cy - d.bbox.size_y / 2,
                    cx + d.bbox.size_x / 2, cy + d.bbox.size_y / 2])
    return np.array(sorted(out)).reshape(-1, 4)


@pytest.fixture(scope='module')
def raw_node(fixture_models):
    proc = NodeProcess('-p', f'model_path:={fixture_models["frozen_graph"]}',
                       '-p', 'tracker.min_hits:=1', '-p', 'input_timeout:=600.0',
                       '-p', 'memory_report_period:=1.0')
    client = Client()
    try:
        client.wait_connected(proc)
        yield proc, client
    finally:
        client.close()
        proc.stop()


def test_memory_lines_with_glibc_heap_and_trim(raw_node):
    import re
    proc, c = raw_node
    deadline = time.monotonic() + 10
    while len(re.findall('memory: RSS', proc.text())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [ln for ln in proc.text().splitlines() if 'memory: RSS' in ln]
    assert len(lines) >= 2, proc.text()[-2000:]
    m = re.search(r'memory: RSS ([0-9.]+) MB; malloc in use ([0-9.]+) MB, free in arenas '
                  r'([0-9.]+) MB, mmapped ([0-9.]+) MB; malloc_trim freed ([0-9.-]+) MB',
                  lines[-1])
    assert m, lines[-1]
    rss, in_use = float(m.group(1)), float(m.group(2))
    assert 50 < rss < 8000 and 0 < in_use < rss, lines[-1]


def test_exact_boxes_header_label_score(raw_node):
    proc, c = raw_node
    for w, h in [(640, 480), (1280, 720), (300, 300)]:
        stamp = c.send(image_msg(bright_cell_frame(w, h, CELLS)), frame_id=f'cam_{w}')
        out = c.wait_for(stamp)
        assert out is not None, proc.text()
        assert out.header.frame_id == f'cam_{w}' and out.header.stamp == stamp
        np.testing.assert_allclose(boxes_of(out), sorted_boxes(w, h), atol=1.0)
        for d in out.detections:
            assert d.results[0].hypothesis.class_id == 'hand'
            assert d.results[0].hypothesis.score > 0.9
            assert d.header == out.header


def test_empty_array_when_nothing_found(raw_node):
    proc, c = raw_node
    stamp = c.send(image_msg(np.zeros((480, 640, 3), np.uint8)))
    out = c.wait_for(stamp)
    assert out is not None and len(out.detections) == 0 and out.header.stamp == stamp


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16',
                                      'yuv422', 'yuv422_yuy2'])
@pytest.mark.parametrize('pad', [0, 13])
def test_every_encoding_and_row_padding(raw_node, encoding, pad):
    proc, c = raw_node
    w, h = 640, 480
    stamp = c.send(image_msg(bright_cell_frame(w, h, CELLS), encoding, pad))
    out = c.wait_for(stamp)
    assert out is not None, proc.text()[-3000:]
    np.testing.assert_allclose(boxes_of(out), sorted_boxes(w, h), atol=1.5)


def test_track_ids_in_detections_and_hands(raw_node):
    proc, c = raw_node
    ids = []
    # 10 s of image time after the previous tests: their tracks are gone; then 30 Hz frames
    assert c.wait_for(c.send(image_msg(np.zeros((480, 640, 3), np.uint8)), dt=10.0)) is not None
    for _ in range(5):
        stamp = c.send(image_msg(bright_cell_frame(640, 480, [(4, 4)])), dt=1 / 30)
        out = c.wait_for(stamp)
        assert out is not None and len(out.detections) == 1
        ids.append(out.detections[0].id)
    assert ids[0] != '' and len(set(ids)) == 1, f'a still hand keeps its id: {ids}'
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(h.header.stamp == stamp for h in c.hands):
        c.ex.spin_once(timeout_sec=0.02)
    hands = [h for h in c.hands if h.header.stamp == stamp][0]
    assert [str(t.id) for t in hands.hands if t.state == 1] == [ids[-1]]
    assert (hands.image_width, hands.image_height) == (640, 480)


def _bad_messages():
    from sensor_msgs.msg import Image
    good = image_msg(bright_cell_frame(64, 48, CELLS))
    trunc = image_msg(bright_cell_frame(640, 480, CELLS))
    trunc.data = bytes(trunc.data)[:1000]
    wrong_step = image_msg(bright_cell_frame(640, 480, CELLS))
    wrong_step.step = 100
    zero = Image(height=0, width=0, encoding='rgb8', step=0)
    unknown = image_msg(bright_cell_frame(64, 48, CELLS))
    unknown.encoding = '32FC7'
    huge = Image(height=100000, width=100000, encoding='rgb8', step=300000)
    huge.data = bytes(16)
    return {'truncated': trunc, 'wrong step': wrong_step, 'zero size': zero,
            'unknown encoding': unknown, 'huge': huge}, good


def test_bad_input_is_logged_counted_and_node_keeps_answering(raw_node):
    proc, c = raw_node
    bad, _ = _bad_messages()
    needles = {'truncated': 'truncated', 'wrong step': 'step', 'zero size': '0x0',
               'unknown encoding': '32FC7', 'huge': '100000x100000'}
    bad_stamps = []
    for name, m in bad.items():
        # the worker is idle (the last good frame was answered), so the bad frame is processed,
        # not replaced; wait for its log line before the next frame
        bad_stamps.append(c.send(m))
        assert c.wait_for_log(proc, bad_stamps[-1]), f'no log line about the {name} image'
        assert needles[name] in proc.text(), f'the log line does not say {needles[name]!r}'
        stamp = c.send(image_msg(bright_cell_frame(640, 480, CELLS)))
        assert c.wait_for(stamp) is not None, 'node still answers after bad input'
    assert proc.alive()
    assert all(c.wait_for(s, timeout=0.2) is None for s in bad_stamps), 'bad frames give no output'
    deadline = time.monotonic() + 20  # the next statistics line (every 0.5 s)
    while f'ImageConversionError {len(bad)}' not in proc.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f'ImageConversionError {len(bad)}' in proc.text(), \
        'the statistics line counts every bad frame'


def test_outputs_in_stamp_order_one_per_processed_input(raw_node):
    proc, c = raw_node
    c.dets.clear()
    # a burst of 40 frames while the node is busy with the first ones. Small frames (57 kB), so
    # that the burst itself is unlikely to overflow the transport's buffers on a loaded machine,
    # where a best-effort frame is lost before it reaches the node (a fresh-clone run with two
    # suites at once got nothing after the 34th of 40 frames of 640x480, 37 MB, in 10 s)
    stamps = [c.send(image_msg(bright_cell_frame(160, 120, CELLS))) for _ in range(40)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(d.header.stamp == stamps[-1] for d in c.dets):
        c.ex.spin_once(timeout_sec=0.02)
    got = [(d.header.stamp.sec, d.header.stamp.nanosec) for d in c.dets]
    assert got == sorted(got) and len(got) == len(set(got)), 'in stamp order, no duplicates'
    assert (stamps[-1].sec, stamps[-1].nanosec) in got, 'the newest frame is always processed'
    assert set(got) <= {(s.sec, s.nanosec) for s in stamps}


def test_compressed_input(fixture_models):
    from sensor_msgs.msg import CompressedImage
    proc = NodeProcess('-p', f'model_path:={fixture_models["tflite"]}',
                       '-p', 'use_compressed:=true', '-r', '__ns:=/compressed_cam')
    c = Client(compressed=True, namespace='/compressed_cam')
    try:
        c.wait_connected(proc)
        rgb = bright_cell_frame(640, 480, CELLS)
        for fmt, ext in [('jpeg', '.jpg'), ('png', '.png'),
                         ('rgb8; jpeg compressed bgr8', '.jpg')]:
            ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            stamp = c.send(CompressedImage(format=fmt, data=buf.tobytes()))
            out = c.wait_for(stamp)
            assert out is not None, proc.text()[-3000:]
            np.testing.assert_allclose(boxes_of(out), sorted_boxes(640, 480), atol=2.0)
        corrupt = c.send(CompressedImage(format='jpeg', data=b'\xff\xd8\xff garbage' * 10))
        assert c.wait_for_log(proc, corrupt), proc.text()[-2000:]
        stamp = c.send(CompressedImage(format='jpeg', data=cv2.imencode('.jpg', rgb)[1].tobytes()))
        assert c.wait_for(stamp) is not None and c.wait_for(corrupt, 0.2) is None
        time.sleep(1.2)
        assert 'ImageConversionError' in proc.text() and proc.alive()
    finally:
        c.close()
        proc.stop()


def test_missing_model_is_a_clear_error_and_the_node_stays_up():
    proc = NodeProcess('-p', 'model_path:=/nonexistent/hands.pb', '-r', '__ns:=/no_model')
    c = Client(namespace='/no_model')
    try:
        deadline = time.monotonic() + 60  # no model: the node logs no 'loaded' line
        while c.pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            c.ex.spin_once(timeout_sec=0.05)
        time.sleep(0.5)
        # one best-effort frame can be lost right after discovery: send until the node logs
        # that it dropped one; none of them may come back
        logged = False
        for _ in range(5):
            stamp = c.send(image_msg(bright_cell_frame(640, 480, CELLS)))
            assert c.wait_for(stamp, timeout=2.0) is None
            logged = c.wait_for_log(proc, stamp, timeout=3.0)
            if logged:
                break
        assert logged, proc.text()[-3000:]
        time.sleep(1.5)
        log = proc.text()
        assert proc.alive(), log
        assert '/nonexistent/hands.pb' in log and 'model_path' in log
        assert 'ModelLoadError' in log, 'frames without a model are counted by reason'
    finally:
        c.close()
        proc.stop()


@pytest.fixture()
def inprocess_node(fixture_models):
    """Return the node in this process (to read its counters), fed by another process over DDS."""
    from hand_tracker_ros.detector_node import HandDetectorNode
    import rclpy
    from rclpy.parameter import Parameter
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    # a name of its own: the module's raw_node process (`hand_detector`) runs on the same domain,
    # and a service call by name would reach both (a CI run's Jazzy part read this node's
    # setting after the other one had answered)
    node = HandDetectorNode(
        context=ctx, cli_args=['--ros-args', '-r', '__node:=inprocess_detector'],
        parameter_overrides=[
            Parameter('model_path', value=str(fixture_models['frozen_graph'])),
            Parameter('landmarks.enable', value=False), Parameter('stats_period', value=1.0)])
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)  # as the executables
    ex.add_node(node)
    import threading
    t = threading.Thread(target=ex.spin, daemon=True)
    t.start()
    try:
        yield node
    finally:
        ex.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_overload_drops_stale_frames_counts_them_and_stays_bounded(inprocess_node):
    """
    A 1280x720 stream at 120 Hz outruns one worker: stale frames are dropped and counted.

    Every received frame is accounted for; the backlog (so the latency) stays bounded.
    """
    node = inprocess_node
    assert node.detector is not None  # the model is loaded
    rate = 120.0
    pub = procs.start(
        [sys.executable, str(REPO / 'benchmarks' / 'image_publisher.py'), '--rate', str(rate),
         '--duration', '4', '--width', '1280', '--height', '720'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    first_rx = None
    backlog = 0  # the most frames seen waiting or in a worker at once
    deadline = time.monotonic() + 120
    while pub.poll() is None and time.monotonic() < deadline:
        if first_rx is None and node.pipeline.stats.received > 0:
            first_rx = time.monotonic()
        backlog = max(backlog, node.pipeline.pending())
        time.sleep(0.005)
    out = pub.communicate(timeout=30)[0]
    assert pub.returncode == 0 and first_rx is not None, out
    published = int(out.split()[-1])
    t0 = float(next(line.split()[1] for line in out.splitlines() if line.startswith('start ')))
    # The publisher starts once it sees the node's subscription, but the node's reader can match
    # the publisher's writer later: frames sent before that go nowhere (2 s of them, a quarter of
    # the stream, in a CI run on a loaded machine). Judge the frames sent once the node got one.
    sent_matched = published - max(0, int((first_rx - t0) * rate))
    assert node.pipeline.wait_idle(10)
    st = node.pipeline.stats
    lost = node.drop_reasons['lost_in_transport']
    print(f'published {published} ({sent_matched} after the first was received), received '
          f'{st.received}, lost in transport {lost}, processed {st.processed}, '
          f'dropped stale {st.dropped_stale}')
    # best-effort frames the middleware loses on a loaded machine (67 of 477 in a fresh-clone
    # run) are not the node's to keep, but it must notice and count them
    assert st.received + lost > 0.5 * sent_matched, (st.received, lost, sent_matched, published)
    assert st.received + lost <= published
    assert st.received == st.processed + st.dropped_stale + st.failed
    assert st.dropped_stale == node.drop_reasons['stale'] > 0
    assert st.failed == 0
    # newest-frame-wins: the backlog never exceeds the frames in the workers plus queue_size
    # (1), so a frame waits for at most one inference in progress. Checked by count, not by
    # time: latency is measured by benchmarks/ (on a starved CI machine one run saw end-to-end
    # p95 603 ms beside inference p95 76 ms, 28 frames processed)
    bound = node.get_parameter('num_workers').value + node.get_parameter('queue_size').value
    print(f'backlog at most {backlog} (bound {bound}); end-to-end p95 '
          f'{st.end_to_end_ms.percentile(95):.0f} ms, inference p95 '
          f'{st.process_ms.percentile(95):.0f} ms')
    assert 0 < backlog <= bound, (backlog, bound)


def test_runtime_parameters_validated(inprocess_node):
    from rclpy.parameter import Parameter
    node = inprocess_node
    ok = node.set_parameters([Parameter('score_threshold', value=0.8)])[0]
    assert ok.successful and node.get_parameter('score_threshold').value == 0.8
    bad = node.set_parameters([Parameter('score_threshold', value=1.5)])[0]
    assert not bad.successful and node.get_parameter('score_threshold').value == 0.8
    ro = node.set_parameters([Parameter('num_workers', value=3)])[0]
    assert not ro.successful
    bad_model = node.set_parameters([Parameter('model_path', value='/nonexistent/x.tflite')])[0]
    assert not bad_model.successful and '/nonexistent/x.tflite' in bad_model.reason
    assert node.detector is not None, 'the old model keeps running'
    bad_tracker = node.set_parameters([Parameter('tracker.max_tracks', value=0)])[0]
    assert not bad_tracker.successful


def test_rejected_parameter_batch_over_dds_changes_nothing(inprocess_node):
    """
    One atomic batch over the parameter service (another context, so over DDS).

    A valid tracker value and a model path that cannot load. The batch is rejected and neither
    the tracker setting, nor the model, nor the parameter values change; the same tracker value
    alone is then accepted.
    """
    from rcl_interfaces.srv import GetParameters, SetParametersAtomically
    import rclpy
    from rclpy.parameter import Parameter

    node = inprocess_node
    model_before = node.detector
    assert node.tracker_params.max_tracks == 10
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    client_node = rclpy.create_node('param_batch_client', context=ctx)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(client_node)
    try:
        name = node.get_fully_qualified_name()
        set_atomic = client_node.create_client(SetParametersAtomically,
                                               f'{name}/set_parameters_atomically')
        get = client_node.create_client(GetParameters, f'{name}/get_parameters')
        assert set_atomic.wait_for_service(timeout_sec=30) and get.wait_for_service(30)

        def call(client, request):
            # Fast DDS sends a response only if it has matched the client's response reader
            # within 100 ms (rmw_fastrtps #390); wait_for_service does not wait for that match,
            # so on a loaded machine a first answer can be lost. Both requests are idempotent.
            for _ in range(4):
                future = client.call_async(request)
                executor.spin_until_future_complete(future, timeout_sec=15)
                if future.done():
                    return future.result()
                client.remove_pending_request(future)
            raise AssertionError('no answer from the parameter service in 4 tries')

        batch = [Parameter('tracker.max_tracks', value=5),
                 Parameter('model_path', value='/nonexistent/model.tflite')]
        result = call(set_atomic, SetParametersAtomically.Request(
            parameters=[p.to_parameter_msg() for p in batch])).result
        assert not result.successful and '/nonexistent/model.tflite' in result.reason
        assert node.tracker_params.max_tracks == 10, 'tracker setting must not change'
        assert node.detector is model_before, 'the old model keeps running'
        values = call(get, GetParameters.Request(names=['tracker.max_tracks',
                                                        'model_path'])).values
        assert values[0].integer_value == 10 and values[1].string_value != batch[1].value

        result = call(set_atomic, SetParametersAtomically.Request(
            parameters=[batch[0].to_parameter_msg()])).result
        assert result.successful and node.tracker_params.max_tracks == 5
    finally:
        client_node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_swipe_over_dds_produces_one_gesture_event(raw_node):
    """
    Publish exactly one swipe_right event for a hand sweeping left to right at 30 Hz.

    The hand is a bright cell; the event on `gestures` carries the hand's track id and stamps
    from the images.
    """
    from hand_tracker.msg import GestureEvent
    from hand_tracker_ros.messages import stamp_to_sec as t
    proc, c = raw_node
    start = c.send(image_msg(np.zeros((480, 640, 3), np.uint8)), dt=10.0)
    assert c.wait_for(start) is not None
    ids, stamps = [], []
    for col in range(1, 9):
        stamp = c.send(image_msg(bright_cell_frame(640, 480, [(5, col)])), dt=1 / 30)
        out = c.wait_for(stamp)
        assert out is not None and len(out.detections) == 1
        ids.append(out.detections[0].id)
        stamps.append(stamp)
    for _ in range(5):  # the hand rests at the end
        c.wait_for(c.send(image_msg(bright_cell_frame(640, 480, [(5, 8)])), dt=1 / 30))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        c.ex.spin_once(timeout_sec=0.05)
    assert len(set(ids)) == 1, f'the moving hand keeps one id: {ids}'
    # this test's frames only: the subscription has been up since the module's first test, and
    # the overload test's publisher stamps its frames with the wall clock
    events = [e for e in c.gestures if t(start) < t(e.end) <= t(stamps[-1]) + 1.0]
    swipes = [e for e in events if e.name.startswith('swipe')]
    assert [(e.gesture, e.name) for e in swipes] == [(GestureEvent.SWIPE_RIGHT, 'swipe_right')], \
        [(e.name, e.hand_id, t(e.start), t(e.end), t(start)) for e in events]
    ev = swipes[0]
    assert str(ev.hand_id) == ids[0] and 0 < ev.confidence <= 1
    assert t(stamps[0]) - 1e-6 <= t(ev.start) < t(ev.end) <= t(stamps[-1]) + 5 / 30 + 1e-6


# ---------------------------------------------------------------------------- the landmark chain
def _webcam_frame():
    from hand_tracker_training.datasets.parts import load_part
    sample = next(s for s in load_part('hands_webcam_subhih', 'val') if len(s.boxes) == 1)
    return sample, cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)


def test_default_chain_publishes_keypoints_presence_and_handedness(shared_data):
    """The shipped SSD + MediaPipe palm and landmark models on a real held-out webcam frame."""
    from hand_tracker.msg import GestureEvent, TrackedHand
    from hand_tracker_training.poses import finger_labels
    sample, rgb = _webcam_frame()
    proc = NodeProcess('-r', '__ns:=/chain', '-p', 'tracker.min_hits:=1', '-p',
                       'poses.hold_time:=0.05', ssd_only=False)
    c = Client(namespace='/chain')
    events = c.gestures
    try:
        c.wait_connected(proc)
        assert 'chain: SSD + palm proposals, landmarks hand_landmark_full.tflite' in proc.text()
        for _ in range(3):  # the first frame finds the hand, the next ones track its keypoints
            stamp = c.send(image_msg(rgb), dt=1 / 30)
            out = c.wait_for(stamp)
            assert out is not None, proc.text()[-3000:]
        assert len(out.detections) == 1, proc.text()[-3000:]
        assert out.detections[0].results[0].hypothesis.class_id == 'hand'
        box = boxes_of(out)[0]
        from hand_tracker_ros.geometry import pairwise_iou
        assert pairwise_iou(box[None], sample.boxes)[0, 0] >= 0.5
        deadline = time.monotonic() + 5
        while not any(h.header.stamp == stamp for h in c.hands) and time.monotonic() < deadline:
            c.ex.spin_once(timeout_sec=0.02)
        hands = next(h for h in c.hands if h.header.stamp == stamp).hands
        assert len(hands) == 1 and hands[0].state == TrackedHand.STATE_CONFIRMED
        hand = hands[0]
        assert len(hand.keypoints) == 21 and 0.5 <= hand.presence <= 1.0
        kx = np.array([p.x for p in hand.keypoints])
        ky = np.array([p.y for p in hand.keypoints])
        b = sample.boxes[0]
        assert np.mean((kx >= b[0] - 10) & (kx <= b[2] + 10) & (ky >= b[1] - 10)
                       & (ky <= b[3] + 10)) >= 0.9
        assert hand.handedness in (TrackedHand.HANDEDNESS_UNKNOWN, TrackedHand.HANDEDNESS_LEFT,
                                   TrackedHand.HANDEDNESS_RIGHT)
        assert (hand.handedness_score == 0.0) == (hand.handedness == 0)
        # the static pose: the labelled finger count, a named pose held 3 frames -> one event
        assert hand.finger_count == finger_labels(sample.image_path)[1][0]
        assert 0.5 <= hand.finger_count_confidence <= 1.0
        assert hand.pose != TrackedHand.POSE_UNKNOWN and hand.pose_name
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            c.ex.spin_once(timeout_sec=0.02)
        assert [(e.gesture, e.pose, e.name) for e in events] == [
            (GestureEvent.POSE, hand.pose, f'pose_{hand.pose_name}')], proc.text()[-3000:]
    finally:
        c.close()
        proc.stop()


def test_missing_landmark_model_names_the_file_and_publishes_nothing_unverified(shared_data):
    _, rgb = _webcam_frame()
    proc = NodeProcess('-r', '__ns:=/no_landmarks', '-p',
                       'landmarks.model_path:=/nonexistent/hand_landmark.tflite', ssd_only=False)
    c = Client(namespace='/no_landmarks')
    try:
        c.wait_connected(proc, probe=False)  # this node answers nothing
        # one best-effort frame can be lost right after discovery (seen in a CI run): send
        # until the node says it dropped one; none of them may come back with boxes
        logged = False
        for _ in range(5):
            stamp = c.send(image_msg(rgb))
            assert c.wait_for(stamp, timeout=2.0) is None, 'no unverified boxes are published'
            logged = c.wait_for_log(proc, stamp, timeout=3.0)
            if logged:
                break
        assert logged, proc.text()[-3000:]
        time.sleep(1.0)
        log = proc.text()
        assert proc.alive(), log
        assert '/nonexistent/hand_landmark.tflite' in log
        assert 'tools/fetch_mediapipe_models.sh' in log and 'landmarks.enable:=false' in log
        assert 'ModelLoadError' in log, 'dropped frames are counted by reason'
    finally:
        c.close()
        proc.stop()


@pytest.mark.ros
@pytest.mark.parametrize('queue_size', [1, 30])
def test_a_burst_up_to_queue_size_is_not_lost_in_the_subscription(fixture_models, queue_size):
    """
    Frames that arrive while the executor is busy wait in the subscription's history.

    Best effort (sensor-data QoS) either way; the history keeps max(5, queue_size) frames, so
    a recorded input (`hand-tracker run` sets queue_size 30) keeps a burst of 20.
    """
    import numpy as np
    from hand_tracker_ros.detector_node import HandDetectorNode
    from hand_tracker_ros.image_conversion import rgb_to_image_fields
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data, ReliabilityPolicy
    from sensor_msgs.msg import Image
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = HandDetectorNode(context=ctx, parameter_overrides=[
            Parameter('model_path', value=str(fixture_models['tflite'])),
            Parameter('landmarks.enable', value=False), Parameter('queue_size', value=queue_size)])
        assert node.sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert node.sub.qos_profile.depth == max(5, queue_size)
        camera = rclpy.create_node('burst_camera', context=ctx)
        pub = camera.create_publisher(Image, 'image', qos_profile_sensor_data)
        frame = Image(**rgb_to_image_fields(np.zeros((48, 64, 3), np.uint8)))
        for _ in range(20):  # nothing takes them yet: the executor is not spinning
            pub.publish(frame)
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        for _ in range(100):
            ex.spin_once(timeout_sec=0.05)
        assert node.pipeline.stats.received == min(20, max(5, queue_size))
        ex.shutdown(timeout_sec=2)
        camera.destroy_node()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
