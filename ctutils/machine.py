"""The machine the course runs on: how many CPU cores this process may use.

Chapters print it in their set-up cell; the process pools of :mod:`ctutils.synthetic`,
:mod:`ctutils.cache` and :mod:`ctutils.baseline` start that many workers by default.
"""

from __future__ import annotations

import os

__all__ = ["available_cores"]


def available_cores() -> int:
    """CPU cores this process may use: its CPU affinity (container and ``taskset`` limits), at least 1.

    Where the system has no affinity call (macOS, Windows), the machine's core count
    (:func:`os.cpu_count`).

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
