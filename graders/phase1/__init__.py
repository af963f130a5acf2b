"""Phase 1 criteria: loading, latency, throughput, memory, profiling, devices, report.

Each ``test_*.py`` grades one task; criteria ids and thresholds are declared in
``phase1_basics/EXPECTED_OUTCOMES.md``. The learner's API is documented in
``phase1_basics/starter/__init__.py``.
"""
