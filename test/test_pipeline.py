"""FramePipeline: newest frame wins, bounded queue, ordered output, errors counted."""
import threading
import time

from hand_tracker_ros.pipeline import FramePipeline
import pytest


def test_every_frame_processed_in_order_when_input_is_slow():
    # input slower than processing by construction: each frame is finished before the next one
    # comes (a fixed sleep between submits is not enough on a loaded 2-core machine, where the
    # worker may not run for longer than the sleep and the newest frame rightly replaces it)
    out = []
    p = FramePipeline(lambda x: x * 10, lambda item, r: out.append((item, r)), workers=1)
    for i in range(20):
        p.submit(i)
        assert p.wait_idle()
    p.close()
    assert out == [(i, i * 10) for i in range(20)]
    assert p.stats.received == 20 and p.stats.processed == 20 and p.stats.dropped_stale == 0


@pytest.mark.parametrize('workers', [1, 3])
def test_fast_input_drops_stale_frames_keeps_order_and_counts(workers):
    finished, dropped = [], []
    lock = threading.Lock()

    def slow(x):
        time.sleep(0.02 if x % 2 else 0.035)  # unequal durations: workers finish out of order
        return x

    def finish(item, r):
        with lock:
            finished.append(item)

    p = FramePipeline(slow, finish, workers=workers, queue_size=1, on_drop=dropped.append)
    for i in range(200):
        p.submit(i)
        time.sleep(0.001)
    assert p.wait_idle(10)
    p.close()
    assert finished == sorted(finished), 'outputs must come out in submission order'
    assert len(finished) < 200, 'input outran the model, some frames must have been dropped'
    assert len(finished) + len(dropped) == 200, 'every frame is either processed or counted'
    assert p.stats.dropped_stale == len(dropped)
    assert finished[-1] == 199, 'the newest frame is processed'
    if workers == 3:
        assert p.stats.process_ms.percentile(50) > 15


def test_bounded_latency_under_overload():
    p = FramePipeline(lambda x: time.sleep(0.05), lambda i, r: None, workers=1, queue_size=2)
    t_end = time.monotonic() + 1.0
    n, backlog = 0, 0
    while time.monotonic() < t_end:
        p.submit(n)
        n += 1
        backlog = max(backlog, p.pending())
        time.sleep(0.002)
    assert p.wait_idle(5)
    p.close()
    # at most queue_size frames wait + one in flight, so a frame waits for at most 2 inferences
    # (checked by count: a timed bound broke on a starved machine in the node's version of this)
    assert backlog == 3, backlog
    assert p.stats.dropped_stale > n // 2


def test_errors_are_reported_counted_and_do_not_stop_the_pipeline():
    errors, out = [], []

    def process(x):
        if x == 3:
            raise ValueError('bad frame 3')
        return x

    p = FramePipeline(process, lambda i, r: out.append(i), workers=2,
                      on_error=lambda item, exc: errors.append((item, str(exc))))
    for i in range(6):
        p.submit(i)
        p.wait_idle()
    p.close()
    assert errors == [(3, 'bad frame 3')]
    assert out == [0, 1, 2, 4, 5]
    assert p.stats.failed == 1 and p.stats.processed == 5


def test_invalid_configuration():
    with pytest.raises(ValueError, match='workers'):
        FramePipeline(lambda x: x, lambda i, r: None, workers=0)


def test_deeper_queue_absorbs_a_burst_without_drops():
    out = []
    p = FramePipeline(lambda x: time.sleep(0.01), lambda i, r: out.append(i), workers=1,
                      queue_size=10)
    for i in range(8):  # a burst: 8 frames while the first is being processed
        p.submit(i)
    assert p.wait_idle()
    p.close()
    assert out == list(range(8)) and p.stats.dropped_stale == 0
