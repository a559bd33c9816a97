"""
The `main()` of a node executable: init, spin, clean shutdown; and the signals that end it.

The nodes do their heavy work (capture, inference) in threads of their own, so the executor only
dispatches light callbacks. It is a SingleThreadedExecutor because rclpy's (9.1, Kilted)
MultiThreadedExecutor starved the inference thread: benchmarks/bench_node.py at 60 Hz input gave
60.0 Hz out with the single-threaded one and, in repeated runs, 3.5-13 Hz out (p95 up to 1.6 s)
with MultiThreadedExecutor(1, 2 or 4 threads) — its dispatch loop competes for the GIL.
`bench_node.py --executor multi4` measures it again.

Signals. rclpy's own SIGINT/SIGTERM handler (a C++ thread) triggers the executors' guard
condition and shuts the contexts down, but the context's Python ``on_shutdown`` callbacks (the
executor's wake-up) do not run for that shutdown. When the trigger wins the race, the executor
wakes, still sees the context ok, and goes back to an endless wait: the first SIGTERM was lost
(seen as a camera node idle in ``wait_for_ready_callbacks`` 23 minutes after SIGTERM; a second
signal ended it). So rclpy is initialised without its handlers (:func:`init_rclpy`), the process
takes both signals itself (:data:`hand_tracker_ros.shutdown.REQUEST`), and every main loop polls
that request at least every :data:`POLL_S` seconds (``spin_once`` with a timeout), on every
distro alike. ``test/test_signals.py`` sends SIGINT/SIGTERM at random moments of each
executable's life.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from .shutdown import REQUEST, Shutdown

#: the longest a main loop waits before it looks at ``shutdown.REQUEST`` again (seconds)
POLL_S = 0.1
#: logged once a node is up: tests tell a signal during start-up from one while spinning
READY_LOG = 'ready; SIGINT or SIGTERM stops it'


def init_rclpy(args=None, context: Optional[Context] = None) -> None:
    """``rclpy.init`` without rclpy's signal handlers (``shutdown.REQUEST`` has them)."""
    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)


def spin_node(make_node: Callable[[], Node], args=None,
              startup_errors: tuple[type[BaseException], ...] = ()) -> int:
    """
    Run the node `make_node()` until SIGINT/SIGTERM or a shutdown of the context.

    Returns 1 if it raised one of `startup_errors` while starting (it has logged why), else 0.
    """
    stop = REQUEST.install()
    node = None
    try:
        stop.check()
        init_rclpy(args)
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        stop.running()
        node.get_logger().info(READY_LOG)
        while not stop.requested and rclpy.ok():
            executor.spin_once(timeout_sec=POLL_S)
    except startup_errors:
        return 1
    except (Shutdown, KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # a context shut down by someone else under the executor's wait set
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


class BackgroundSpinner:
    """
    Several nodes of one process spun by one SingleThreadedExecutor in a daemon thread.

    For programs that keep their main thread for themselves (``hand-tracker run`` prints its
    progress line there) and for tests that listen beside their main thread. `context`: the
    nodes' rclpy context (default: the global one). :meth:`close` stops the thread, then the
    executor; the nodes stay the caller's.
    """

    def __init__(self, nodes: Sequence[Node], context: Optional[Context] = None) -> None:
        self._context = context
        self._stop = threading.Event()
        # single-threaded: see the module docstring for why
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name='spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and rclpy.ok(context=self._context):
                self.executor.spin_once(timeout_sec=POLL_S)
        except ExternalShutdownException:
            pass
        except _rclpy.RCLError:  # the context went away under the wait set: a shutdown too
            if rclpy.ok(context=self._context):
                raise

    def close(self, timeout_sec: float = 2.0) -> None:
        """Stop spinning: wait up to `timeout_sec` for the callback in progress, then shut down."""
        self._stop.set()
        # The thread leaves its loop after the callback in progress (or POLL_S idle), and only
        # then is the executor shut down. Jazzy's Executor.shutdown does not wait for the
        # callback in progress and destroys the guard condition that callback triggers when it
        # ends ("InvalidHandle: cannot use Destroyable" in the spin thread, seen in a CI run of
        # test_signals on Jazzy); and a thread still in rcl's wait at interpreter exit aborted
        # the process ("terminate called without an active exception").
        self._thread.join(timeout_sec)
        self.executor.shutdown(timeout_sec=timeout_sec)
