"""Process hygiene shared by the services."""
from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send us `sig` when our parent process dies (Linux).

    For children that must not outlive their parent: a broker started by `pixel broker`, or a
    uvicorn worker whose master was SIGKILLed (it would keep serving, holding the port).
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
