"""Criteria of part ``p3.batching`` (tasks 3.1-3.4): dynamic batching and concurrent models, graded under load
the grader generates; thresholds in phase3_advanced/EXPECTED_OUTCOMES.md."""
