"""
The first SIGINT or SIGTERM of a process, never lost: :data:`REQUEST`.

Standard library only, so that an executable can take both signals before its heavy imports
(rclpy, OpenCV, LiteRT: a second or more on a busy machine). A SIGINT in that window once
vanished inside an import (the default handler's KeyboardInterrupt was swallowed) and the node
then ran on as if never asked to stop. The executables call ``REQUEST.install()`` first thing;
``hand_tracker_ros.spin`` polls ``REQUEST.requested`` while spinning.

While the process starts (from :meth:`ShutdownRequest.install` to
:meth:`ShutdownRequest.running`) the first signal also raises :class:`Shutdown` in the main
thread, to cut start-up short; the flag stays set even if some library swallows that
exception, and the main loop ends on the flag. Once running, a signal only sets the flag
(an exception at a random point of rclpy's executor left half-made Tasks printing tracebacks).
Later signals are ignored: Ctrl-C reaches a node twice (from the terminal and forwarded by
``ros2 launch``), and the second must not interrupt the clean-up of the first.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable, NoReturn


class Shutdown(SystemExit):
    """
    SIGINT/SIGTERM arrived while the process was starting.

    A SystemExit with status 0: where nothing catches it (an import in an entry script), the
    interpreter exits quietly, as asked.
    """

    def __init__(self, signame: str) -> None:
        super().__init__(0)
        self.signame = signame


class ShutdownRequest:
    """The first SIGINT or SIGTERM of the process, as a flag (``signum``)."""

    def __init__(self) -> None:
        self.signum = 0
        self._starting = False
        self._installed = False

    def install(self) -> 'ShutdownRequest':
        """Take SIGINT and SIGTERM (main thread; again: no-op), in start-up mode."""
        if not self._installed:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._handle)
            self._installed = True
            self._starting = True
        return self

    def _handle(self, signum, _frame) -> None:
        if self.signum:
            return  # a second signal: let the clean-up of the first finish
        self.signum = signum
        if self._starting:
            self._starting = False
            raise Shutdown(signal.Signals(signum).name)

    @property
    def requested(self) -> bool:
        """Tell whether SIGINT or SIGTERM has arrived."""
        return bool(self.signum)

    def check(self) -> None:
        """Raise :class:`Shutdown` if a signal arrived already (one whose exception was lost)."""
        if self.signum:
            raise Shutdown(signal.Signals(self.signum).name)

    def running(self) -> None:
        """Start-up is over: from now on a signal only sets the flag."""
        self._starting = False


#: the process's one request (signal handlers are per process)
REQUEST = ShutdownRequest()


def run_main(main: Callable[[], int]) -> NoReturn:
    """
    Run an executable's ``main()`` with :data:`REQUEST` taken first; exit with its status.

    After a signal, what ``main`` raised on its way out is a consequence of it (a C extension
    whose import :class:`Shutdown` cut comes back as "ImportError: initialization failed"):
    the exit is quiet, status 0. And once a signal ended the process, with everything it owns
    already closed by ``main``, the interpreter's finalization is skipped (``os._exit``): native
    threads of LiteRT and Fast DDS still winding down there aborted it ("terminate called
    without an active exception", 1 in 100 runs of test_signals.py).
    """
    REQUEST.install()
    try:
        status = main()
    except BaseException:
        if not REQUEST.requested:
            raise
        status = 0
    if REQUEST.requested:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status or 0)
    sys.exit(status)
