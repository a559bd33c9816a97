"""
Where the frames of an overloading stream go: 1280x720 rgb8 at 120 Hz into the detector node.

The scenario of test_overload_drops_stale_frames (the node in this process, the fixture model,
benchmarks/image_publisher.py in another), optionally beside N busy-loop processes that take
the CPU, as a training job or a full test suite would. Per run it prints what the publisher
sent, what the node received, what the middleware reported lost (``lost_in_transport``), and
what the node processed or dropped as stale.

  python benchmarks/overload.py --model tflite|frozen_graph --load 2 --runs 3
"""
import argparse
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import threading

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'test'))


def one_run(model: Path, load: int) -> dict:
    import rclpy
    from rclpy.parameter import Parameter

    from hand_tracker_ros.detector_node import HandDetectorNode
    hogs = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(load)]
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = HandDetectorNode(context=ctx, parameter_overrides=[
        Parameter('model_path', value=str(model)), Parameter('stats_period', value=1.0)])
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        pub = subprocess.run(
            [sys.executable, str(REPO / 'benchmarks' / 'image_publisher.py'), '--rate', '120',
             '--duration', '4', '--width', '1280', '--height', '720'],
            capture_output=True, text=True, env=dict(os.environ), check=True)
        node.pipeline.wait_idle(10)
        st = node.pipeline.stats
        return {'published': int(pub.stdout.split()[-1]), 'received': st.received,
                'lost_in_transport': node.drop_reasons['lost_in_transport'],
                'processed': st.processed, 'dropped_stale': st.dropped_stale}
    finally:
        for hog in hogs:
            hog.kill()
        ex.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', choices=('tflite', 'frozen_graph'), default='frozen_graph')
    ap.add_argument('--load', type=int, default=2, help='busy-loop processes beside it')
    ap.add_argument('--runs', type=int, default=3)
    a = ap.parse_args()
    os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                          str(REPO / 'config' / 'fastdds_shm.xml'))
    from fixture_models import build_bright_cell_models
    model = build_bright_cell_models(Path(tempfile.mkdtemp()))[a.model]
    ratios = []
    for i in range(a.runs):
        r = one_run(model, a.load)
        ratios.append(r['received'] / r['published'])
        print(f'run {i + 1}: ' + ', '.join(f'{k} {v}' for k, v in r.items())
              + f'; received/published {ratios[-1]:.2f}', flush=True)
    print(f'{a.model}, load {a.load}: received/published min {min(ratios):.2f}, '
          f'median {sorted(ratios)[len(ratios) // 2]:.2f} over {a.runs} runs')
    return 0


if __name__ == '__main__':
    sys.exit(main())
