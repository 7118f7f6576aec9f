"""Process hygiene shared by the services."""

from __future__ import annotations

import ctypes
import os
import signal

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
