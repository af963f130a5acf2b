"""The course's markers, registered from the manifest (``graders/course.toml``): one per task,
``phaseN_taskM``, so ``pytest -m phase2_task4`` selects exactly the checks of Task 2.4."""
from __future__ import annotations

from graders.course import markers


def pytest_configure(config):
    for line in markers():
        config.addinivalue_line("markers", line)
