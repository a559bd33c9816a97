"""
Soak test: camera node + hand_detector (two processes, as launched) at 30 Hz on real frames.

Runs for N minutes. Every 10 s it samples the RSS of each process (psutil), the detections rate and
the image-to-detection latency (now - header.stamp, measured by a listener in this process);
at the end it prints the RSS slope (MB per hour, least squares after the first sample) and the
latency trend.

  python benchmarks/soak.py --minutes 30 [--fps 30] [--sample 10] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import re
import subprocess
import sys
import threading
import time

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
FRAMES = REPO.parent / 'shared' / 'data' / 'egohands' / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B'


def start_nodes(fps: float, env: dict, log_dir: Path, memory_period: float,
                trace: bool) -> dict:
    """Start the camera and the detector (the default chain), their logs in `log_dir`."""
    cli = [sys.executable, '-m', 'hand_tracker_ros.cli']
    log_dir.mkdir(parents=True, exist_ok=True)
    detector_args = ['-p', f'memory_report_period:={memory_period}',
                     '-p', f'memory_trace:={str(trace).lower()}', '-p', 'stats_period:=10.0']
    return {
        'camera': subprocess.Popen(cli + ['camera', '--ros-args', '-p', f'source:={FRAMES}',
                                          '-p', 'loop:=true', '-p', f'fps:={fps}'],
                                   env=env, stdout=open(log_dir / 'camera.log', 'w'),
                                   stderr=subprocess.STDOUT),
        'hand_detector': subprocess.Popen(cli + ['detect', '--ros-args', *detector_args],
                                          env=env, stdout=open(log_dir / 'hand_detector.log', 'w'),
                                          stderr=subprocess.STDOUT),
    }


class Listener:
    """Records (arrival time, latency ms) of every detections message."""

    def __init__(self):
        import rclpy
        from rclpy.qos import QoSProfile
        from hand_tracker.msg import TrackedHandArray
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray
        rclpy.init()
        self.node = rclpy.create_node('soak_listener')
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float]] = []
        self.node.create_subscription(Detection2DArray, 'detections', self._on,
                                      QoSProfile(depth=50))
        # subscribed, so that the detector draws and publishes them: every stage runs
        self.annotated = self.hands = 0
        self.node.create_subscription(Image, 'detections/image', self._on_annotated,
                                      QoSProfile(depth=2))
        self.node.create_subscription(TrackedHandArray, 'hands', self._on_hands,
                                      QoSProfile(depth=50))
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _on(self, msg) -> None:
        now = self.node.get_clock().now().nanoseconds
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with self.lock:
            self.samples.append((time.monotonic(), (now - stamp) / 1e6))

    def _on_annotated(self, msg) -> None:
        with self.lock:
            self.annotated += 1

    def _on_hands(self, msg) -> None:
        with self.lock:
            self.hands += len(msg.hands)

    def _spin(self) -> None:
        import rclpy
        from rclpy.executors import ExternalShutdownException
        try:
            rclpy.spin(self.node)
        except ExternalShutdownException:
            pass

    def take(self) -> tuple[list[tuple[float, float]], int, int]:
        """Return the (arrival, latency) samples, annotated images and hands since the last."""
        with self.lock:
            out, self.samples = self.samples, []
            counts = self.annotated, self.hands
            self.annotated = self.hands = 0
        return (out, *counts)


def sample(procs: dict, listener: Listener, period: float, t0: float) -> dict:
    got, annotated, hands = listener.take()
    lat = np.array([v for _, v in got]) if got else np.array([np.nan])
    row = {'t_s': round(time.monotonic() - t0, 1), 'rate_hz': round(len(got) / period, 2),
           'annotated_hz': round(annotated / period, 2),
           'hands_per_frame': round(hands / max(1, len(got)), 2),
           'latency_ms_median': round(float(np.median(lat)), 2),
           'latency_ms_p95': round(float(np.percentile(lat, 95)), 2)}
    for name, p in procs.items():
        row[f'rss_mb_{name}'] = round(psutil.Process(p.pid).memory_info().rss / 2**20, 1)
        row.update({f'{k}_mb_{name}': v for k, v in rss_parts(p.pid).items()})
    return row


def rss_parts(pid: int) -> dict:
    """
    Return RSS split as the kernel counts it: anonymous (heaps, stacks), file (code, libraries).

    And shmem: shared memory, which here is Fast DDS's shared-memory segments (its own and every
    peer's): their pages count once touched, so RSS steps up as a peer's segment fills.
    """
    out = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            key, _, value = line.partition(':')
            if key in ('RssAnon', 'RssFile', 'RssShmem'):
                out[key.lower().replace('rss', 'rss_')] = round(int(value.split()[0]) / 1024, 1)
    return out


def trend(rows: list[dict], key: str, warmup_s: float = 0.0) -> float:
    """Least-squares slope of ``key`` per hour after `warmup_s` (at least the first sample)."""
    kept = [r for r in rows[1:] if r['t_s'] >= warmup_s]
    rows = kept if len(kept) >= 2 else rows
    t = np.array([r['t_s'] for r in rows]) / 3600.0
    v = np.array([r[key] for r in rows], dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 2:
        return float('nan')
    return float(np.polyfit(t[ok], v[ok], 1)[0])


def report(rows: list[dict], procs, warmup_s: float = 0.0) -> dict:
    summary = {}
    for name in procs:
        key = f'rss_mb_{name}'
        summary[f'{name} RSS MB first/last'] = (rows[0][key], rows[-1][key])
        summary[f'{name} RSS slope MB/h'] = round(trend(rows, key), 2)
        after = [r[key] for r in rows if r['t_s'] >= warmup_s]
        if after:
            summary[f'{name} RSS MB min/max after warm-up'] = (min(after), max(after))
        summary[f'{name} RSS slope MB/h after {warmup_s / 60:g} min warm-up'] = round(
            trend(rows, key, warmup_s), 2)
        for part in ('anon', 'file', 'shmem'):
            key = f'rss_{part}_mb_{name}'
            if key in rows[0]:
                summary[f'{name} Rss{part} MB first/last, slope MB/h after warm-up'] = (
                    rows[0][key], rows[-1][key], round(trend(rows, key, warmup_s), 2))
    q = max(1, len(rows) // 4)
    for key in ('latency_ms_median', 'latency_ms_p95'):
        summary[f'{key} first/last quarter'] = (
            round(float(np.nanmedian([r[key] for r in rows[:q]])), 2),
            round(float(np.nanmedian([r[key] for r in rows[-q:]])), 2))
        summary[f'{key} slope ms/h'] = round(trend(rows, key), 2)
    summary['rate_hz median'] = float(np.median([r['rate_hz'] for r in rows]))
    return summary


MEMORY_LINE = re.compile(
    r'\[(?P<t>[0-9.]+)\] \[hand_detector\]: memory: RSS (?P<rss>[0-9.]+) MB; malloc in use '
    r'(?P<in_use>[0-9.]+) MB, free in arenas (?P<free>[0-9.]+) MB, mmapped (?P<mmapped>[0-9.]+) MB'
    r'(?:.*?malloc_trim freed (?P<freed>[0-9.-]+) MB)?')


def memory_lines(log: Path) -> list[dict]:
    """Return the detector's memory log lines as dicts (t_s from the first one)."""
    out = []
    for m in MEMORY_LINE.finditer(log.read_text() if log.is_file() else ''):
        row = {k: float(v) for k, v in m.groupdict().items() if v is not None}
        out.append(row)
    for row in out:
        row['t_s'] = row['t'] - out[0]['t']
    return out


