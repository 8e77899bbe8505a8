"""ctutils.machine: the CPU cores this process may use."""

from __future__ import annotations

import os

from ctutils import machine


def test_available_cores_follows_the_affinity_and_falls_back_to_cpu_count(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert machine.available_cores() == len(os.sched_getaffinity(0))
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set())
        assert machine.available_cores() == 1  # never 0 workers
        monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert machine.available_cores() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert machine.available_cores() == 1
