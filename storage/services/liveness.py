"""Whether the process that claimed some work (an import, a delete, a job) is still there."""

from __future__ import annotations

import os
import socket


def this_process() -> tuple[str, int]:
    """(host, pid) of this process, as claims record it."""
    return socket.gethostname(), os.getpid()


def pid_gone(pid: int | None) -> bool:
    """Whether no process `pid` exists on this host (None: unknown, so not gone).

    Another user's process (PermissionError) counts as there.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
