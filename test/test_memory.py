"""The memory report that long runs log: glibc heap, trimming, Python heap by component."""
import os

from hand_tracker_ros import memory
import numpy as np
import pytest

needs_glibc = pytest.mark.skipif(memory.malloc_mb() is None,
                                 reason='mallinfo2/malloc_trim are glibc (>= 2.33) functions')


@needs_glibc
def test_fragmented_free_memory_stays_resident_until_trim_returns_it():
    memory.trim()  # what this long-lived process (pytest) had free is given back first
    # 64 MB of 16 kB mallocs (too big for the small holes a long-lived heap has, so they take
    # fresh pages), then one kept per 320 kB: the rest is free, but its pages stay resident
    blocks = [bytes(os.urandom(1) * 16384) for _ in range(4000)]
    rss_full = memory.rss_mb()
    keep = blocks[::20]
    del blocks
    heap = memory.malloc_mb()
    assert heap['free'] > 40, heap
    rss = memory.rss_mb()
    assert rss > rss_full - 10, (rss_full, rss)
    freed = memory.trim()
    assert freed > 30 and memory.rss_mb() < rss - 30, (freed, rss, memory.rss_mb())
    assert len(keep) == 200 and all(len(b) == 16384 for b in keep)


def test_python_heap_growth_is_attributed_to_the_allocating_component():
    from hand_tracker_ros.annotate import draw_annotations
    from hand_tracker_ros.detections import Detections
    report = memory.MemoryReport(trace=True)
    try:
        first = report.line()
        assert first.startswith('memory: RSS ') and 'since the first report' in first
        rgb = np.zeros((720, 1280, 3), np.uint8)
        dets = Detections(boxes=np.array([[100, 100, 300, 400]], np.float32),
                          scores=np.array([0.9], np.float32), classes=np.array([1], np.int32))
        kept = [draw_annotations(rgb, detections=dets) for _ in range(10)]  # 27.6 MB of images
        heap = report.python_heap()
        growth = heap['annotated image'] - report.first.get('annotated image', 0.0)
        assert 25 < growth < 40, heap
        line = report.line()
        assert 'annotated image +2' in line or 'annotated image +3' in line, line
        assert len(kept) == 10
    finally:
        memory.tracemalloc.stop()


def test_components_of_paths():
    assert memory.component_of('/x/hand_tracker_ros/tracking.py') == 'tracker'
    assert memory.component_of('/v/lib/python3.11/site-packages/rclpy/node.py') == 'rclpy'
    assert memory.component_of('/v/site-packages/sensor_msgs/msg/_image.py') == 'ROS messages'
    assert memory.component_of('/v/site-packages/numpy/core/numeric.py') == 'numpy'
    assert memory.component_of('/x/hand_tracker_ros/chain.py') == 'node and chain'
    assert memory.component_of('<string>') == 'other Python'
