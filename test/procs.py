"""
Processes that tests start (nodes, ``ros2 launch``), ended with their whole group on any exit.

- Each starts in a session of its own (its own process group), so a signal to the group also
  reaches what it started (``ros2 launch`` -> nodes) and nothing reaches the test run.
- :func:`end` signals the group, waits, and SIGKILLs the group if it is still there after
  ``timeout``; :func:`end_all` (``conftest.py``'s ``pytest_sessionfinish`` and ``atexit``) does
  that for every process still running when the run ends, a failed or interrupted test included.
- A pytest that is killed outright (SIGKILL, the OOM killer) runs no clean-up: for that, the
  first :func:`start` starts ``reaper.py``, which holds the groups' ids and, once the run is gone,
  sends each group SIGINT and SIGKILLs what is left after a grace period. It signals the whole
  group, so it does not depend on ``ros2 launch`` passing a signal on to its nodes: a
  parent-death SIGINT to the launch process alone (how this was done before) once left a launch
  and both its nodes running after the run was killed (CI, stop 24). ``test_procs.py`` kills a
  run and checks that nothing is left.
"""
import atexit
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
from typing import Optional

_running: list = []
_reaper: Optional[subprocess.Popen] = None
_reaper_lock = threading.Lock()


def _register(sign: str, pgid: int) -> None:
    """Tell the reaper (started on first use) that group ``pgid`` was started (+) or ended (-)."""
    global _reaper
    with _reaper_lock:
        if _reaper is None or _reaper.poll() is not None:
            if sign == '-':
                return
            _reaper = subprocess.Popen(
                [sys.executable, '-I', str(Path(__file__).with_name('reaper.py')),
                 str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            _reaper.stdin.write(f'{sign}{pgid}\n'.encode())
            _reaper.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reaper is gone (or its pipe closed at exit): end_all still runs


def start(cmd, **popen_kwargs) -> subprocess.Popen:
    """Return ``subprocess.Popen(cmd, ...)`` in a new session that the reaper ends with the run."""
    popen_kwargs.setdefault('start_new_session', True)
    proc = subprocess.Popen([str(c) for c in cmd], **popen_kwargs)
    _running.append(proc)
    if popen_kwargs['start_new_session']:
        _register('+', proc.pid)
    return proc


def run(cmd, timeout: Optional[float] = None, capture_output: bool = False,
        **popen_kwargs) -> subprocess.CompletedProcess:
    """
    Run ``cmd`` to its end as subprocess.run does, the process started by :func:`start`.

    On a timeout (``subprocess.TimeoutExpired``, as subprocess.run), a failed or interrupted
    test, the process's whole group is killed before the exception goes on.
    """
    if capture_output:
        popen_kwargs['stdout'] = popen_kwargs['stderr'] = subprocess.PIPE
    proc = start(cmd, **popen_kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        _signal_group(proc, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        _signal_group(proc, signal.SIGKILL)  # anything of its group left behind
        if proc in _running:
            _running.remove(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    if sig == signal.SIGKILL:
        _register('-', proc.pid)


def end(proc: subprocess.Popen, sig: int = signal.SIGTERM,
        timeout: float = 10.0) -> tuple[Optional[int], str]:
    """
    Send ``sig`` to the process's group and wait for it to end.

    Return (exit code, or None when it had to be SIGKILLed after ``timeout`` seconds; what it
    printed, when its output was a pipe).
    """
    if proc.poll() is None:
        _signal_group(proc, sig)
    rc: Optional[int]
    try:
        out = proc.communicate(timeout=timeout)[0]
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        out = proc.communicate(timeout=10)[0]
        rc = None
    _signal_group(proc, signal.SIGKILL)  # anything of its group left behind
    if proc in _running:
        _running.remove(proc)
    return rc, out or ''


def end_all() -> None:
    """SIGKILL the group of every process started here that is still registered."""
    while _running:
        proc = _running.pop()
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


atexit.register(end_all)
