"""Processes on this machine: whether one is still running."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process ``pid`` exists (owned by anyone); ``os.kill(pid, 0)`` sends
    no signal, it only asks. The standard library has no call for it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
