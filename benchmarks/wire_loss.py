"""
Frame loss on the wire: frames received of 640x480 rgb8 frames published at 30 Hz.

How many frames published by another process (benchmarks/image_publisher.py) the
hand_detector receives, with Fast DDS' default settings vs config/fastdds_shm.xml (on both
sides), reliable and best-effort QoS.

  python benchmarks/wire_loss.py [--duration 10] [--rate 30] [--repeat 1]

The count is the detector's own `received` counter (its statistics line), i.e. frames that
reached its subscription, before any processing.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

REPO = Path(__file__).resolve().parents[1]
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def case_env(shm: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env['ROS_DOMAIN_ID'] = str(random.randint(150, 230))
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if shm:
        from hand_tracker_ros.resources import fastdds_profile
        for var in PROFILE_VARIABLES:
            env[var] = str(fastdds_profile())
    return env


def run_case(shm: bool, reliable: bool, rate: float, duration: float) -> tuple[int, int]:
    """Return (published, received by the detector)."""
    env = case_env(shm)
    log = tempfile.NamedTemporaryFile('w+', suffix='.log', delete=False)
    reliability = 'reliable' if reliable else 'best_effort'
    det = subprocess.Popen(
        [sys.executable, '-m', 'hand_tracker_ros.detector_node', '--ros-args',
         '-p', 'stats_period:=0.5', '-p', 'queue_size:=30', '-p', 'track:=false',
         '-p', f'qos_overrides./image.subscription.reliability:={reliability}'],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while 'listening on' not in Path(log.name).read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        pub = subprocess.run(
            [sys.executable, str(REPO / 'benchmarks' / 'image_publisher.py'), '--rate', str(rate),
             '--duration', str(duration)] + (['--reliable'] if reliable else []),
            env=env, capture_output=True, text=True, timeout=duration + 120)
        published = int(re.findall(r'published (\d+)', pub.stdout)[-1])
        time.sleep(3.0)  # reliable retransmissions, the last statistics line
    finally:
        det.send_signal(signal.SIGINT)
        det.wait(20)
    received = re.findall(r'received (\d+)', Path(log.name).read_text())
    os.unlink(log.name)
    return published, int(received[-1]) if received else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--duration', type=float, default=10.0)
    ap.add_argument('--rate', type=float, default=30.0)
    ap.add_argument('--repeat', type=int, default=1)
    a = ap.parse_args()
    print('| Fast DDS settings | QoS | published | received by the detector | lost |')
    print('|---|---|---:|---:|---:|')
    for shm in (False, True):
        for reliable in (True, False):
            for _ in range(a.repeat):
                sent, got = run_case(shm, reliable, a.rate, a.duration)
                name = 'config/fastdds_shm.xml' if shm else 'defaults'
                qos = 'reliable' if reliable else 'best effort'
                lost = 100.0 * (sent - got) / sent if sent else float('nan')
                print(f'| {name} | {qos} | {sent} | {got} | {lost:.0f} % |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
