"""
Newest-frame-wins inference pipeline, independent of rclpy.

The subscription callback only calls :meth:`FramePipeline.submit` (O(1), never blocks on
inference). ``workers`` threads take the waiting frames in order, run ``process`` (image
conversion + inference, which release the GIL inside OpenCV / TensorFlow / LiteRT), and hand
the result to ``finish`` strictly in submission order, one call per processed frame, so tracking
and the published stream stay in stamp order even with several workers.

At most ``queue_size`` frames wait; when a new one arrives the oldest waiting frame is dropped and
counted, so latency stays bounded when the input outruns the model (``queue_size`` 1: the newest
frame wins).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
import threading
import time
from typing import Any, Callable, Deque, Optional

import numpy as np


class RateWindow:
    """Events per second and value percentiles over a sliding time window."""

    def __init__(self, window_s: float = 5.0, max_samples: int = 10000):
        self.window_s = window_s
        self._t: Deque[float] = collections.deque(maxlen=max_samples)
        self._v: Deque[float] = collections.deque(maxlen=max_samples)

    def add(self, value: float = 0.0, now: Optional[float] = None) -> None:
        self._t.append(time.monotonic() if now is None else now)
        self._v.append(value)

    def _trim(self, now: float) -> None:
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()
            self._v.popleft()

    def rate(self, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return len(self._t) / self.window_s

    def percentile(self, q: float, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return float(np.percentile(self._v, q)) if self._v else float('nan')


@dataclass
class PipelineStats:
    """Counters since start (monotonic) and sliding-window rates / latencies."""

    received: int = 0
    processed: int = 0
    dropped_stale: int = 0
    failed: int = 0
    inputs: RateWindow = field(default_factory=RateWindow)
    outputs: RateWindow = field(default_factory=RateWindow)
    process_ms: RateWindow = field(default_factory=RateWindow)
    end_to_end_ms: RateWindow = field(default_factory=RateWindow)

    def summary(self) -> str:
        return (f'in {self.inputs.rate():.1f} Hz, out {self.outputs.rate():.1f} Hz, '
                f'received {self.received}, processed {self.processed}, '
                f'dropped {self.dropped_stale} stale, {self.failed} failed; '
                f'inference {self.process_ms.percentile(50):.1f} ms median '
                f'({self.process_ms.percentile(95):.1f} p95), '
                f'end-to-end {self.end_to_end_ms.percentile(50):.1f} ms median '
                f'({self.end_to_end_ms.percentile(95):.1f} p95)')


@dataclass
class _Job:
    seq: int
    item: Any
    t_received: float
    result: Any = None
    error: Optional[BaseException] = None
    done: bool = False


class FramePipeline:
    """
    Bounded, ordered, multi-worker processing of the newest frames.

    process(item) -> result     runs in a worker thread (may raise: counted as failed, reported
                                through ``on_error``, the order is kept)
    finish(item, result)        runs in submission order, one at a time
    on_drop(item)               a waiting frame was replaced by a newer one
    on_error(item, exc)         ``process`` or ``finish`` raised
    """

    def __init__(self, process: Callable[[Any], Any], finish: Callable[[Any, Any], None],
                 workers: int = 1, queue_size: int = 1,
                 on_drop: Optional[Callable[[Any], None]] = None,
                 on_error: Optional[Callable[[Any, BaseException], None]] = None,
                 name: str = 'pipeline'):
        if workers < 1 or queue_size < 1:
            raise ValueError(f'workers ({workers}) and queue_size ({queue_size}) must be >= 1')
        self._process = process
        self._finish = finish
        self._on_drop = on_drop
        self._on_error = on_error
        self.queue_size = queue_size
        self.stats = PipelineStats()
        self._waiting: Deque[_Job] = collections.deque()
        self._in_flight: Deque[_Job] = collections.deque()  # taken by workers, in seq order
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._finish_lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self._threads = [threading.Thread(target=self._worker, name=f'{name}-worker-{i}',
                                          daemon=True) for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, item: Any) -> None:
        """
        Queue a frame; drops the oldest waiting frame when the queue is full.

        Never blocks on processing.
        """
        now = time.monotonic()
        dropped = []
        with self._cv:
            if self._closed:
                return
            self.stats.received += 1
            self.stats.inputs.add(now=now)
            self._waiting.append(_Job(self._seq, item, now))
            self._seq += 1
            while len(self._waiting) > self.queue_size:
                dropped.append(self._waiting.popleft())
                self.stats.dropped_stale += 1
            self._cv.notify()
        if self._on_drop is not None:
            for job in dropped:
                self._on_drop(job.item)

    def pending(self) -> int:
        with self._lock:
            return len(self._waiting) + len(self._in_flight)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted frame is finished or dropped (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.002)
        return False

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._closed = True
            self._waiting.clear()
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _worker(self) -> None:
        while True:
            with self._cv:
                while not self._waiting and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                # oldest waiting first: with queue_size 1 that is the newest frame, with more
                # the queue is a bounded FIFO (submit drops its oldest entries)
                job = self._waiting.popleft()
                self._in_flight.append(job)
            t0 = time.monotonic()
            try:
                job.result = self._process(job.item)
            except Exception as exc:  # noqa: BLE001 - reported through on_error, never lost
                job.error = exc
            self.stats.process_ms.add((time.monotonic() - t0) * 1e3)
            with self._cv:
                job.done = True
            self._drain()

    def _drain(self) -> None:
        """Finish every completed job at the head of the in-flight queue, in order."""
        with self._finish_lock:
            while True:
                with self._cv:
                    if not self._in_flight or not self._in_flight[0].done:
                        return
                    job = self._in_flight[0]
                try:
                    if job.error is not None:
                        raise job.error
                    self._finish(job.item, job.result)
                    self.stats.processed += 1
                    now = time.monotonic()
                    self.stats.outputs.add(now=now)
                    self.stats.end_to_end_ms.add((now - job.t_received) * 1e3, now=now)
                except Exception as exc:  # noqa: BLE001
                    self.stats.failed += 1
                    if self._on_error is not None:
                        self._on_error(job.item, exc)
                finally:
                    with self._cv:
                        self._in_flight.popleft()
