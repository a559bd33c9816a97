"""
Publishes real 640x480 rgb8 frames at a fixed rate (a stand-in camera in its own process).

  python benchmarks/image_publisher.py --rate 30 --duration 10 [--topic image] [--reliable]
      [--motion cycle|pan|empty]

Frames are EgoHands images from ../shared/data (2-4 hands each). ``cycle`` (default): 20 of them
resized to 640x480, one after the other (labelled frames about a second apart in their video:
every frame is a new scene, the worst case for a tracker). ``pan``: a 640x480 window slides
smoothly (80 px/s, back and forth) over one of them resized to 800x600, the next every 3 s: a
video whose hands move continuously, as a camera's do. ``empty``: 20 frames without a hand: the
largest 4:3 rectangle of an EgoHands test frame that keeps clear of every labelled hand
(``far_hands.hand_free_rect``), resized to 640x480, in turn. Each stamp is the ROS clock at publish
time, so a subscriber on this machine measures image-to-output latency as now - header.stamp.
Prints `start T` (time.monotonic() of frame 0; frame k is due at T + k / rate) before the first
frame and `published N` at the end.
"""
import argparse
from pathlib import Path
import sys
import time

import cv2
import numpy as np


REPO = Path(__file__).resolve().parents[1]


def pan_frame(images: list, n: int, rate: float, width: int, height: int) -> bytes:
    """Frame `n` of the ``pan`` video: a window sliding over ``images[n // (3 s)]``."""
    img = images[int(n / (3.0 * rate)) % len(images)]
    span = img.shape[1] - width
    x = int(round(80.0 * n / rate)) % (2 * span)
    x = x if x <= span else 2 * span - x
    y = (img.shape[0] - height) // 2
    return np.ascontiguousarray(img[y:y + height, x:x + width]).tobytes()


def load_images(n: int, width: int, height: int) -> list:
    """Return `n` EgoHands frames as RGB arrays resized to `width` x `height`."""
    return [np.frombuffer(f, np.uint8).reshape(height, width, 3)
            for f in load_frames(n, width, height)]


def load_empty_frames(n: int, width: int, height: int) -> list[bytes]:
    """`n` hand-free 4:3 rectangles of EgoHands test frames, resized, as rgb8 bytes."""
    sys.path.insert(0, str(REPO))
    from hand_tracker_training.datasets.far_hands import hand_free_rect
    from hand_tracker_training.datasets.parts import load_part
    out = []
    for sample in load_part('egohands', 'test'):
        rect = hand_free_rect(sample, width / height)
        if rect is None:
            continue
        x, y, w, h = rect
        bgr = cv2.resize(cv2.imread(sample.image_path)[y:y + h, x:x + w], (width, height),
                         interpolation=cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).tobytes())
        if len(out) == n:
            return out
    sys.exit(f'only {len(out)} hand-free frames found')


def load_frames(n: int, width: int, height: int) -> list[bytes]:
    folder = REPO.parent / 'shared' / 'data' / 'egohands' / '_LABELLED_SAMPLES' \
        / 'CARDS_OFFICE_S_B'
    files = sorted(folder.glob('*.jpg'))[:n]
    if not files:
        sys.exit(f'no frames in {folder}')
    out = []
    for f in files:
        bgr = cv2.resize(cv2.imread(str(f)), (width, height), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).tobytes())
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--rate', type=float, default=30.0)
    ap.add_argument('--duration', type=float, default=10.0)
    ap.add_argument('--topic', default='image')
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--reliable', action='store_true', help='reliable QoS (default best effort)')
    ap.add_argument('--wait-subscriber', type=float, default=10.0)
    ap.add_argument('--motion', choices=('cycle', 'pan', 'empty'), default='cycle')
    a = ap.parse_args()
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    frames = (load_frames(20, a.width, a.height) if a.motion == 'cycle'
              else load_empty_frames(20, a.width, a.height) if a.motion == 'empty' else None)
    images = load_images(20, a.width * 5 // 4, a.height * 5 // 4) if a.motion == 'pan' else None
    rclpy.init()
    node = rclpy.create_node('bench_image_publisher')
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if a.reliable
                     else ReliabilityPolicy.BEST_EFFORT)
    pub = node.create_publisher(Image, a.topic, qos)
    t_end = time.monotonic() + a.wait_subscriber
    while pub.get_subscription_count() == 0 and time.monotonic() < t_end:
        time.sleep(0.01)
    time.sleep(0.5)  # let discovery settle on both sides
    period = 1.0 / a.rate
    n = 0
    t0 = time.monotonic()
    print(f'start {t0:.6f}', flush=True)  # CLOCK_MONOTONIC, the same in every process here
    next_t = t0
    while time.monotonic() - t0 < a.duration:
        msg = Image(height=a.height, width=a.width, encoding='rgb8', is_bigendian=0,
                    step=a.width * 3)
        msg.header.frame_id = 'bench_camera'
        msg.data = frames[n % len(frames)] if frames is not None else \
            pan_frame(images, n, a.rate, a.width, a.height)
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        n += 1
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    print(f'published {n}', flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
