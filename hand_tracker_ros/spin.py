"""The `main()` of a node executable: init, spin on a MultiThreadedExecutor, clean shutdown."""
from __future__ import annotations

from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], args=None, num_threads: int = 4,
              startup_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run the node `make_node()` until Ctrl-C / shutdown; 1 if it raised one of
    `startup_errors` while starting (it has logged why), else 0."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=num_threads)
        executor.add_node(node)
        executor.spin()
    except startup_errors:
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