def load_rows(path: Path) -> list[dict]:
    """Return the samples of a --json file, or of this script's printed output (one per line)."""
    text = path.read_text()
    try:
        return json.loads(text)['samples']
    except (ValueError, KeyError, TypeError):
        pass
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"t_s"')]


def plot(rows: list[dict], memory: list[dict], png: Path, warmup_s: float) -> None:
    """RSS of both processes, and the detector's glibc heap, over the run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    t = np.array([r['t_s'] for r in rows]) / 60.0
    for key, label in (('rss_mb_hand_detector', 'hand_detector'), ('rss_mb_camera', 'camera')):
        ax1.plot(t, [r[key] for r in rows], label=f'{label} RSS (every {t[1] - t[0]:.2g} min)'
                 if len(t) > 1 else label)
    for part, ls in (('anon', '--'), ('file', '-.'), ('shmem', ':')):
        key = f'rss_{part}_mb_hand_detector'
        if key in rows[0]:
            ax1.plot(t, [r[key] for r in rows], ls=ls, lw=1, label=f'hand_detector Rss{part}')
    ax1.axvline(warmup_s / 60.0, color='grey', ls=':', label='end of warm-up')
    ax1.set_ylabel('RSS (MB)')
    ax1.legend(loc='center right', fontsize=8)
    ax1.grid(alpha=0.3)
    if memory:
        tm = np.array([m['t_s'] for m in memory]) / 60.0
        for key, label in (('in_use', 'malloc in use'), ('free', 'free in arenas'),
                           ('mmapped', 'mmapped')):
            ax2.plot(tm, [m[key] for m in memory], label=label)
        if 'freed' in memory[-1]:
            ax2.plot(tm, [m.get('freed', np.nan) for m in memory], ls='--',
                     label='malloc_trim freed (cumulative)')
        ax2.legend(loc='upper left', fontsize=8)
    ax2.set_ylabel('detector heap (MB)')
    ax2.set_xlabel('minutes')
    ax2.grid(alpha=0.3)
    hours = (rows[-1]['t_s'] - rows[0]['t_s']) / 3600.0
    fig.suptitle(f'soak: {hours:.2f} h, median {np.median([r["rate_hz"] for r in rows]):.1f} Hz '
                 'detections out')
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--minutes', type=float, default=30.0)
    ap.add_argument('--fps', type=float, default=30.0)
    ap.add_argument('--sample', type=float, default=10.0, help='seconds between samples')
    ap.add_argument('--json', type=Path, help='write samples and summary here')
    ap.add_argument('--logs', type=Path, default=Path('soak_logs'),
                    help="the nodes' logs (the detector's memory lines among them) go here")
    ap.add_argument('--memory-period', type=float, default=60.0,
                    help="seconds between the detector's memory log lines (RSS, glibc heap)")
    ap.add_argument('--trace', action='store_true',
                    help='the detector adds its Python heap by component (tracemalloc; slower)')
    ap.add_argument('--warmup', type=float, default=10.0,
                    help='minutes left out of the RSS slope (start-up, first allocations)')
    ap.add_argument('--plot', type=Path, help='plot RSS and the heap over the run (PNG)')
    ap.add_argument('--replot', type=Path, metavar='SAMPLES',
                    help='no run: summarise and plot the samples of an earlier run (its --json, '
                         "or its printed output) with the detector's log in --logs")
    a = ap.parse_args()
    if a.replot:
        rows = load_rows(a.replot)
        print('summary:', json.dumps(report(rows, ('camera', 'hand_detector'), a.warmup * 60),
                                     indent=1))
        if a.plot:
            plot(rows, memory_lines(a.logs / 'hand_detector.log'), a.plot, a.warmup * 60)
        return 0
    from hand_tracker_ros.cli import use_shm_profile
    use_shm_profile()
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.randint(150, 230)))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    procs = start_nodes(a.fps, dict(os.environ), a.logs, a.memory_period, a.trace)
    rows: list[dict] = []
    try:
        listener = Listener()
        time.sleep(a.sample)  # start-up: model load, discovery
        listener.take()
        t0 = time.monotonic()
        end = t0 + a.minutes * 60
        while time.monotonic() < end:
            time.sleep(max(0.0, t0 + (len(rows) + 1) * a.sample - time.monotonic()))
            for name, p in procs.items():
                if p.poll() is not None:
                    sys.exit(f'{name} exited with {p.returncode}')
            rows.append(sample(procs, listener, a.sample, t0))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(10)
    summary = report(rows, procs, a.warmup * 60)
    print('summary:', json.dumps(summary, indent=1))
    if a.json:
        a.json.write_text(json.dumps({'samples': rows, 'summary': summary}, indent=1))
    if a.plot:
        plot(rows, memory_lines(a.logs / 'hand_detector.log'), a.plot, a.warmup * 60)
    return 0


if __name__ == '__main__':
    sys.exit(main())
