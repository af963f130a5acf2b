"""Fixtures of the pipeline part's unit tests: the shared thread-leak guard (tests/threadleak.py)."""
from threadleak import no_thread_leak  # noqa: F401 - the fixture
