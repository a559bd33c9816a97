"""
End-to-end speed of the hand_detector node against the naive webcam-script design.

  .venv/bin/python benchmarks/bench_node.py [--duration 10] [--rates 30 60]
      [--model-dir models/] [--backends tflite frozen_graph] [--workers 1]
      [--landmarks on off]

For every backend and input rate, a separate process (benchmarks/image_publisher.py) streams
640x480 rgb8 EgoHands frames over DDS into the node under test, which runs in this process on a
MultiThreadedExecutor; a subscriber here records every `detections` message. Reported: input
rate, output rate, frames without output (dropped), image-to-detection latency (now -
header.stamp) median and p95, and the tracker's share of the per-frame time. The frames hold
2-4 hands each, so the node's landmark chain (on by default; ``--landmarks off`` = the SSD
alone) does its real work; the median and the mean cost of each of its stages per frame, its
landmark calls per frame and the share of frames that ran the palm detector and the SSD are
printed below the table (a stage that runs on some frames only shows its saving in the mean).

The baseline, run in the same invocation, is the design of the original webcam scripts: image
conversion and inference (one TF session on the frozen graph) inside the subscription callback,
a single-threaded executor, a reliable queue of 10.

The model is an SSD MobileNet v2 of the real architecture; by default the shipped one in
models/ (--model-dir), or random weights with --random-weights.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _env() -> dict:
    from hand_tracker_ros.resources import fastdds_profile_variable
    env = dict(os.environ)
    variable = fastdds_profile_variable(env)
    if variable is not None:
        env[variable] = str(REPO / 'config' / 'fastdds_shm.xml')
    return env


def run_case(name: str, make_node, rate: float, duration: float, reliable_pub: bool,
             motion: str = 'cycle') -> dict:
    """Start the node (in-process) and the publisher (subprocess); collect latencies."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Detection2DArray

    node, executor_kind = make_node()
    sink = rclpy.create_node('bench_sink')
    lat, stamps = [], []
    lock = threading.Lock()

    def on_dets(msg):
        now = sink.get_clock().now().nanoseconds
        t = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with lock:
            lat.append((now - t) / 1e6)
            stamps.append(t)

    sink.create_subscription(Detection2DArray, 'detections', on_dets, QoSProfile(depth=100))
    executor = MultiThreadedExecutor(num_threads=int(executor_kind[5:] or 4)) \
        if executor_kind.startswith('multi') else SingleThreadedExecutor()
    executor.add_node(node)
    sink_exec = SingleThreadedExecutor()
    sink_exec.add_node(sink)
    threads = [threading.Thread(target=executor.spin, daemon=True),
               threading.Thread(target=sink_exec.spin, daemon=True)]
    for t in threads:
        t.start()
    cmd = [sys.executable, str(REPO / 'benchmarks' / 'image_publisher.py'), '--rate', str(rate),
           '--duration', str(duration), '--motion', motion] + (
               ['--reliable'] if reliable_pub else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=duration + 60)
    published = int(out.stdout.strip().split()[-1]) if out.returncode == 0 else 0
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
    time.sleep(2.0)  # let the tail drain
    executor.shutdown(timeout_sec=2.0)
    sink_exec.shutdown(timeout_sec=2.0)
    node.destroy_node()
    sink.destroy_node()
    with lock:
        lat_a = np.array(lat)
        ordered = bool(np.all(np.diff(stamps) > 0)) if len(stamps) > 1 else True
    res = dict(case=name, rate_in=rate,  # noqa: C408
               published=published, outputs=len(lat_a),
               rate_out=len(lat_a) / duration,
               dropped=published - len(lat_a),
               lat_median=float(np.median(lat_a)) if len(lat_a) else float('nan'),
               lat_p95=float(np.percentile(lat_a, 95)) if len(lat_a) else float('nan'),
               lat_max=float(lat_a.max()) if len(lat_a) else float('nan'),
               in_stamp_order=ordered)
    tracker_ms = getattr(node, 'bench_tracker_ms', None)
    if tracker_ms:
        res['tracker_ms_median'] = float(np.median(tracker_ms))
    stages = getattr(node, 'bench_stages', None)
    if stages:
        keys = sorted({k for s in stages for k in s})
        res['stages_ms_median'] = {k: float(np.median([s.get(k, 0.0) for s in stages]))
                                   for k in keys}
        # a stage that runs on some frames only (the palm detector, the SSD every n-th frame
        # while tracking) costs its full time in the median; its mean per frame shows the saving
        res['stages_ms_mean'] = {k: float(np.mean([s.get(k, 0.0) for s in stages]))
                                 for k in keys}
    return res


