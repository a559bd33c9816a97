"""
Ends the process groups a test run started once that run is gone, however it ended (test/procs.py).

Started once per test run by :mod:`procs`, in a session of its own, its standard input a pipe from
the run. The run writes ``+PGID`` for each group it starts and ``-PGID`` for each it has ended.
When the pipe reaches its end (the run exited, or was killed outright and the kernel closed its
end) or this process's parent changes (the run died while something it forked still holds the
pipe), every group still registered gets SIGINT (what a Ctrl-C in a terminal sends: ``ros2
launch`` and the nodes each end on it), then SIGKILL after ``GRACE`` seconds if any of its
processes are left. A signal to the whole group reaches what ``ros2 launch`` started, so nothing
depends on how the launch process itself handles a signal.
"""
import os
import select
import signal
import sys
import time

#: seconds the groups get to end on SIGINT before SIGKILL
GRACE = 5.0


def _signal(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _watch(parent: int) -> set:
    """Read registrations until the run is gone; return the groups still registered."""
    groups: set = set()
    pending = b''
    while os.getppid() == parent:
        ready, _, _ = select.select([0], [], [], 0.5)
        if not ready:
            continue
        data = os.read(0, 4096)
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b'\n')
        for line in lines:
            if line[:1] == b'+':
                groups.add(int(line[1:]))
            elif line[:1] == b'-':
                groups.discard(int(line[1:]))
    return groups


def main() -> None:
    """Watch the run that started this process; end its groups when it is gone."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the run's end ends this process
    groups = _watch(int(sys.argv[1]))
    groups = {g for g in groups if _signal(g, signal.SIGINT)}
    deadline = time.monotonic() + GRACE
    while groups and time.monotonic() < deadline:
        time.sleep(0.1)
        groups = {g for g in groups if _signal(g, 0)}
    for pgid in groups:
        _signal(pgid, signal.SIGKILL)


if __name__ == '__main__':
    main()
