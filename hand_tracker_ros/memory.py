"""
Where a long-running process's memory goes: RSS, glibc's heap, Python's heap by component.

A step in RSS can be memory the program still holds (a leak: Python objects or native buffers
that grow) or memory glibc keeps after it was freed (arena fragmentation, which levels off).
:class:`MemoryReport` tells them apart in one log line:

- RSS (``/proc/self/statm``);
- glibc's ``mallinfo2``: bytes in use, bytes free but kept in the arenas, bytes in mmapped
  blocks (TFLite's and DDS's native buffers are in there; Python's own objects too);
- with ``trace`` (stdlib ``tracemalloc``, one frame; it slows allocation-heavy Python code): the
  Python-allocated memory (NumPy arrays included) by component (pipeline, tracker, annotated
  image, landmarks, ROS messages and rclpy, ...), and its growth since the first report.

The node logs it every ``memory_report_period`` seconds; ``benchmarks/soak.py`` collects it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import tracemalloc
from typing import Optional

# (substring of the allocating file's path, component), first match wins
COMPONENTS = (
    ('hand_tracker_ros/pipeline', 'pipeline'),
    ('hand_tracker_ros/tracking', 'tracker'),
    ('hand_tracker_ros/gestures', 'gestures'),
    ('hand_tracker_ros/poses', 'poses'),
    ('hand_tracker_ros/annotate', 'annotated image'),
    ('hand_tracker_ros/messages', 'ROS messages'),
    ('hand_tracker_ros/image_conversion', 'image conversion'),
    ('hand_tracker_ros/backends', 'SSD'),
    ('hand_tracker_ros/detections', 'SSD'),
    ('hand_tracker_ros/palm', 'palm'),
    ('hand_tracker_ros/landmarks', 'landmarks'),
    ('hand_tracker_ros/regions', 'landmarks'),
    ('hand_tracker_ros/', 'node and chain'),
    ('/rclpy/', 'rclpy'),
    ('_msgs/', 'ROS messages'),
    ('/rosidl', 'ROS messages'),
    ('/numpy/', 'numpy'),
    ('/cv2/', 'cv2'),
    ('tensorflow', 'TensorFlow/LiteRT'),
    ('litert', 'TensorFlow/LiteRT'),
    ('tflite', 'TensorFlow/LiteRT'),
    ('tracemalloc', 'tracemalloc itself'),
)
MB = 2.0 ** 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]


def _libc_mallinfo2():
    name = ctypes.util.find_library('c')
    try:
        fn = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return None
    if fn is not None:
        fn.restype = _MallInfo2
    return fn


_MALLINFO2 = _libc_mallinfo2()


def _libc_malloc_trim():
    name = ctypes.util.find_library('c')
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


_MALLOC_TRIM = _libc_malloc_trim()


def trim() -> Optional[float]:
    """
    Give the free pages glibc keeps in its arenas back to the system; return the RSS freed.

    Frames of 1-25 MB allocated and freed by several threads (DDS, the workers, LiteRT) leave
    free memory scattered over glibc's per-thread arenas, which RSS keeps counting
    (``malloc_trim(0)`` releases the free whole pages inside them, glibc >= 2.8). None without
    glibc.
    """
    if _MALLOC_TRIM is None:
        return None
    before = rss_mb()
    _MALLOC_TRIM(0)
    return before - rss_mb()


def rss_mb() -> float:
    """Return this process's resident set size in MiB."""
    with open('/proc/self/statm') as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf('SC_PAGE_SIZE') / MB


def malloc_mb() -> Optional[dict]:
    """Return glibc's heap in MiB (in use, free in arenas, mmapped), None without mallinfo2."""
    if _MALLINFO2 is None:
        return None
    m = _MALLINFO2()
    return {'in_use': m.uordblks / MB, 'free': m.fordblks / MB, 'mmapped': m.hblkhd / MB}


def component_of(filename: str) -> str:
    """Return the component that a file allocating memory belongs to."""
    path = filename.replace(os.sep, '/')
    for needle, component in COMPONENTS:
        if needle in path:
            return component
    return 'other Python'


class MemoryReport:
    """One log line per call; with `trace`, Python's heap per component and its growth."""

    def __init__(self, trace: bool = False, top: int = 6):
        self.trace = trace
        self.top = top
        self.first: Optional[dict] = None
        if trace and not tracemalloc.is_tracing():
            tracemalloc.start(1)

    def python_heap(self) -> dict:
        """Return {component: MiB} of the memory Python allocated that is still alive."""
        out: dict = {}
        snapshot = tracemalloc.take_snapshot()
        for stat in snapshot.statistics('filename'):
            name = component_of(stat.traceback[0].filename)
            out[name] = out.get(name, 0.0) + stat.size / MB
        return out

    def line(self) -> str:
        parts = [f'RSS {rss_mb():.1f} MB']
        heap = malloc_mb()
        if heap is not None:
            parts.append(f'malloc in use {heap["in_use"]:.1f} MB, free in arenas '
                         f'{heap["free"]:.1f} MB, mmapped {heap["mmapped"]:.1f} MB')
        if self.trace:
            now = self.python_heap()
            if self.first is None:
                self.first = now
            names = set(now) | set(self.first)
            growth = {k: now.get(k, 0.0) - self.first.get(k, 0.0) for k in names}
            total = sum(now.values())
            ranked = sorted(growth.items(), key=lambda kv: -abs(kv[1]))[:self.top]
            parts.append(f'python heap {total:.1f} MB, '
                         f'{sum(growth.values()):+.2f} MB since the first report (' + ', '.join(
                             f'{k} {v:+.2f}' for k, v in ranked) + ')')
        return 'memory: ' + '; '.join(parts)