def make_naive_node(model_path: str):
    """Return the original webcam scripts' design: everything in the callback, one TF session."""
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_ros.image_conversion import image_to_rgb
    import rclpy
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2D, Detection2DArray

    detector = load_detector(model_path, num_threads=2)
    node = rclpy.create_node('naive_hand_detector')
    pub = node.create_publisher(Detection2DArray, 'detections', 10)

    def cb(msg):
        rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                           msg.data)
        dets = detector.detect(rgb, min_score=0.5)
        out = Detection2DArray(header=msg.header)
        for b in dets.boxes:
            d = Detection2D(header=msg.header)
            d.bbox.center.position.x = float(b[0] + b[2]) / 2
            d.bbox.center.position.y = float(b[1] + b[3]) / 2
            d.bbox.size_x, d.bbox.size_y = float(b[2] - b[0]), float(b[3] - b[1])
            out.detections.append(d)
        pub.publish(out)

    node.create_subscription(Image, 'image', cb, QoSProfile(depth=10))
    return node, 'single'


def _value(text: str):
    """Read a --set value as YAML does (true, 3, 0.5, text)."""
    import yaml
    return yaml.safe_load(text)


def make_hand_detector(model_path: str, workers: int, threads: int, executor_kind: str,
                       landmarks: bool = True, settings: tuple = ()):
    from hand_tracker_ros.detector_node import HandDetectorNode
    from rclpy.parameter import Parameter
    node = HandDetectorNode(parameter_overrides=[
        Parameter('model_path', value=model_path), Parameter('num_workers', value=workers),
        Parameter('num_threads', value=threads), Parameter('stats_period', value=3600.0),
        Parameter('landmarks.enable', value=landmarks)] + [
        Parameter(s.split('=', 1)[0], value=_value(s.split('=', 1)[1])) for s in settings])
    # every stage's cost (ms) and the landmark calls of each frame the chain processed
    node.bench_stages = []
    chain_process = node._chain.process

    def timed_chain(*a, **k):
        t0 = time.perf_counter()
        r = chain_process(*a, **k)
        node.bench_stages.append({**r.timings_ms, 'chain_total': (time.perf_counter() - t0) * 1e3,
                                  'landmark_calls': float(r.landmark_calls),
                                  'palm_runs': float(r.palm_ran), 'ssd_runs': float(r.ssd_ran)})
        return r
    node._chain.process = timed_chain
    # time the tracker + gestures inside the node's ordered stage
    node.bench_tracker_ms = []
    tracker_update = node._tracker.update

    def timed_tracker(*a, **k):
        t0 = time.perf_counter()
        r = tracker_update(*a, **k)
        node.bench_tracker_ms.append((time.perf_counter() - t0) * 1e3)
        return r
    node._tracker.update = timed_tracker
    return node, executor_kind


