"""
The `main()` of a node executable: init, spin, clean shutdown.

The nodes do their heavy work (capture, inference) in threads of their own, so the executor only
dispatches light callbacks. It is a SingleThreadedExecutor because rclpy's (9.1, Kilted)
MultiThreadedExecutor starved the inference thread: benchmarks/bench_node.py at 60 Hz input gave
60.0 Hz out with the single-threaded one and, in repeated runs, 3.5-13 Hz out (p95 up to 1.6 s)
with MultiThreadedExecutor(1, 2 or 4 threads) — its dispatch loop competes for the GIL.
`bench_node.py --executor multi4` measures it again.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], args=None,
              startup_errors: tuple[type[BaseException], ...] = ()) -> int:
    """
    Run the node `make_node()` until Ctrl-C / shutdown.

    Returns 1 if it raised one of `startup_errors` while starting (it has logged why), else 0.
    """
    # rclpy's own SIGINT/SIGTERM handler shuts the context down (spin() then ends with
    # ExternalShutdownException) and then calls the Python handler installed before init: a
    # no-op here, so that no KeyboardInterrupt is raised at a random point of the executor
    # (it left half-made rclpy Tasks whose __del__ printed tracebacks on Ctrl-C).
    signal.signal(signal.SIGINT, lambda *_: None)
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except startup_errors:
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # the signal handler can invalidate the context between the executor's ok-check and
        # its wait set ("the given context is not valid"): that is the same shutdown
        if rclpy.ok():
            raise
    finally:
        # Ctrl-C in a terminal reaches the node twice (from the terminal and forwarded by
        # `ros2 launch`/`ros2 run`): the second must not interrupt the clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


class BackgroundSpinner:
    """
    Several nodes of one process spun by one SingleThreadedExecutor in a daemon thread.

    For programs that keep their main thread for themselves (``hand-tracker run`` prints its
    progress line there) and for tests that listen beside their main thread. `context`: the
    nodes' rclpy context (default: the global one). :meth:`close` stops the executor; the
    nodes stay the caller's.
    """

    def __init__(self, nodes: Sequence[Node], context: Optional[Context] = None) -> None:
        self._context = context
        # single-threaded: see the module docstring for why
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name='spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except _rclpy.RCLError:  # the context went away under the wait set: a shutdown too
            if rclpy.ok(context=self._context):
                raise

    def close(self, timeout_sec: float = 2.0) -> None:
        """Stop spinning (waits up to `timeout_sec` for the callbacks in progress)."""
        self.executor.shutdown(timeout_sec=timeout_sec)
