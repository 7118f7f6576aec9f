"""Process hygiene shared by the services."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM, parent_pid: int | None = None) -> None:
    """Ask the kernel to send us `sig` when our parent process dies (Linux).

    For children that must not outlive their parent: a broker started by `pixel broker`, or a
    uvicorn worker whose master was SIGKILLed (it would keep serving, holding the port).
    The request only covers a parent that dies after it: if `parent_pid` (the parent we were
    started by) is already gone, we were orphaned before asking, so the signal is sent now.
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


def watch_parent(parent_pid: int, on_orphan: Callable[[], None], interval: float = 0.5) -> threading.Thread:
    """Call ``on_orphan`` (in a daemon thread) once the process that started us is gone.

    For a server's worker that must leave in order when its master is SIGKILLed: a death signal
    (die_with_parent) can arrive while the server is still starting, before it handles the
    signal, and be lost; this watch can't."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        on_orphan()

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


def die_with_this_process():
    """A preexec_fn for subprocess.Popen: the child dies with the process starting it now."""
    parent = os.getpid()
    return lambda: die_with_parent(parent_pid=parent)


def children(pid: int | None = None) -> list[int]:
    """The direct children of a process (this one by default), from /proc (Linux)."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(child) for child in fh.read().split()]
        except OSError:
            continue
    return found


def end_children_on(*signals: int) -> None:
    """On any of ``signals``: send it on to this process's children, then exit (128 + signal).

    For a process whose children are not ours to death-link: PyFlink starts its JVM itself, and a
    JVM whose Python driver simply died takes ~10 s to notice (longer while it is starting)."""

    def handler(sig, _frame):
        for child in children():
            try:
                os.kill(child, sig)
            except ProcessLookupError:
                pass
        os._exit(128 + sig)

    for sig in signals:
        signal.signal(sig, handler)