def random_weight_models(out_dir: Path) -> Path:
    """
    Export an SSD MobileNet v2 300x300 in all three forms.

    The real architecture with random weights; int8 calibrated on real frames.
    """
    import cv2
    from hand_tracker_training.export import export_model
    from hand_tracker_training.model import build_ssd, SSDConfig
    config = SSDConfig(input_size=300)
    frames = sorted((REPO.parent / 'shared' / 'data' / 'egohands' / '_LABELLED_SAMPLES'
                     / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:16]
    calib = [cv2.resize(cv2.imread(str(f))[:, :, ::-1], (300, 300)) for f in frames]
    export_model(build_ssd(config), config, out_dir, calib)
    return out_dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--duration', type=float, default=10.0)
    ap.add_argument('--rates', type=float, nargs='+', default=[30.0, 60.0])
    ap.add_argument('--model-dir', type=Path, default=REPO / 'models')
    ap.add_argument('--random-weights', action='store_true',
                    help='export a random-weight SSD MobileNet v2 300x300 instead of models/')
    ap.add_argument('--backends', nargs='+', default=['tflite', 'tflite_int8', 'frozen_graph'])
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--landmarks', nargs='+', choices=('on', 'off'), default=['on', 'off'],
                    help="the node's landmark chain (landmarks.enable): on (the default "
                         'parameters), off (the SSD alone)')
    ap.add_argument('--motion', choices=('cycle', 'pan', 'empty'), default='cycle',
                    help='input frames (benchmarks/image_publisher.py): cycle = 20 EgoHands '
                         'frames in turn (a new scene every frame), pan = a window sliding '
                         'smoothly over them (a video), empty = 20 hand-free scenes')
    ap.add_argument('--set', nargs='+', default=[], metavar='NAME=VALUE',
                    help='other node parameters, e.g. landmarks.lite=true palm.every_n_frames=10')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--no-baseline', action='store_true')
    ap.add_argument('--executor', default='single',
                    help="the node's executor: 'single' (what the executables use) or 'multiN' "
                         '(rclpy MultiThreadedExecutor with N threads, e.g. multi4)')
    a = ap.parse_args()
    os.environ.update({k: v for k, v in _env().items() if k.endswith('_DEFAULT_PROFILES_FILE')})
    os.environ.setdefault('ROS_LOG_DIR', tempfile.mkdtemp(prefix='bench_roslog_'))
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    model_dir = random_weight_models(Path(tempfile.mkdtemp())) if a.random_weights else a.model_dir
    files = {'tflite': model_dir / 'model.tflite', 'tflite_int8': model_dir / 'model_int8.tflite',
             'frozen_graph': model_dir / 'frozen_inference_graph.pb'}
    import rclpy
    rclpy.init()
    rows = []
    try:
        for rate in a.rates:
            if not a.no_baseline:
                rows.append(run_case('naive baseline (frozen graph in callback)',
                                     lambda: make_naive_node(str(files['frozen_graph'])),
                                     rate, a.duration, reliable_pub=True, motion=a.motion))
                print(rows[-1], flush=True)
            for b in a.backends:
                for lm in a.landmarks:
                    name = f'{b}{" + landmarks" if lm == "on" else ""} ({a.executor}, ' \
                           f'{a.workers} worker)'
                    name += f' {" ".join(a.set)}' if a.set else ''
                    rows.append(run_case(name, lambda b=b, lm=lm: make_hand_detector(
                        str(files[b]), a.workers, a.threads, a.executor, lm == 'on', a.set),
                        rate, a.duration, reliable_pub=False, motion=a.motion))
                    print(rows[-1], flush=True)
    finally:
        rclpy.try_shutdown()
    print()
    print(f'model: {model_dir}; {a.duration:.0f} s per case; 640x480 rgb8 EgoHands frames '
          f'({a.motion}); machine: {os.cpu_count()} cores')
    hdr = (f'| {"case":45s} | in Hz | out Hz | published | outputs | dropped | '
           'latency median ms | p95 ms | tracker ms |')
    print(hdr)
    print('|' + '|'.join('-' * (len(c)) for c in hdr.split('|')[1:-1]) + '|')
    for r in rows:
        print(f'| {r["case"]:45s} | {r["rate_in"]:5.0f} | {r["rate_out"]:6.1f} | '
              f'{r["published"]:9d} | {r["outputs"]:7d} | {r["dropped"]:7d} | '
              f'{r["lat_median"]:17.1f} | {r["lat_p95"]:6.1f} | '
              f'{r.get("tracker_ms_median", float("nan")):10.3f} |')
    print()
    counts = ('landmark_calls', 'palm_runs', 'ssd_runs')
    for r in rows:
        for stat in ('median', 'mean'):
            if f'stages_ms_{stat}' in r:
                print(f'{r["rate_in"]:.0f} Hz {r["case"]}: per frame, {stat}: ' + ', '.join(
                    f'{k} {v:.{2 if k in counts else 1}f}' + ('' if k in counts else ' ms')
                    for k, v in r[f'stages_ms_{stat}'].items()))
    for rate in a.rates:
        base = [r for r in rows if r['rate_in'] == rate and r['case'].startswith('naive')]
        if base:
            for r in rows:
                if r['rate_in'] == rate and r is not base[0]:
                    speed_up = r['rate_out'] / max(base[0]['rate_out'], 1e-9)
                    print(f'{rate:.0f} Hz {r["case"]}: output rate x{speed_up:.2f}, '
                          f'p95 latency x{r["lat_p95"] / base[0]["lat_p95"]:.3f} of the baseline')
    return 0


if __name__ == '__main__':
    sys.exit(main())
